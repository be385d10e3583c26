"""LiveKit's webhooks (events in): verified egress events of file recordings become recordings."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta

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
# LiveKit signs each webhook with a short-lived token; a replay while it is still valid is
# recognised by its event id (remembered for longer than such a token lives). Clock skew
# allowed between LiveKit and ovmeet on the token's expiry:
SIGNATURE_LEEWAY = timedelta(seconds=5)
REMEMBER_EVENTS_SECONDS = 600.0
MAX_REMEMBERED_EVENTS = 10_000
_STATUSES = {
    EgressStatus.EGRESS_STARTING: RecordingStatus.STARTING,
    EgressStatus.EGRESS_ACTIVE: RecordingStatus.ACTIVE,
    EgressStatus.EGRESS_ENDING: RecordingStatus.ENDING,
    EgressStatus.EGRESS_COMPLETE: RecordingStatus.COMPLETE,
    EgressStatus.EGRESS_FAILED: RecordingStatus.FAILED,
    EgressStatus.EGRESS_ABORTED: RecordingStatus.ABORTED,
    EgressStatus.EGRESS_LIMIT_REACHED: RecordingStatus.LIMIT_REACHED,
}


class HandledEvents:
    """The ids of the events this process has handled lately (bounded), so that a replayed
    event is recognised; across processes, statuses that only move forward do the same."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._ids: OrderedDict[str, float] = OrderedDict()
        self._now = now

    def __contains__(self, event_id: object) -> bool:
        handled_at = self._ids.get(str(event_id))
        return handled_at is not None and self._now() - handled_at < REMEMBER_EVENTS_SECONDS

    def add(self, event_id: str) -> None:
        self._ids[event_id] = self._now()
        self._ids.move_to_end(event_id)
        while len(self._ids) > MAX_REMEMBERED_EVENTS:
            self._ids.popitem(last=False)


def verify_event(config: Config, body: bytes, authorization: str | None) -> WebhookEvent:
    """The event, if LiveKit signed this exact body; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("Unauthorized: the webhook has no Authorization header")
    verifier = TokenVerifier(
        config.livekit_api_key, config.livekit_api_secret, leeway=SIGNATURE_LEEWAY
    )
    receiver = WebhookReceiver(verifier)
    try:
        return receiver.receive(body.decode("utf-8"), authorization)
    except (ParseError, UnicodeDecodeError) as error:
        raise BadRequest(f"the webhook body is not a LiveKit event: {error}") from None
    except Exception:  # the verifier raises bare Exceptions (bad JWT, hash mismatch)
        raise Unauthorized("Unauthorized: the webhook signature is not valid") from None


async def handle_event(storage: Storage, handled: HandledEvents, event: WebhookEvent) -> str:
    """Record what a file-recording egress event says, once; a sentence on what was done."""
    if event.id and event.id in handled:
        return f"event {event.id} already handled"
    outcome = await _apply(storage, event)
    if event.id:
        handled.add(event.id)  # only once handled: LiveKit retries an event that failed
    return outcome


async def _apply(storage: Storage, event: WebhookEvent) -> str:
    if event.event not in EGRESS_EVENTS:
        return f"{event.event or 'event'} ignored"
    recording_id = _recording_id(event.egress_info)
    if recording_id is None:
        return f"{event.event} ignored: not a file recording ovmeet can place"
    if not await room_is_stored(storage, recording_id.room_id):
        return f"{event.event} ignored: room '{recording_id.room_id}' is not an ovmeet room"
    recording = _recording(event.egress_info, recording_id)
    stored = await read_recording(storage, recording_id)
    if stored is not None and _RANK[recording.status] <= _RANK[stored.status]:
        return f"{event.event} ignored: recording '{recording_id}' is already {stored.status}"
    await write_recording(storage, recording)
    logger.info("recording %s is %s", recording_id, recording.status)
    return f"recording '{recording_id}' is {recording.status}"


# Statuses only move forward: STARTING -> ACTIVE -> ENDING -> one final status, which stays.
_RANK = {
    RecordingStatus.STARTING: 0,
    RecordingStatus.ACTIVE: 1,
    RecordingStatus.ENDING: 2,
    **{status: 3 for status in RecordingStatus if status.is_final},
}


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
