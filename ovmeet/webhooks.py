"""LiveKit webhooks: verified egress events of file recordings become recording metadata."""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf.json_format import ParseError
from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.egress import EgressInfo, EgressStatus
from livekit.protocol.webhook import WebhookEvent

from ovmeet.config import Config
from ovmeet.errors import BadRequest, Unauthorized
from ovmeet.recordings import FINAL_STATUSES, RecordingRef, is_id_part
from ovmeet.rooms import room_is_stored
from ovmeet.storage import ObjectNotFound, Storage

logger = logging.getLogger("ovmeet.webhooks")

EGRESS_EVENTS = frozenset(("egress_started", "egress_updated", "egress_ended"))
_STATUS_NAMES = {
    EgressStatus.EGRESS_STARTING: "STARTING",
    EgressStatus.EGRESS_ACTIVE: "ACTIVE",
    EgressStatus.EGRESS_ENDING: "ENDING",
    EgressStatus.EGRESS_COMPLETE: "COMPLETE",
    EgressStatus.EGRESS_FAILED: "FAILED",
    EgressStatus.EGRESS_ABORTED: "ABORTED",
    EgressStatus.EGRESS_LIMIT_REACHED: "LIMIT_REACHED",
}


def verify_event(config: Config, body: bytes, authorization: str | None) -> WebhookEvent:
    """The event, if LiveKit signed this exact body; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("Unauthorized: the webhook has no Authorization header")
    receiver = WebhookReceiver(TokenVerifier(config.livekit_api_key, config.livekit_api_secret))
    try:
        return receiver.receive(body.decode("utf-8"), authorization)
    except (ParseError, UnicodeDecodeError) as error:
        raise BadRequest(f"the webhook body is not a LiveKit event: {error}") from None
    except Exception:  # the verifier raises bare Exceptions (bad JWT, hash mismatch)
        raise Unauthorized("Unauthorized: the webhook signature is not valid") from None


async def handle_event(storage: Storage, event: WebhookEvent) -> str:
    """Record what a file-recording egress event says; a sentence on what was done."""
    if event.event not in EGRESS_EVENTS:
        return f"{event.event or 'event'} ignored"
    info = event.egress_info
    ref = _recording_ref(info)
    if ref is None:
        return f"{event.event} ignored: not a file recording ovmeet can place"
    if not await room_is_stored(storage, ref.room_id):
        return f"{event.event} ignored: room '{ref.room_id}' is not an ovmeet room"
    metadata = _metadata(info, ref)
    try:
        stored = await storage.read_json(ref.metadata_key)
    except ObjectNotFound:
        stored = None
    ended = isinstance(stored, dict) and stored.get("status") in FINAL_STATUSES
    if ended and metadata["status"] not in FINAL_STATUSES:
        return f"{event.event} ignored: recording '{ref.recording_id}' already ended"
    await storage.write_json(ref.metadata_key, metadata)
    logger.info("recording %s is %s", ref.recording_id, metadata["status"])
    return f"recording '{ref.recording_id}' is {metadata['status']}"


def _recording_ref(info: EgressInfo) -> RecordingRef | None:
    """Where OpenVidu Meet's layout puts this egress, if it is a single-file recording."""
    if info.stream_results or info.segment_results:
        return None
    filename = info.file_results[0].filename if info.file_results else info.file.filename
    basename = filename.rsplit("/", 1)[-1]
    room = info.room_name
    if not (is_id_part(room) and is_id_part(info.egress_id)):
        return None
    prefix, suffix = f"{room}--", ".mp4"
    uid = basename[len(prefix) : -len(suffix)]
    if not (basename.startswith(prefix) and basename.endswith(suffix) and is_id_part(uid)):
        logger.warning("egress %s writes %r, not %s{uid}.mp4", info.egress_id, filename, prefix)
        return None
    return RecordingRef(room, info.egress_id, uid)


def _metadata(info: EgressInfo, ref: RecordingRef) -> dict[str, Any]:
    """OpenVidu Meet's MeetRecording for an EgressInfo (dates in ms, duration in s)."""
    file = info.file_results[0] if info.file_results else info.file
    started = info.started_at or info.updated_at
    return {
        "recordingId": ref.recording_id,
        "roomId": ref.room_id,
        "outputMode": "COMPOSED",
        "status": _STATUS_NAMES.get(info.status, "FAILED"),
        "filename": ref.filename,
        "startDate": started // 1_000_000,
        "endDate": info.ended_at // 1_000_000,
        "duration": file.duration / 1e9,
        "size": file.size,
        "errorCode": info.error_code,
        "error": info.error or None,
        "details": info.details,
    }
