"""LiveKit's events, applied: verified egress events of the recordings ovmeet started move them
through their statuses; a finished room is told to the application; someone joining a room
being recorded is told so. Events flow one way: LiveKit's webhook, here, then the recorder and
the rooms."""

from __future__ import annotations

import logging

from livekit.protocol.egress import EgressInfo
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from ovmeet.livekit.webhooks import HandledEvents
from ovmeet.preferences.notifier import Notifier
from ovmeet.recordings.recorder import Recorder, recording_of_egress
from ovmeet.recordings.signals import RoomSignals
from ovmeet.rooms.store import get_room, room_is_stored
from ovmeet.storage import Storage
from ovmeet.storage.keys import media_filename, uid_of_media_filename
from ovmeet.support.errors import RoomNotFound
from ovmeet.support.ids import RecordingId, is_id

logger = logging.getLogger("ovmeet.livekit_events")

EGRESS_EVENTS = frozenset(("egress_started", "egress_updated", "egress_ended"))


class LiveKitEvents:
    """Acts once on each event LiveKit reports."""

    def __init__(
        self,
        storage: Storage,
        recorder: Recorder,
        notifier: Notifier,
        signals: RoomSignals,
        handled: HandledEvents,
        base_url: str,
    ) -> None:
        self._storage, self._recorder = storage, recorder
        self._notifier, self._signals, self._handled = notifier, signals, handled
        self._base_url = base_url

    async def handle(self, event: WebhookEvent) -> str:
        """Act once on what an event says; a sentence on what was done."""
        handled = self._handled
        if event.id and not await handled.claim(event.id):
            return f"event {event.id} already handled"
        try:
            return await self._apply(event)
        except BaseException:
            if event.id:
                await handled.release(event.id)  # LiveKit retries an event that failed
            raise

    async def _apply(self, event: WebhookEvent) -> str:
        if event.event == "room_finished":
            return await self._room_finished(event.room.name)
        if event.event == "participant_joined":
            return await self._participant_joined(event.room.name, event.participant)
        if event.event not in EGRESS_EVENTS:
            return f"{event.event or 'event'} ignored"
        info = event.egress_info
        recording_id = _recording_id(info)
        if recording_id is None:
            return f"{event.event} ignored: not a file recording ovmeet can place"
        if not await self._recorder.started_by_ovmeet(recording_id):
            return f"{event.event} ignored: ovmeet did not start egress '{info.egress_id}'"
        filename = _filename(info)
        if not self._recorder.is_expected_output(recording_id, filename):
            logger.warning("egress %s writes %r, not where ovmeet asked", info.egress_id, filename)
            return f"{event.event} ignored: egress '{info.egress_id}' writes elsewhere"
        # Applied whether or not the room still exists: a recording outlives its room.
        recording = recording_of_egress(info, recording_id)
        stored, changed = await self._recorder.apply_status(recording)
        if not changed:
            return f"{event.event} ignored: recording '{recording_id}' is already {stored.status}"
        return f"recording '{recording_id}' is {recording.status}"

    async def _room_finished(self, room_name: str) -> str:
        """LiveKit closed the room (everyone left): tell the application, if it is ours."""
        try:
            room = await get_room(self._storage, room_name)
        except RoomNotFound:
            return "room_finished ignored: not an ovmeet room"
        await self._notifier.notify("roomFinished", room.to_json(self._base_url))
        return f"room '{room_name}' finished"

    async def _participant_joined(self, room_name: str, joined: ParticipantInfo) -> str:
        """Someone joined an ovmeet room: if it is being recorded, tell them (alone)."""
        if joined.kind == ParticipantInfo.Kind.EGRESS or not joined.sid:
            return "participant_joined ignored: not a person"
        if not await room_is_stored(self._storage, room_name):
            return "participant_joined ignored: not an ovmeet room"

        async def still_recording() -> bool:
            return await self._recorder.is_active(room_name)

        if not await still_recording():
            return f"participant '{joined.identity}' joined room '{room_name}'"
        self._signals.room_status(room_name, joined.sid, still_recording)
        return f"participant '{joined.identity}' joined room '{room_name}', told it is recorded"


def _filename(info: EgressInfo) -> str:
    return info.file_results[0].filename if info.file_results else info.file.filename


def _recording_id(info: EgressInfo) -> RecordingId | None:
    """Where OpenVidu Meet's layout puts this egress, if it is a single-file recording."""
    if info.stream_results or info.segment_results:
        return None
    filename = _filename(info)
    room = info.room_name
    if not (is_id(room) and is_id(info.egress_id)):
        return None
    uid = uid_of_media_filename(room, filename.rsplit("/", 1)[-1])
    if uid is None or not is_id(uid):
        expected = media_filename(room, "{uid}")
        logger.warning("egress %s writes %r, not %s", info.egress_id, filename, expected)
        return None
    return RecordingId(room, info.egress_id, uid)
