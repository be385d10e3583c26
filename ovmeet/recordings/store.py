"""Recordings: their statuses, their metadata (OpenVidu Meet's MeetRecording), and import."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio

from ovmeet.recordings.mp4 import NotMp4, duration_seconds
from ovmeet.rooms.store import get_room
from ovmeet.storage import ObjectNotFound, Storage, StorageError, index_once
from ovmeet.storage.keys import (
    RECORDING_INDEX_BUILT,
    RECORDING_METADATA,
    media_filename,
    recording_index_keys,
    recording_index_prefix,
    recording_media_key,
    recording_metadata_key,
    recording_of_index_key,
    recording_of_metadata_key,
)
from ovmeet.support.errors import BadRequest, Conflict, NotFound, UnprocessableEntity
from ovmeet.support.ids import RecordingId, is_id, random_id


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
    default_name = "Recording Error"

    def __init__(self, message: str = "Recording not found") -> None:
        super().__init__(message)


class RecordingConflict(Conflict):
    default_name = "Recording Error"


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
            "filename": media_filename(self.id.room_id, self.id.uid),
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


def parse_recording_id(recording_id: str) -> RecordingId:
    """The parts of a recordingId; RecordingNotFound for anything else (no storage touched)."""
    parsed = RecordingId.parse(recording_id)
    if parsed is None:
        raise RecordingNotFound()
    return parsed


async def read_recording(storage: Storage, recording_id: RecordingId) -> Recording | None:
    """The stored metadata of `recording_id`, or None if there is none."""
    key = recording_metadata_key(recording_id)
    try:
        return Recording.from_json(recording_id, await storage.read_json(key))
    except ObjectNotFound:
        return None


async def write_recording(storage: Storage, recording: Recording, *, new: bool = False) -> None:
    """Store the metadata; a `new` recording also gets its entries in the listing index (by its
    start date, which later writes keep)."""
    await storage.write_json(recording_metadata_key(recording.id), recording.to_json())
    if new:
        for key in recording_index_keys(recording.id, recording.start_date):
            await storage.write_json(key, {})


async def index_stored_recordings(storage: Storage) -> int:
    """Index the recordings stored before the listing index existed (by an earlier ovmeet or
    by OpenVidu Meet itself), once per storage; how many it indexed."""

    async def index() -> int:
        indexed = 0
        for key in await storage.list(RECORDING_METADATA):
            recording_id = recording_of_metadata_key(key)
            recording = await read_recording(storage, recording_id) if recording_id else None
            if recording is not None:
                for index_key in recording_index_keys(recording.id, recording.start_date):
                    await storage.write_json(index_key, {})
                indexed += 1
        return indexed

    return await index_once(storage, RECORDING_INDEX_BUILT, index)


async def get_recording(storage: Storage, recording_id: str) -> Recording:
    """The recording `recording_id` names; RecordingNotFound if there is none."""
    recording = await read_recording(storage, parse_recording_id(recording_id))
    if recording is None:
        raise RecordingNotFound(f"Recording '{recording_id}' not found")
    return recording


async def list_recordings(
    storage: Storage, room_id: str | None, max_items: int, page_token: str | None
) -> tuple[list[Recording], str | None]:
    """Newest first: one page of `max_items`, and the token of the next page (None at the end).

    The page comes from a listing of the index that reads about `max_items` keys, whatever
    the number of recordings.
    """
    if room_id is not None and not is_id(room_id):
        return [], None  # no room has such a name: no recordings
    prefix = recording_index_prefix(room_id)
    start_after = prefix + _page_start(page_token) if page_token else ""
    keys = await storage.list_page(prefix, start_after, max_items + 1)
    page, more = keys[:max_items], len(keys) > max_items
    ids = [recording_id for key in page if (recording_id := recording_of_index_key(key))]
    stored = await asyncio.gather(*(read_recording(storage, i) for i in ids))
    found = [recording for recording in stored if recording is not None]  # None: just deleted
    next_token = _page_token(page[-1].removeprefix(prefix)) if more else None
    return found, next_token


def _page_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _page_start(token: str) -> str:
    """The index entry a token continues after; a 422 if it is not one of ours."""
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        name = ""
    if not (name.endswith(".json") and "/" not in name and recording_of_index_key(name)):
        raise UnprocessableEntity(
            "Invalid request parameters", [("nextPageToken", "not a token this API gave")]
        )
    return name


async def delete_recording(storage: Storage, recording_id: str) -> Recording:
    """Delete a recording that has ended: media, metadata, index entries."""
    recording = await get_recording(storage, recording_id)
    if not recording.status.is_final:
        raise RecordingConflict(
            f"Recording '{recording_id}' is in progress ({recording.status}): stop it first"
        )
    await storage.delete(recording_media_key(recording.id))
    for key in recording_index_keys(recording.id, recording.start_date):
        await storage.delete(key)
    await storage.delete(recording_metadata_key(recording.id))  # last: it finds the others
    return recording


MAX_BULK_DELETE = 100


async def delete_recordings(
    storage: Storage, recording_ids: list[str]
) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Delete each recording that can be, of at most MAX_BULK_DELETE: (the deleted recordings,
    [(id, why not)])."""
    if not 1 <= len(recording_ids) <= MAX_BULK_DELETE:
        raise UnprocessableEntity(
            "Invalid request parameters",
            [("recordingIds", f"name 1 to {MAX_BULK_DELETE} recording ids, separated by commas")],
        )
    deleted, not_deleted = [], []
    for recording_id in recording_ids:
        try:
            deleted.append(await delete_recording(storage, recording_id))
        except (NotFound, Conflict) as error:
            not_deleted.append((recording_id, error.message))
    return deleted, not_deleted


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
        await write_recording(storage, recording, new=True)
    except BaseException:
        await storage.delete(recording_media_key(recording_id))  # nothing half-written
        raise
    return recording


def _probe(source: Path) -> tuple[float, int]:
    """Duration in seconds and modification time in ms of an MP4 file."""
    return duration_seconds(source), int(source.stat().st_mtime * 1000)
