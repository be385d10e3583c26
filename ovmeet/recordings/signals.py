"""In-call signals: what the release's front end learns inside a call from LiveKit data messages
(a recording starting, started, stopping, stopped, failed or deleted; the room's recording state
for someone who has just joined), sent reliably through RoomService SendData."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ovmeet.livekit.gateway import LiveKitGateway
from ovmeet.recordings.store import Recording, RecordingStatus
from ovmeet.storage.keys import media_filename
from ovmeet.support.errors import DependencyError

logger = logging.getLogger("ovmeet.signals")

ROOM_STATUS = "roomStatus"
RECORDING_DELETED = "recordingDeleted"
TOPIC_OF_STATUS = {
    RecordingStatus.STARTING: "recordingStarting",
    RecordingStatus.ACTIVE: "recordingStarted",
    RecordingStatus.ENDING: "recordingStopping",
    RecordingStatus.COMPLETE: "recordingStopped",
    RecordingStatus.LIMIT_REACHED: "recordingStopped",
    RecordingStatus.FAILED: "recordingFailed",
    RecordingStatus.ABORTED: "recordingFailed",
}
# The status names of the release's front end (openvidu-components).
SIGNALLED_STATUS = {
    RecordingStatus.STARTING: "STARTING",
    RecordingStatus.ACTIVE: "STARTED",
    RecordingStatus.ENDING: "STOPPING",
    RecordingStatus.COMPLETE: "READY",
    RecordingStatus.LIMIT_REACHED: "READY",
    RecordingStatus.FAILED: "FAILED",
    RecordingStatus.ABORTED: "FAILED",
}
# A participant_joined webhook can reach ovmeet before the participant can receive data
# (LiveKit v1.13.5 sends it as soon as the connection is up): the room status is sent again
# after these delays, each time only if it still holds.
ROOM_STATUS_DELAYS = (0.0, 1.0, 3.0)


def recording_payload(recording: Recording) -> dict[str, Any]:
    """A recording as the front end reads it in a signal."""
    return {
        "id": str(recording.id),
        "roomName": recording.id.room_id,
        "roomId": recording.id.room_id,
        "status": SIGNALLED_STATUS[recording.status],
        "filename": media_filename(recording.id.room_id, recording.id.uid),
        "startedAt": recording.start_date,
        "endedAt": recording.end_date,
        "duration": recording.duration,
        "size": recording.size,
    }


class RoomSignals:
    """Sends signals to rooms without holding up the caller: each room's signals leave in the
    order they were given; a room that is not live, or a LiveKit that fails, only logs."""

    def __init__(self, livekit: LiveKitGateway) -> None:
        self._livekit = livekit
        self._last: dict[str, asyncio.Task[None]] = {}

    def recording(self, recording: Recording, deleted: bool = False) -> None:
        """Tell the recording's room that it changed (or was deleted)."""
        topic = RECORDING_DELETED if deleted else TOPIC_OF_STATUS[recording.status]
        self._queue(recording.id.room_id, topic, recording_payload(recording), ())

    def room_status(
        self, room: str, participant_sid: str, still_recording: Callable[[], Awaitable[bool]]
    ) -> None:
        """Tell one participant who has just joined that the room is being recorded."""

        async def send() -> None:
            for delay in ROOM_STATUS_DELAYS:
                await asyncio.sleep(delay)
                if not await still_recording():
                    return
                payload = {"isRecordingStarted": True}
                await self._send(room, ROOM_STATUS, payload, (participant_sid,))

        self._chain(room, send)

    async def aclose(self) -> None:
        """Let the signals under way leave, for a moment; then drop them."""
        pending = list(self._last.values())
        if pending:
            _, late = await asyncio.wait(pending, timeout=2)
            for task in late:
                task.cancel()

    def _queue(self, room: str, topic: str, payload: Any, to: tuple[str, ...]) -> None:
        self._chain(room, lambda: self._send(room, topic, payload, to))

    def _chain(self, room: str, work: Callable[[], Awaitable[None]]) -> None:
        previous = self._last.get(room)

        async def after_previous() -> None:
            if previous is not None:
                await asyncio.wait([previous])
            await work()

        task = asyncio.create_task(after_previous())
        self._last[room] = task
        task.add_done_callback(lambda done: self._forget(room, done))

    def _forget(self, room: str, task: asyncio.Task[None]) -> None:
        if self._last.get(room) is task:
            del self._last[room]

    async def _send(self, room: str, topic: str, payload: Any, to: tuple[str, ...]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        try:
            if await self._livekit.send_data(room, topic, data, to):
                logger.debug("signal %s sent to room %s", topic, room)
        except DependencyError as error:
            logger.warning("signal %s to room %s not sent: %s", topic, room, error)
