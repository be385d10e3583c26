"""LiveKit's webhooks (events in): verified egress events of the recordings ovmeet started move
them through their statuses; a finished room is told to the application; someone joining a room
being recorded is told so."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from google.protobuf.json_format import ParseError
from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.egress import EgressInfo
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.webhook import WebhookEvent
from redis.asyncio import Redis

from ovmeet.recordings.recorder import (
    is_expected_output,
    is_recording_active,
    record,
    recording_of_egress,
    started_by_ovmeet,
)
from ovmeet.rooms.store import get_room, room_is_stored
from ovmeet.shared import redis_state as shared_state
from ovmeet.support.cache import Recent
from ovmeet.support.config import Config
from ovmeet.support.errors import BadRequest, RoomNotFound, Unauthorized
from ovmeet.support.ids import SEPARATOR, RecordingId, is_id

if TYPE_CHECKING:
    from ovmeet.services import Services

logger = logging.getLogger("ovmeet.livekit_events")

EGRESS_EVENTS = frozenset(("egress_started", "egress_updated", "egress_ended"))
# LiveKit signs each webhook with a short-lived token; a replay while it is still valid is
# recognised by its event id (remembered for longer than such a token lives). Clock skew
# allowed between LiveKit and ovmeet on the token's expiry:
SIGNATURE_LEEWAY = timedelta(seconds=5)
REMEMBER_EVENTS_SECONDS = 600.0
MAX_REMEMBERED_EVENTS = 10_000


class HandledEvents:
    """The ids of the events handled lately, so that an event delivered again is applied once:
    this process's memory (bounded), and with Redis every instance's. While Redis does not
    answer, each process remembers alone (statuses that only move forward keep a second
    delivery from changing anything)."""

    def __init__(
        self, config: Config, redis: Redis | None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ids: Recent[str, bool] = Recent(MAX_REMEMBERED_EVENTS, now)
        self._config, self._redis = config, redis
        self._outage = shared_state.Outage(config, "handled webhook events", "are kept per process")

    async def claim(self, event_id: str) -> bool:
        """Whether this delivery is the one to apply the event (False: already handled). With
        Redis, Redis alone decides: a claim another instance released is free again here."""
        if self._redis is None:
            return await self._claim_here(event_id)
        claim = self._redis.set(self._key(event_id), "1", nx=True, ex=int(REMEMBER_EVENTS_SECONDS))
        return bool(await self._outage.answer(claim, lambda: self._claim_here(event_id)))

    async def _claim_here(self, event_id: str) -> bool:
        """This process's claim (without Redis, or while it does not answer)."""
        if self._ids.get(event_id, REMEMBER_EVENTS_SECONDS) is not None:
            return False
        self._ids.put(event_id, True)
        return True

    async def release(self, event_id: str) -> None:
        """Forget a claim whose event failed: LiveKit delivers it again."""
        self._ids.forget(event_id)
        if self._redis is not None:
            await self._outage.attempt(self._redis.delete(self._key(event_id)))

    def _key(self, event_id: str) -> str:
        return shared_state.key(self._config, "webhook events", event_id)


def verify_event(config: Config, body: bytes, authorization: str | None) -> WebhookEvent:
    """The event, if LiveKit signed this exact body; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("The webhook has no Authorization header")
    verifier = TokenVerifier(
        config.livekit_api_key, config.livekit_api_secret, leeway=SIGNATURE_LEEWAY
    )
    receiver = WebhookReceiver(verifier)
    try:
        return receiver.receive(body.decode("utf-8"), authorization)
    except (ParseError, UnicodeDecodeError) as error:
        raise BadRequest(f"The webhook body is not a LiveKit event: {error}") from None
    except Exception:  # the verifier raises bare Exceptions (bad JWT, hash mismatch)
        raise Unauthorized("The webhook signature is not valid") from None


async def handle_event(services: Services, event: WebhookEvent) -> str:
    """Act once on what an event says; a sentence on what was done."""
    handled = services.handled_events
    if event.id and not await handled.claim(event.id):
        return f"event {event.id} already handled"
    try:
        return await _apply(services, event)
    except BaseException:
        if event.id:
            await handled.release(event.id)  # LiveKit retries an event that failed
        raise


async def _apply(services: Services, event: WebhookEvent) -> str:
    if event.event == "room_finished":
        return await _room_finished(services, event.room.name)
    if event.event == "participant_joined":
        return await _participant_joined(services, event.room.name, event.participant)
    if event.event not in EGRESS_EVENTS:
        return f"{event.event or 'event'} ignored"
    info = event.egress_info
    recording_id = _recording_id(info)
    if recording_id is None:
        return f"{event.event} ignored: not a file recording ovmeet can place"
    if not await started_by_ovmeet(services, recording_id):
        return f"{event.event} ignored: ovmeet did not start egress '{info.egress_id}'"
    filename = _filename(info)
    if not is_expected_output(services.config, recording_id, filename):
        logger.warning("egress %s writes %r, not where ovmeet asked", info.egress_id, filename)
        return f"{event.event} ignored: egress '{info.egress_id}' writes elsewhere"
    # Applied whether or not the room still exists: a recording outlives its room.
    recording = recording_of_egress(info, recording_id)
    stored, changed = await record(services, recording)
    if not changed:
        return f"{event.event} ignored: recording '{recording_id}' is already {stored.status}"
    return f"recording '{recording_id}' is {recording.status}"


async def _room_finished(services: Services, room_name: str) -> str:
    """LiveKit closed the room (everyone left): tell the application, if it is ours."""
    try:
        room = await get_room(services.storage, room_name)
    except RoomNotFound:
        return "room_finished ignored: not an ovmeet room"
    await services.notifier.notify("roomFinished", room.to_json(services.config.base_url))
    return f"room '{room_name}' finished"


async def _participant_joined(services: Services, room_name: str, joined: ParticipantInfo) -> str:
    """Someone joined an ovmeet room: if it is being recorded, tell them (alone)."""
    if joined.kind == ParticipantInfo.Kind.EGRESS or not joined.sid:
        return "participant_joined ignored: not a person"
    if not await room_is_stored(services.storage, room_name):
        return "participant_joined ignored: not an ovmeet room"

    async def still_recording() -> bool:
        return await is_recording_active(services, room_name)

    if not await still_recording():
        return f"participant '{joined.identity}' joined room '{room_name}'"
    services.signals.room_status(room_name, joined.sid, still_recording)
    return f"participant '{joined.identity}' joined room '{room_name}', told it is recorded"


def _filename(info: EgressInfo) -> str:
    return info.file_results[0].filename if info.file_results else info.file.filename


def _recording_id(info: EgressInfo) -> RecordingId | None:
    """Where OpenVidu Meet's layout puts this egress, if it is a single-file recording."""
    if info.stream_results or info.segment_results:
        return None
    filename = _filename(info)
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
