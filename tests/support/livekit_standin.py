"""A LiveKit stand-in that speaks LiveKit's real server API protocol.

Twirp over HTTP (`POST /twirp/livekit.RoomService/<Method>`, `/twirp/livekit.Egress/<Method>`),
protobuf bodies from livekit-protocol, `Authorization: Bearer <jwt>` verified as the LiveKit
server (v1.13.5) does: a bad signature, unknown key or expired token is a plain-text 401 that
repeats the token (`invalid token: ...`), as LiveKit's middleware answers; a missing grant (the
roomAdmin grant for the request's room, roomCreate to delete a room, roomList to list them,
roomRecord for Egress) is Twirp's 401 `unauthenticated`; and LiveKit's Twirp error JSON with
its messages. Tests seed participants and inject faults through its methods;
`GET /_standin/calls` lists the calls it answered (bench/tokens.py waits on it).

Egress behaves as LiveKit's does for a room composite MP4 file: STARTING, then ACTIVE, then on
StopEgress ENDING, a real MP4 (ffmpeg) written where the request said (the S3 bucket of its
S3Upload, or the local path), and COMPLETE; each step is a signed webhook to `webhook_urls`.
`egress_faults` injects the ways a real egress goes wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import uvicorn
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import DecodeError
from livekit.api import AccessToken, TokenVerifier
from livekit.protocol.egress import (
    EgressInfo,
    EgressStatus,
    EncodedFileOutput,
    FileInfo,
    ListEgressRequest,
    ListEgressResponse,
    RoomCompositeEgressRequest,
    StopEgressRequest,
)
from livekit.protocol.models import ParticipantInfo, Room
from livekit.protocol.room import (
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
    RemoveParticipantResponse,
    RoomParticipantIdentity,
)
from livekit.protocol.webhook import WebhookEvent
from minio import Minio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.media import make_mp4

PROTOBUF = "application/protobuf"


@dataclass
class Fault:
    status: int = 0  # answer every RoomService call with this status (0: behave)
    delay: float = 0.0  # seconds to hang before answering 503


@dataclass
class EgressFaults:
    start_fails: bool = False  # StartRoomCompositeEgress answers 503
    never_active: bool = False  # the egress stays STARTING
    fails_when_active: bool = False  # FAILED soon after it became ACTIVE
    twice: bool = False  # every webhook delivered twice
    ended_first: bool = False  # on stop, egress_ended is delivered before egress_updated (ENDING)
    active_after: float = 0.3  # seconds in STARTING
    start_delay: float = 0.0  # seconds StartRoomCompositeEgress takes to answer
    lists_failing: int = 0  # so many ListEgress calls answer 503 before it behaves again


@dataclass
class Egress:
    info: EgressInfo
    output: EncodedFileOutput


@dataclass
class LiveKitStandIn:
    api_key: str
    api_secret: str
    participants: dict[str, dict[str, ParticipantInfo]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    fault: Fault = field(default_factory=Fault)
    egresses: dict[str, Egress] = field(default_factory=dict)
    egress_faults: EgressFaults = field(default_factory=EgressFaults)
    webhook_urls: list[str] = field(default_factory=list)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Tokens that verified, with their end and grants: ovmeet reuses its call tokens, and
    # verifying each again made this stand-in cost a third of a token's CPU in bench/tokens.
    verified: dict[str, tuple[float, Any]] = field(default_factory=dict)
    # Beside a real LiveKit server: whether a room is live there (Egress starts only in a live
    # room, as LiveKit's does: not_found otherwise). None: every room is.
    room_is_live: Callable[[str], Awaitable[bool]] | None = None

    def add_participant(self, room: str, identity: str) -> None:
        self.participants.setdefault(room, {})[identity] = ParticipantInfo(
            sid=f"PA_{identity}", identity=identity, name=identity, state=ParticipantInfo.ACTIVE
        )

    def has_participant(self, room: str, identity: str) -> bool:
        return identity in self.participants.get(room, {})

    def room_calls(self) -> list[tuple[str, str, str]]:
        """The calls answered, less the readiness probes (ListRooms) that any ovmeet starting
        or asked for readiness at the same time makes."""
        return [call for call in self.calls if call[0] != "ListRooms"]

    def reset(self) -> None:
        self.participants.clear()
        self.calls.clear()
        self.fault = Fault()
        self.egresses.clear()
        self.egress_faults = EgressFaults()
        self.webhook_urls = []
        self.room_is_live = None

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/twirp/livekit.RoomService/{method}", self._twirp, methods=["POST"]),
                Route("/twirp/livekit.Egress/{method}", self._egress, methods=["POST"]),
                Route("/_standin/calls", self._calls, methods=["GET"]),
            ]
        )

    async def _twirp(self, request: Request) -> Response:
        method = request.path_params["method"]
        if request.headers.get("content-type", "").split(";")[0] != PROTOBUF:
            return _error(400, "malformed", "this stand-in speaks application/protobuf")
        body = await request.body()
        fault = self.fault
        if fault.delay:  # a hung server: answer late, and without touching any state
            await asyncio.sleep(fault.delay)
            return _error(503, "unavailable", "injected delay")
        if fault.status:
            return _error(fault.status, "internal", "injected fault")
        refused = self._refuse_invalid_token(request)
        if refused is not None:
            return refused
        handler = {
            "GetParticipant": self._get_participant,
            "RemoveParticipant": self._remove_participant,
            "ListParticipants": self._list_participants,
            "DeleteRoom": self._delete_room,
            "ListRooms": self._list_rooms,
        }.get(method)
        if handler is None:
            return _error(404, "bad_route", f"no handler for RoomService/{method}")
        try:
            return handler(request, body)
        except DecodeError:
            return _error(400, "malformed", "the body is not a protobuf message")

    def _refuse_invalid_token(self, request: Request) -> Response | None:
        """LiveKit's auth middleware: a token that does not verify is a plain-text 401."""
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer ") and self._grants(request) is None:
            token = header[7:]
            return Response(f"invalid token: {token}", status_code=401, media_type="text/plain")
        return None

    def _authorized(self, request: Request, room: str) -> bool:
        """A token signed with the API secret, with the roomAdmin grant for `room`."""
        video = self._grants(request)
        return bool(video and video.room_admin and video.room == room)

    def _grants(self, request: Request) -> Any:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        token = header[7:]
        known = self.verified.get(token)
        if known is not None and time.time() < known[0]:
            return known[1]
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            video = TokenVerifier(self.api_key, self.api_secret).verify(token).video
        except Exception:
            return None
        if len(self.verified) >= 1024:
            self.verified.clear()
        self.verified[token] = (float(claims["exp"]), video)
        return video

    def _get_participant(self, request: Request, body: bytes) -> Response:
        ask = RoomParticipantIdentity.FromString(body)
        if not self._authorized(request, ask.room):
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("GetParticipant", ask.room, ask.identity))
        found = self.participants.get(ask.room, {}).get(ask.identity)
        if found is None:
            return _error(404, "not_found", "participant does not exist")
        return _protobuf(found)

    def _remove_participant(self, request: Request, body: bytes) -> Response:
        ask = RoomParticipantIdentity.FromString(body)
        if not self._authorized(request, ask.room):
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("RemoveParticipant", ask.room, ask.identity))
        if self.participants.get(ask.room, {}).pop(ask.identity, None) is None:
            return _error(404, "not_found", "participant does not exist")
        return _protobuf(RemoveParticipantResponse())

    def _list_participants(self, request: Request, body: bytes) -> Response:
        ask = ListParticipantsRequest.FromString(body)
        if not self._authorized(request, ask.room):
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("ListParticipants", ask.room, ""))
        people = list(self.participants.get(ask.room, {}).values())
        return _protobuf(ListParticipantsResponse(participants=people))

    def _list_rooms(self, request: Request, body: bytes) -> Response:
        ask = ListRoomsRequest.FromString(body)
        video = self._grants(request)
        if not (video and video.room_list):  # LiveKit asks for roomList here
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("ListRooms", ",".join(ask.names), ""))
        live = [name for name in self.participants if not ask.names or name in ask.names]
        return _protobuf(ListRoomsResponse(rooms=[Room(name=name) for name in live]))

    def _delete_room(self, request: Request, body: bytes) -> Response:
        ask = DeleteRoomRequest.FromString(body)
        video = self._grants(request)
        if not (video and video.room_create):  # LiveKit asks for roomCreate here
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("DeleteRoom", ask.room, ""))
        recorded = [  # an egress is in the room: the room is live while it records
            egress
            for egress in self.egresses.values()
            if egress.info.room_name == ask.room
            and egress.info.status == EgressStatus.EGRESS_ACTIVE
        ]
        if self.participants.pop(ask.room, None) is None and not recorded:
            return _error(404, "not_found", "requested room does not exist")
        for egress in recorded:  # a closed room ends its egresses, their files written
            self._set(egress, EgressStatus.EGRESS_ENDING)
            self._later(self._finish_egress(egress, self._event("egress_updated", egress)))
        return _protobuf(DeleteRoomResponse())

    # ---- Egress ----

    async def _egress(self, request: Request) -> Response:
        method = request.path_params["method"]
        if request.headers.get("content-type", "").split(";")[0] != PROTOBUF:
            return _error(400, "malformed", "this stand-in speaks application/protobuf")
        refused = self._refuse_invalid_token(request)
        if refused is not None:
            return refused
        video = self._grants(request)
        if not (video and video.room_record):  # LiveKit asks for roomRecord on Egress
            return _error(401, "unauthenticated", "permissions denied")
        body = await request.body()
        handler = {
            "StartRoomCompositeEgress": self._start_egress,
            "ListEgress": self._list_egress,
            "StopEgress": self._stop_egress,
        }.get(method)
        if handler is None:
            return _error(404, "bad_route", f"no handler for Egress/{method}")
        try:
            if method == "StartRoomCompositeEgress":
                ask = RoomCompositeEgressRequest.FromString(body)
                if self.room_is_live is not None and not await self.room_is_live(ask.room_name):
                    return _error(404, "not_found", "requested room does not exist")
                await asyncio.sleep(self.egress_faults.start_delay)
            return handler(body)
        except DecodeError:
            return _error(400, "malformed", "the body is not a protobuf message")

    def _start_egress(self, body: bytes) -> Response:
        ask = RoomCompositeEgressRequest.FromString(body)
        self.calls.append(("StartRoomCompositeEgress", ask.room_name, ""))
        if self.egress_faults.start_fails:
            return _error(503, "unavailable", "injected: no egress worker available")
        if len(ask.file_outputs) != 1:
            return _error(400, "invalid_argument", "this stand-in writes one file output")
        output = ask.file_outputs[0]
        now = time.time_ns()
        info = EgressInfo(
            egress_id=f"EG_{secrets.token_hex(6)}",
            room_id=f"RM_{ask.room_name}"[:32],
            room_name=ask.room_name,
            status=EgressStatus.EGRESS_STARTING,
            updated_at=now,
            file_results=[FileInfo(filename=output.filepath)],
        )
        info.room_composite.CopyFrom(ask)
        self.egresses[info.egress_id] = Egress(info, output)
        self._later(self._run_egress(info.egress_id))
        return _protobuf(info)

    def _list_egress(self, body: bytes) -> Response:
        ask = ListEgressRequest.FromString(body)
        self.calls.append(("ListEgress", ask.room_name, ask.egress_id))
        if ask.egress_id and self.egress_faults.lists_failing > 0:
            self.egress_faults.lists_failing -= 1
            return _error(503, "unavailable", "injected: no answer from the egress service")
        if ask.egress_id and ask.egress_id not in self.egresses:  # as LiveKit with Redis
            return _error(404, "not_found", "egress does not exist")
        items = [
            egress.info
            for egress in self.egresses.values()
            if (not ask.egress_id or egress.info.egress_id == ask.egress_id)
            and (not ask.room_name or egress.info.room_name == ask.room_name)
            and (not ask.active or egress.info.status in _LIVE)
        ]
        return _protobuf(ListEgressResponse(items=items))

    def _stop_egress(self, body: bytes) -> Response:
        ask = StopEgressRequest.FromString(body)
        self.calls.append(("StopEgress", "", ask.egress_id))
        egress = self.egresses.get(ask.egress_id)
        if egress is None:
            return _error(404, "not_found", "egress does not exist")
        if egress.info.status not in (EgressStatus.EGRESS_STARTING, EgressStatus.EGRESS_ACTIVE):
            return _error(412, "failed_precondition", "egress is not running")
        if egress.info.status == EgressStatus.EGRESS_STARTING:  # nothing recorded: no file
            egress.info.ended_at = time.time_ns()
            self._set(egress, EgressStatus.EGRESS_ABORTED)
            self._later(self._send(self._event("egress_ended", egress)))
            return _protobuf(egress.info)
        self._set(egress, EgressStatus.EGRESS_ENDING)
        updated = self._event("egress_updated", egress)
        self._later(self._finish_egress(egress, updated))
        return _protobuf(egress.info)

    async def _run_egress(self, egress_id: str) -> None:
        egress = self.egresses[egress_id]
        await self._send(self._event("egress_started", egress))
        if self.egress_faults.never_active:
            return
        await asyncio.sleep(self.egress_faults.active_after)
        if egress.info.status != EgressStatus.EGRESS_STARTING:
            return
        egress.info.started_at = time.time_ns()
        self._set(egress, EgressStatus.EGRESS_ACTIVE)
        await self._send(self._event("egress_updated", egress))
        if self.egress_faults.fails_when_active:
            await asyncio.sleep(0.2)
            egress.info.error = "injected: the egress worker crashed"
            egress.info.ended_at = time.time_ns()
            self._set(egress, EgressStatus.EGRESS_FAILED)
            await self._send(self._event("egress_ended", egress))

    async def _finish_egress(self, egress: Egress, updated: WebhookEvent) -> None:
        """Write a real MP4 where the egress was told to, then COMPLETE."""
        if not self.egress_faults.ended_first:
            await self._send(updated)
        started = egress.info.started_at or time.time_ns()
        seconds = max(1.0, min(4.0, (time.time_ns() - started) / 1e9))
        size = await asyncio.to_thread(_write_output, egress.output, seconds)
        egress.info.ended_at = time.time_ns()
        file = egress.info.file_results[0]
        file.size, file.duration = size, int(seconds * 1e9)
        file.location = egress.output.filepath
        self._set(egress, EgressStatus.EGRESS_COMPLETE)
        await self._send(self._event("egress_ended", egress))
        if self.egress_faults.ended_first:
            await self._send(updated)

    def _set(self, egress: Egress, status: int) -> None:
        egress.info.status = status  # type: ignore[assignment]
        egress.info.updated_at = time.time_ns()

    def _event(self, name: str, egress: Egress) -> WebhookEvent:
        event = WebhookEvent(event=name, id=f"EV_{secrets.token_hex(6)}")
        event.created_at = int(time.time())
        event.egress_info.CopyFrom(egress.info)
        return event

    async def _send(self, event: WebhookEvent) -> None:
        body = MessageToJson(event).encode()
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        token = AccessToken(self.api_key, self.api_secret).with_sha256(digest).to_jwt()
        headers = {"Authorization": token, "Content-Type": "application/webhook+json"}
        async with httpx.AsyncClient(timeout=10) as client:
            for url in list(self.webhook_urls):
                for _ in range(2 if self.egress_faults.twice else 1):
                    with contextlib.suppress(httpx.HTTPError):  # LiveKit does not care either
                        await client.post(url, content=body, headers=headers)

    def _later(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _calls(self, _request: Request) -> Response:
        return JSONResponse([list(call) for call in self.calls])


_LIVE = (EgressStatus.EGRESS_STARTING, EgressStatus.EGRESS_ACTIVE, EgressStatus.EGRESS_ENDING)


def _write_output(output: EncodedFileOutput, seconds: float) -> int:
    """Make the recording with ffmpeg and put it where the egress was told to; its size."""
    with tempfile.TemporaryDirectory() as folder:
        clip = make_mp4(Path(folder) / "egress.mp4", seconds=seconds)
        size = clip.stat().st_size
        if output.HasField("s3"):
            s3 = output.s3
            endpoint = urlsplit(s3.endpoint)
            client = Minio(
                endpoint.netloc,
                access_key=s3.access_key,
                secret_key=s3.secret,
                secure=endpoint.scheme == "https",
                region=s3.region,
            )
            client.fput_object(s3.bucket, output.filepath, str(clip), content_type="video/mp4")
        else:
            target = Path(output.filepath)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(clip, target)
        return size


def _protobuf(message: Any) -> Response:
    return Response(message.SerializeToString(), media_type=PROTOBUF)


def _error(status: int, code: str, msg: str) -> Response:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


class ThreadedServer:
    """Runs an ASGI app with uvicorn on a background thread, on 127.0.0.1 (port 0: any)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self) -> ThreadedServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended before it listened")
            threading.Event().wait(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description="LiveKit RoomService stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    parser.add_argument(
        "--participant",
        action="append",
        default=[],
        metavar="ROOM/IDENTITY",
        help="someone already in a room (repeatable)",
    )
    args = parser.parse_args()
    standin = LiveKitStandIn(args.api_key, args.api_secret)
    for present in args.participant:
        room, _, identity = present.partition("/")
        standin.add_participant(room, identity)
    uvicorn.run(standin.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
