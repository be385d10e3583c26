"""LiveKit webhooks signed exactly as the LiveKit server signs them."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToJson, ParseDict
from livekit.api import AccessToken
from livekit.protocol.webhook import WebhookEvent

from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, Ovmeet
from tests.support.stored import Stored


def egress_event(
    event: str,
    room: str,
    egress_id: str,
    uid: str,
    status: str,
    *,
    size: int = 0,
    duration_ns: int = 0,
    error: str = "",
    filename: str | None = None,
) -> WebhookEvent:
    """An egress event of a room-composite file recording at OpenVidu Meet's location (under
    the default sub-bucket unless `filename` says where)."""
    now_ns = time.time_ns()
    file_result = {"filename": filename or f"openvidu-meet/recordings/{room}/{room}--{uid}.mp4"}
    if size:
        file_result |= {"size": str(size), "duration": str(duration_ns)}
    info: dict[str, Any] = {
        "egressId": egress_id,
        "roomId": "RM_x",
        "roomName": room,
        "status": status,
        "startedAt": str(now_ns - duration_ns),
        "updatedAt": str(now_ns),
        "fileResults": [file_result],
        "roomComposite": {"roomName": room},
    }
    if status in ("EGRESS_COMPLETE", "EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED"):
        info["endedAt"] = str(now_ns)
    if error:
        info["error"] = error
    return ParseDict(
        {
            "event": event,
            "id": f"EV_{secrets.token_hex(6)}",  # each event its own id, as LiveKit's
            "createdAt": str(now_ns // 10**9),
            "egressInfo": info,
        },
        WebhookEvent(),
    )


def room_finished(room: str) -> WebhookEvent:
    """LiveKit's word that everyone left `room` (an event id of its own)."""
    event = WebhookEvent(event="room_finished", id=f"EV_{secrets.token_hex(6)}")
    event.created_at = int(time.time())
    event.room.name = room
    return event


def output_of(server: Ovmeet, room: str, uid: str) -> str:
    """Where `server` asks the egress of a recording to write (an absolute path on local
    storage, a key under the sub-bucket on S3), as LiveKit reports it back."""
    key, config = f"recordings/{room}/{room}--{uid}.mp4", server.config()
    if config.storage == "local":
        return f"{Path(config.data_dir).resolve()}/{key}"
    return f"{config.s3_subbucket}/{key}" if config.s3_subbucket else key


def started_egress(server: Ovmeet, room: str, egress_id: str, uid: str) -> None:
    """What ovmeet stores when it starts an egress, before LiveKit's first event: the room's
    lock naming it. (Webhooks are applied only to egresses ovmeet started.)"""
    lock = {"roomId": room, "uid": uid, "since": int(time.time() * 1000), "egressId": egress_id}
    Stored(server).write_json(f"recordings/.locks/{room}.json", lock)


def ovmeet_egress_event(
    server: Ovmeet, event: str, room: str, egress_id: str, uid: str, status: str, **fields: Any
) -> WebhookEvent:
    """An egress event of a recording `server` started: the lock names it until the recording
    is stored, the file is where `server` asked."""
    if not Stored(server).keys(f"recordings/.metadata/{room}/{egress_id}/{uid}.json"):
        started_egress(server, room, egress_id, uid)
    return egress_event(
        event, room, egress_id, uid, status, filename=output_of(server, room, uid), **fields
    )


def signed(
    event: WebhookEvent, secret: str = LIVEKIT_SECRET, ttl: int = 300
) -> tuple[bytes, dict[str, str]]:
    """The body and headers LiveKit would POST: JSON, and a JWT carrying the body's sha256
    (valid `ttl` seconds; negative: expired that long ago)."""
    body = MessageToJson(event).encode()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = (
        AccessToken(LIVEKIT_KEY, secret)
        .with_sha256(digest)
        .with_ttl(timedelta(seconds=ttl))
        .to_jwt()
    )
    return body, {"Authorization": token, "Content-Type": "application/webhook+json"}
