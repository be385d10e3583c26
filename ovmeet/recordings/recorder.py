"""Recording through LiveKit Egress: start, stop, every status change, and the end of what
LiveKit no longer runs.

One recording per room, across processes: a recording holds its room's lock
(`ovmeet.recordings.locks`: in Redis when configured, else in the storage) from its start to its
end. Of concurrent starts for one room, in any processes, one takes it; the others are a 409.
The lock goes when the recording ends (whoever learns it: a webhook, a stop, the clean-up), or
when it is stale: older than the start timeout and naming no egress LiveKit still runs. LiveKit's
list of the room's active egresses is checked before each start as well (a lock store that
forgot, a Redis restarted empty or an S3 server that ignores conditional writes, still refuses
a second recording of a room being recorded), and a start that lost its lock while LiveKit
answered stops the egress it got.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from livekit.protocol.egress import EgressInfo, EgressStatus

from ovmeet.auth.tokens import Participant
from ovmeet.livekit.gateway import LiveKitGateway, file_output
from ovmeet.preferences.notifier import Notifier
from ovmeet.recordings import store as recordings
from ovmeet.recordings.locks import RecordingLock, RecordingLocks
from ovmeet.recordings.signals import RoomSignals
from ovmeet.recordings.store import (
    Recording,
    RecordingConflict,
    RecordingStatus,
    get_recording,
    read_recording,
    write_recording,
)
from ovmeet.rooms.store import get_room
from ovmeet.storage import ObjectNotFound, Storage
from ovmeet.storage.keys import media_key, recording_media_key
from ovmeet.support.config import Config
from ovmeet.support.errors import DependencyError, Forbidden
from ovmeet.support.ids import RecordingId, random_id
from ovmeet.support.keyed_locks import KeyedLocks

logger = logging.getLogger("ovmeet.recorder")

POLL_SECONDS = 0.2

STATUS_OF_EGRESS = {
    EgressStatus.EGRESS_STARTING: RecordingStatus.STARTING,
    EgressStatus.EGRESS_ACTIVE: RecordingStatus.ACTIVE,
    EgressStatus.EGRESS_ENDING: RecordingStatus.ENDING,
    EgressStatus.EGRESS_COMPLETE: RecordingStatus.COMPLETE,
    EgressStatus.EGRESS_FAILED: RecordingStatus.FAILED,
    EgressStatus.EGRESS_ABORTED: RecordingStatus.ABORTED,
    EgressStatus.EGRESS_LIMIT_REACHED: RecordingStatus.LIMIT_REACHED,
}
# Statuses only move forward: STARTING -> ACTIVE -> ENDING -> one final status, which stays.
RANK = {
    RecordingStatus.STARTING: 0,
    RecordingStatus.ACTIVE: 1,
    RecordingStatus.ENDING: 2,
    **{status: 3 for status in RecordingStatus if status.is_final},
}
# What the application is told when a recording reaches a status.
EVENT_OF_STATUS = {
    RecordingStatus.STARTING: "recordingStarted",
    RecordingStatus.ACTIVE: "recordingUpdated",
    RecordingStatus.ENDING: "recordingUpdated",
    **{status: "recordingEnded" for status in RecordingStatus if status.is_final},
}


def recording_of_egress(info: EgressInfo, recording_id: RecordingId) -> Recording:
    """OpenVidu Meet's recording for an EgressInfo (LiveKit's times are in ns)."""
    file = info.file_results[0] if info.file_results else info.file
    started = info.started_at or info.updated_at
    return Recording(
        id=recording_id,
        status=STATUS_OF_EGRESS.get(info.status, RecordingStatus.FAILED),
        start_date=started // 1_000_000,
        end_date=info.ended_at // 1_000_000,
        duration=file.duration / 1e9,
        size=file.size,
        error_code=info.error_code,
        error=info.error or None,
        details=info.details,
    )


@dataclass
class Abandoned:
    """What ending abandoned recordings did: the recordings ended, and the rooms freed."""

    aborted: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)


class Recorder:
    """Starts and stops the recordings of rooms, applies each status LiveKit reports, and ends
    the recordings LiveKit no longer runs."""

    def __init__(
        self,
        config: Config,
        storage: Storage,
        livekit: LiveKitGateway,
        locks: RecordingLocks,
        notifier: Notifier,
        signals: RoomSignals,
    ) -> None:
        self._config, self._storage, self._livekit = config, storage, livekit
        self._locks, self._notifier, self._signals = locks, notifier, signals
        # A recording's status changes, one at a time: a webhook and the start's polling can
        # report the same change at once, and the application must be told it once.
        self._changes = KeyedLocks()

    def is_expected_output(self, recording_id: RecordingId, filename: str) -> bool:
        """Whether an egress writes exactly where ovmeet asks the recording's egress to write."""
        return filename == file_output(self._config, recording_media_key(recording_id)).filepath

    async def apply_status(self, recording: Recording) -> tuple[Recording, bool]:
        """Store `recording` if it moves its status forward; then tell the application, and free
        the room when it has ended. The recording as stored now, and whether this call changed it
        (not for a status already reached or passed). Within a process, changes to one recording
        take turns; across processes, a change may be told twice (webhooks are at least once)."""
        async with self._changes.hold(str(recording.id)):
            stored = await read_recording(self._storage, recording.id)
            if stored is not None:
                if RANK[recording.status] <= RANK[stored.status]:
                    return stored, False
                if stored.start_date:  # the listing index is by the first start date: keep it
                    recording = replace(recording, start_date=stored.start_date)
            await write_recording(self._storage, recording, new=stored is None)
            logger.info("recording %s is %s", recording.id, recording.status)
            if recording.status.is_final:
                await self._release(recording.id)
            await self._notifier.notify(EVENT_OF_STATUS[recording.status], recording.to_json())
            self._signals.recording(recording)
            return recording, True

    async def delete(self, recording_id: str) -> None:
        """Delete a recording that has ended, and tell its room."""
        await self._settle(recording_id)
        deleted = await recordings.delete_recording(self._storage, recording_id)
        self._signals.recording(deleted, deleted=True)

    async def delete_many(
        self, recording_ids: list[str]
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Delete each recording that can be (see `recordings.delete_recordings`), telling each
        room of the ones that went."""
        for recording_id in recording_ids[: recordings.MAX_BULK_DELETE]:
            await self._settle(recording_id)
        deleted, not_deleted = await recordings.delete_recordings(self._storage, recording_ids)
        for recording in deleted:
            self._signals.recording(recording, deleted=True)
        return [str(recording.id) for recording in deleted], not_deleted

    async def started_by_ovmeet(self, recording_id: RecordingId) -> bool:
        """Whether ovmeet started this egress for this recording: its metadata is stored, or the
        room's lock names the egress (between LiveKit's answer and the first write)."""
        if await read_recording(self._storage, recording_id) is not None:
            return True
        lock = await self._locks.read(recording_id.room_id)
        return lock is not None and (lock.egress_id, lock.uid) == (
            recording_id.egress_id,
            recording_id.uid,
        )

    async def _settle(self, recording_id: str) -> None:
        """Before a deletion: a recording still in progress whose egress has ended (or that LiveKit
        forgot) gets its final status, so that it can go. Nothing changes if LiveKit cannot say."""
        parsed = RecordingId.parse(recording_id)
        if parsed is None:
            return
        recording = await read_recording(self._storage, parsed)
        if recording is None or recording.status.is_final:
            return
        try:
            info = await self._livekit.egress(parsed.egress_id)
        except DependencyError as error:
            logger.warning("recording %s stays %s: %s", parsed, recording.status, error)
            return
        if info is None or _is_final(info):
            await self._finish(parsed, info)

    async def is_active(self, room_id: str) -> bool:
        """Whether the room's recording in progress is ACTIVE (as its lock and metadata say)."""
        lock = await self._locks.read(room_id)
        if lock is None or not (lock.egress_id and lock.uid):
            return False
        recording_id = RecordingId(room_id, lock.egress_id, lock.uid)
        recording = await read_recording(self._storage, recording_id)
        return recording is not None and recording.status == RecordingStatus.ACTIVE

    async def start(self, room_id: str, participant: Participant | None) -> Recording:
        """Start recording the room and answer once LiveKit's egress is ACTIVE."""
        room = await get_room(self._storage, room_id)
        _require_moderator(participant, room.room_name)
        if not room.preferences.recording:
            raise Forbidden(
                f"Recording is disabled in room '{room.room_name}'", name="Recording Error"
            )
        lock = RecordingLock(room.room_name, random_id(), _now_ms())
        being_recorded = RecordingConflict(f"The room '{room.room_name}' is already being recorded")
        if not await self._take_lock(lock):
            raise being_recorded
        try:
            if await self._livekit.active_egresses(room.room_name):
                raise being_recorded
            output = file_output(self._config, media_key(room.room_name, lock.uid))
            info = await self._livekit.start_recording(room.room_name, output)
            if info is None:
                raise RecordingConflict(
                    f"The room '{room.room_name}' has nobody in it: a recording starts once "
                    "someone has joined"
                )
        except BaseException:
            await self._free(lock)
            raise
        try:
            still_held = await self._locks.update(lock.with_egress(info.egress_id))
        except BaseException:
            await self._stop_unrecorded(info.egress_id, "its room's lock could not be updated")
            raise
        if not still_held:  # the start took longer than its lease, and another start took over
            await self._stop_unrecorded(info.egress_id, "another start took the room over")
            raise being_recorded
        recording_id = RecordingId(room.room_name, info.egress_id, lock.uid)
        await self.apply_status(
            replace(recording_of_egress(info, recording_id), start_date=_now_ms())
        )
        return await self._until_active(recording_id)

    async def _stop_unrecorded(self, egress_id: str, why: str) -> None:
        """Stop an egress this start got but cannot record as the room's recording."""
        logger.warning("stopping egress %s, which no recording will name: %s", egress_id, why)
        try:
            await self._livekit.stop_recording(egress_id)
        except DependencyError as error:
            logger.warning("egress %s could not be stopped: %s", egress_id, error.detail)

    async def _free(self, lock: RecordingLock) -> None:
        """Free the room of a start that failed (a lock store that fails leaves it to the
        clean-up)."""
        try:
            await self._locks.remove(lock)
        except DependencyError as error:
            logger.warning(
                "room %s stays locked until the clean-up: %s", lock.room_id, error.detail
            )

    async def _until_active(self, recording_id: RecordingId) -> Recording:
        """The recording once its egress is ACTIVE; else it is stopped and marked, and this
        fails."""
        timeout = self._config.recording_started_timeout
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = await self._livekit.egress(recording_id.egress_id)
            except DependencyError as error:  # a slow or failing answer: ask again until the end
                if time.monotonic() >= deadline:
                    raise
                logger.warning("recording %s: %s; asking again", recording_id, error)
                await asyncio.sleep(POLL_SECONDS)
                continue
            status = STATUS_OF_EGRESS.get(info.status, RecordingStatus.FAILED) if info else None
            if info is not None and status in (RecordingStatus.ACTIVE, RecordingStatus.ENDING):
                stored, _ = await self.apply_status(recording_of_egress(info, recording_id))
                return stored
            if info is None or status is None or status.is_final:
                why = (info.error if info else "") or f"the egress is {status or 'gone'}"
                await self._end(recording_id, RecordingStatus.FAILED, why, info)
                raise DependencyError(
                    "Recording failed to start",
                    f"egress of {recording_id}: {why}",
                    name="Recording Error",
                )
            if time.monotonic() >= deadline:
                await self._livekit.stop_recording(recording_id.egress_id)
                why = f"the egress did not become active within {timeout} s"
                await self._end(recording_id, RecordingStatus.ABORTED, why, info)
                raise DependencyError(
                    f"Recording did not start within {timeout} s", why, name="Recording Error"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def stop(self, recording_id: str, participant: Participant | None) -> Recording:
        """Ask LiveKit to stop the recording; it is ENDING until the file is written."""
        recording = await get_recording(self._storage, recording_id)
        _require_moderator(participant, recording.id.room_id)
        info = await self._livekit.egress(recording.id.egress_id)
        status = STATUS_OF_EGRESS.get(info.status) if info else None
        if status == RecordingStatus.STARTING:
            raise RecordingConflict(
                f"Recording '{recording_id}' is starting: it cannot be stopped yet"
            )
        if info is None or status != RecordingStatus.ACTIVE:
            if not recording.status.is_final and (info is None or _is_final(info)):
                await self._finish(recording.id, info)  # what no webhook said, if none came
            raise RecordingConflict(f"Recording '{recording_id}' is already stopped")
        stopped = await self._livekit.stop_recording(recording.id.egress_id)
        if stopped is None:  # it ended, or LiveKit forgot it, between the two calls
            raise RecordingConflict(f"Recording '{recording_id}' is already stopped")
        now, _ = await self.apply_status(recording_of_egress(stopped, recording.id))
        return now

    async def end_abandoned(self) -> Abandoned:
        """End the recordings in progress whose egress LiveKit no longer runs (with the final
        status LiveKit gives, ABORTED if it forgot the egress), and free their rooms. Safe in
        every process at once."""
        abandoned = Abandoned()
        for room_id in await self._locks.rooms():
            lock = await self._locks.read(room_id)
            try:
                stale, info = (False, None) if lock is None else await self._stale(lock)
            except DependencyError as error:  # the next round asks again; the rooms go on
                logger.warning("clean-up: the lock of room %s stays: %s", room_id, error)
                continue
            if lock is None or not stale:
                continue
            final = await self._retire(lock, info)
            if final is not None:
                recording, status = final
                ended = abandoned.aborted if status == RecordingStatus.ABORTED else abandoned.ended
                ended.append(str(recording))
            # The recording's end frees its room; a lock naming no recording is freed here.
            if await self._locks.remove(lock) or final is not None:
                abandoned.released.append(room_id)
        return abandoned

    async def _take_lock(self, lock: RecordingLock) -> bool:
        """Take the room's lock; a stale one is taken over (its recording ended first)."""
        locks = self._locks
        if await locks.create(lock):
            return True
        held = await locks.read(lock.room_id)
        if held is None:  # freed meanwhile
            return await locks.create(lock)
        stale, info = await self._stale(held)
        if not stale:
            return False
        await self._retire(held, info)
        return await locks.take_over(held, lock)

    async def _stale(self, lock: RecordingLock) -> tuple[bool, EgressInfo | None]:
        """Whether a lock no longer guards a recording (old enough that its start is over, and
        naming no egress LiveKit still runs), and what LiveKit knows of its egress."""
        age_ms = _now_ms() - lock.since
        if age_ms < self._config.recording_started_timeout * 1000 + 5_000:
            return False, None
        if not lock.egress_id:
            return True, None
        info = await self._livekit.egress(lock.egress_id)
        return info is None or _is_final(info), info

    async def _retire(
        self, lock: RecordingLock, info: EgressInfo | None
    ) -> tuple[RecordingId, RecordingStatus] | None:
        """End the recording of a stale lock, if it had not ended (see `_finish`)."""
        if not (lock.egress_id and lock.uid):
            return None
        return await self._finish(RecordingId(lock.room_id, lock.egress_id, lock.uid), info)

    async def _finish(
        self, recording_id: RecordingId, info: EgressInfo | None
    ) -> tuple[RecordingId, RecordingStatus] | None:
        """Record the end of a recording whose egress has ended (`info`) or that LiveKit forgot
        (None); its id and final status, or None if it had ended already."""
        if info is not None:
            ended, changed = await self.apply_status(recording_of_egress(info, recording_id))
            return (recording_id, ended.status) if changed else None
        try:
            size = (await self._storage.stat(recording_media_key(recording_id))).size
        except ObjectNotFound:
            why = "LiveKit no longer knows its egress"
            changed = await self._end(recording_id, RecordingStatus.ABORTED, why, None)
            return (recording_id, RecordingStatus.ABORTED) if changed else None
        # The egress wrote its file to the end (an S3 upload appears whole): it can be played.
        why = "LiveKit no longer knows its egress; its file is in storage"
        if await self._end(recording_id, RecordingStatus.COMPLETE, why, None, size):
            return recording_id, RecordingStatus.COMPLETE
        return None

    async def _release(self, recording_id: RecordingId) -> None:
        """Free the room of an ended recording (only its own lock)."""
        await self._free(RecordingLock(recording_id.room_id, recording_id.uid, 0))

    async def _end(
        self,
        recording_id: RecordingId,
        status: RecordingStatus,
        why: str,
        info: EgressInfo | None,
        size: int = 0,
    ) -> bool:
        """Mark the recording ended with `status` and why (also when LiveKit will never say);
        False if it had ended already."""
        base = (
            recording_of_egress(info, recording_id)
            if info is not None
            else Recording(id=recording_id, status=status, start_date=_now_ms(), size=size)
        )
        end_date = base.end_date or _now_ms()
        if status == RecordingStatus.COMPLETE:  # a recording that can be played has no error
            ended = replace(base, status=status, details=why, end_date=end_date)
        else:
            ended = replace(base, status=status, error=why, end_date=end_date)
        _, changed = await self.apply_status(ended)
        if not changed:
            await self._release(recording_id)
        return changed


def _require_moderator(participant: Participant | None, room_id: str) -> None:
    if participant is None or participant.role != "moderator" or participant.room != room_id:
        raise Forbidden(
            "Insufficient permissions to access this resource: "
            f"only a moderator of room '{room_id}' can do this"
        )


def _is_final(info: EgressInfo) -> bool:
    return STATUS_OF_EGRESS.get(info.status, RecordingStatus.FAILED).is_final


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
