"""Recordings: their statuses, their metadata (OpenVidu Meet's MeetRecording), and import."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio

from ovmeet.errors import BadRequest, NotFound
from ovmeet.ids import RecordingId, is_id, random_id
from ovmeet.mp4 import NotMp4, duration_seconds
from ovmeet.rooms import get_room
from ovmeet.storage import ObjectNotFound, Storage, StorageError
from ovmeet.storage.keys import recording_media_key, recording_metadata_key


class RecordingStatus(StrEnum):
    STARTING = "STARTING"
    ACTIVE = "ACTIVE"
    ENDING = "ENDING"
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    LIMIT_REACHED = "LIMIT_REACHED"

    @property
    def is_final(self) -> bool:
        """Whether the recording has ended; a final status never changes again."""
        return self in _FINAL


_FINAL = frozenset(
    (
        RecordingStatus.COMPLETE,
        RecordingStatus.FAILED,
        RecordingStatus.ABORTED,
        RecordingStatus.LIMIT_REACHED,
    )
)


class RecordingNotFound(NotFound):
    def __init__(self, message: str = "Recording not found") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class Recording:
    """A recording's metadata as OpenVidu Meet stores it (dates in ms, duration in s)."""

    id: RecordingId
    status: RecordingStatus
    start_date: int
    end_date: int = 0
    duration: float = 0.0
    size: int = 0
    error_code: int = 0
    error: str | None = None
    details: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "recordingId": str(self.id),
            "roomId": self.id.room_id,
            "outputMode": "COMPOSED",
            "status": self.status.value,
            "filename": self.id.filename,
            "startDate": self.start_date,
            "endDate": self.end_date,
            "duration": self.duration,
            "size": self.size,
            "errorCode": self.error_code,
            "error": self.error,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, recording_id: RecordingId, data: Any) -> Recording:
        """The stored metadata of `recording_id`; StorageError if it is not valid."""
        try:
            return cls(
                id=recording_id,
                status=RecordingStatus(data["status"]),
                start_date=int(data.get("startDate") or 0),
                end_date=int(data.get("endDate") or 0),
                duration=float(data.get("duration") or 0),
                size=int(data.get("size") or 0),
                error_code=int(data.get("errorCode") or 0),
                error=data.get("error"),
                details=str(data.get("details") or ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise StorageError(
                f"the stored metadata of recording '{recording_id}' is not valid"
            ) from None


def parse_recording_id(text: str) -> RecordingId:
    """The parts of `text`; RecordingNotFound for anything else (no storage touched)."""
    recording_id = RecordingId.parse(text)
    if recording_id is None:
        raise RecordingNotFound()
    return recording_id


async def read_recording(storage: Storage, recording_id: RecordingId) -> Recording | None:
    """The stored metadata of `recording_id`, or None if there is none."""
    key = recording_metadata_key(recording_id)
    try:
        return Recording.from_json(recording_id, await storage.read_json(key))
    except ObjectNotFound:
        return None


async def write_recording(storage: Storage, recording: Recording) -> None:
    await storage.write_json(recording_metadata_key(recording.id), recording.to_json())


async def import_recording(
    storage: Storage, source: Path, *, room_name: str, egress_id: str | None = None
) -> Recording:
    """Store a finished MP4 as a COMPLETE recording of `room_name`."""
    room = await get_room(storage, room_name)
    if egress_id is not None and not is_id(egress_id):
        raise BadRequest(f"egress id {egress_id!r} may use only letters, digits, _ and single -")
    try:
        duration, ended = await anyio.to_thread.run_sync(_probe, source)
    except NotMp4 as error:
        raise BadRequest(f"{source} is not an MP4 file: {error}") from None
    recording_id = RecordingId(room.room_name, egress_id or f"EG_{random_id()}", random_id())
    info = await storage.write_file(recording_media_key(recording_id), source)
    recording = Recording(
        id=recording_id,
        status=RecordingStatus.COMPLETE,
        start_date=ended - int(duration * 1000),
        end_date=ended,
        duration=duration,
        size=info.size,
        details=f"Imported from {source.name}",
    )
    try:
        await write_recording(storage, recording)
    except BaseException:
        await storage.delete(recording_media_key(recording_id))  # nothing half-written
        raise
    return recording


def _probe(source: Path) -> tuple[float, int]:
    """Duration in seconds and modification time in ms of an MP4 file."""
    return duration_seconds(source), int(source.stat().st_mtime * 1000)
