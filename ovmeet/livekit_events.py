"""LiveKit's webhooks (events in): verified egress events of file recordings become recordings."""

from __future__ import annotations

import logging

from google.protobuf.json_format import ParseError
from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.egress import EgressInfo, EgressStatus
from livekit.protocol.webhook import WebhookEvent

from ovmeet.config import Config
from ovmeet.errors import BadRequest, Unauthorized
from ovmeet.ids import SEPARATOR, RecordingId, is_id
from ovmeet.recordings import Recording, RecordingStatus, read_recording, write_recording
from ovmeet.rooms import room_is_stored
from ovmeet.storage import Storage

logger = logging.getLogger("ovmeet.livekit_events")

EGRESS_EVENTS = frozenset(("egress_started", "egress_updated", "egress_ended"))
_STATUSES = {
    EgressStatus.EGRESS_STARTING: RecordingStatus.STARTING,
    EgressStatus.EGRESS_ACTIVE: RecordingStatus.ACTIVE,
    EgressStatus.EGRESS_ENDING: RecordingStatus.ENDING,
    EgressStatus.EGRESS_COMPLETE: RecordingStatus.COMPLETE,
    EgressStatus.EGRESS_FAILED: RecordingStatus.FAILED,
    EgressStatus.EGRESS_ABORTED: RecordingStatus.ABORTED,
    EgressStatus.EGRESS_LIMIT_REACHED: RecordingStatus.LIMIT_REACHED,
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
    recording_id = _recording_id(event.egress_info)
    if recording_id is None:
        return f"{event.event} ignored: not a file recording ovmeet can place"
    if not await room_is_stored(storage, recording_id.room_id):
        return f"{event.event} ignored: room '{recording_id.room_id}' is not an ovmeet room"
    recording = _recording(event.egress_info, recording_id)
    stored = await read_recording(storage, recording_id)
    if stored is not None and stored.status.is_final and not recording.status.is_final:
        return f"{event.event} ignored: recording '{recording_id}' already ended"
    await write_recording(storage, recording)
    logger.info("recording %s is %s", recording_id, recording.status)
    return f"recording '{recording_id}' is {recording.status}"


def _recording_id(info: EgressInfo) -> RecordingId | None:
    """Where OpenVidu Meet's layout puts this egress, if it is a single-file recording."""
    if info.stream_results or info.segment_results:
        return None
    filename = info.file_results[0].filename if info.file_results else info.file.filename
    basename = filename.rsplit("/", 1)[-1]
    room = info.room_name
    if not (is_id(room) and is_id(info.egress_id)):
        return None
    prefix, suffix = f"{room}{SEPARATOR}", ".mp4"
    uid = basename[len(prefix) : -len(suffix)]
    if not (basename.startswith(prefix) and basename.endswith(suffix) and is_id(uid)):
        logger.warning("egress %s writes %r, not %s{uid}.mp4", info.egress_id, filename, prefix)
        return None
    return RecordingId(room, info.egress_id, uid)


def _recording(info: EgressInfo, recording_id: RecordingId) -> Recording:
    """OpenVidu Meet's recording for an EgressInfo (LiveKit's times are in ns)."""
    file = info.file_results[0] if info.file_results else info.file
    started = info.started_at or info.updated_at
    return Recording(
        id=recording_id,
        status=_STATUSES.get(info.status, RecordingStatus.FAILED),
        start_date=started // 1_000_000,
        end_date=info.ended_at // 1_000_000,
        duration=file.duration / 1e9,
        size=file.size,
        error_code=info.error_code,
        error=info.error or None,
        details=info.details,
    )
