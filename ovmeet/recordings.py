"""Recordings: ids, metadata, playback of byte ranges, and import of finished MP4 files."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import anyio

from ovmeet.config import User
from ovmeet.errors import BadRequest, Forbidden, NotFound
from ovmeet.mp4 import NotMp4, duration_seconds
from ovmeet.ranges import ByteRange, if_range_holds, parse_range
from ovmeet.rooms import get_room
from ovmeet.storage import ByteStream, ObjectInfo, ObjectNotFound, Storage
from ovmeet.storage.keys import ID_PART, random_id, recording_media_key, recording_metadata_key

COMPLETE = "COMPLETE"
STATUSES = ("STARTING", "ACTIVE", "ENDING", COMPLETE, "FAILED", "ABORTED", "LIMIT_REACHED")
FINAL_STATUSES = frozenset((COMPLETE, "FAILED", "ABORTED", "LIMIT_REACHED"))

_RECORDING_ID = re.compile(rf"({ID_PART})--({ID_PART})--({ID_PART})")
_ID_PART = re.compile(ID_PART)
MAX_RECORDING_ID = 512


class RecordingNotFound(NotFound):
    def __init__(self, message: str = "Recording not found") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class RecordingRef:
    """A well-formed recordingId `{roomId}--{egressId}--{uid}` and the keys it owns."""

    room_id: str
    egress_id: str
    uid: str

    @property
    def recording_id(self) -> str:
        return f"{self.room_id}--{self.egress_id}--{self.uid}"

    @property
    def filename(self) -> str:
        return f"{self.room_id}--{self.uid}.mp4"

    @property
    def metadata_key(self) -> str:
        return recording_metadata_key(self.room_id, self.egress_id, self.uid)

    @property
    def media_key(self) -> str:
        return recording_media_key(self.room_id, self.uid)


def parse_recording_id(recording_id: str) -> RecordingRef:
    """The parts of `recording_id`; RecordingNotFound for anything else (no storage touched)."""
    match = None
    if len(recording_id) <= MAX_RECORDING_ID:
        match = _RECORDING_ID.fullmatch(recording_id)
    if match is None:
        raise RecordingNotFound()
    return RecordingRef(*match.groups())


def is_id_part(text: str) -> bool:
    return len(text) <= MAX_RECORDING_ID and _ID_PART.fullmatch(text) is not None


@dataclass(frozen=True)
class Playback:
    """An answer to a stream request: status, headers and the opened bytes."""

    status: int
    headers: dict[str, str]
    body: ByteStream


async def open_playback(
    storage: Storage,
    user: User,
    recording_id: str,
    range_header: str | None,
    if_range: str | None,
) -> Playback:
    """Open the part of a COMPLETE recording the request asks for, with its headers."""
    if user.role != "ADMIN":
        raise Forbidden("Insufficient permissions to access this resource")
    ref = parse_recording_id(recording_id)
    info = await _playable_media(storage, ref)
    byte_range: ByteRange | None = None
    if range_header is not None and if_range_holds(if_range, info):
        byte_range = parse_range(range_header, info.size)
    headers = {
        "Content-Type": "video/mp4",
        "Accept-Ranges": "bytes",
        "ETag": info.etag,
        "Last-Modified": format_datetime(info.last_modified, usegmt=True),
        "Cache-Control": "private",
    }
    if byte_range is None:
        offset, length, status = 0, info.size, 200
    else:
        offset, length, status = byte_range.start, byte_range.length, 206
        headers["Content-Range"] = byte_range.content_range(info.size)
    headers["Content-Length"] = str(length)
    body = await storage.open_range(ref.media_key, offset, length, etag=info.etag)
    return Playback(status, headers, body)


async def _playable_media(storage: Storage, ref: RecordingRef) -> ObjectInfo:
    """The media of a COMPLETE recording; metadata and media are looked up together."""
    gathered = await asyncio.gather(
        storage.read_json(ref.metadata_key), storage.stat(ref.media_key), return_exceptions=True
    )
    metadata: Any = gathered[0]
    media = gathered[1]
    for result in (metadata, media):
        if isinstance(result, BaseException) and not isinstance(result, ObjectNotFound):
            raise result
    if isinstance(metadata, ObjectNotFound):
        raise RecordingNotFound()
    status = metadata.get("status") if isinstance(metadata, dict) else None
    if status != COMPLETE:
        raise RecordingNotFound(
            f"Recording '{ref.recording_id}' cannot be played: its status is {status}"
        )
    if isinstance(media, ObjectNotFound):
        raise RecordingNotFound(f"Recording '{ref.recording_id}' has no media file in storage")
    assert isinstance(media, ObjectInfo)
    return media


async def import_recording(
    storage: Storage, source: Path, *, room_name: str, egress_id: str | None = None
) -> dict[str, Any]:
    """Store a finished MP4 as a COMPLETE recording of `room_name`; return its metadata."""
    room = await get_room(storage, room_name)
    if egress_id is not None and not is_id_part(egress_id):
        raise BadRequest(f"egress id {egress_id!r} may use only letters, digits, _ and single -")
    try:
        duration, ended = await anyio.to_thread.run_sync(_probe, source)
    except NotMp4 as error:
        raise BadRequest(f"{source} is not an MP4 file: {error}") from None
    ref = RecordingRef(room.room_name, egress_id or f"EG_{random_id()}", random_id())
    info = await storage.write_file(ref.media_key, source)
    metadata = {
        "recordingId": ref.recording_id,
        "roomId": ref.room_id,
        "outputMode": "COMPOSED",
        "status": COMPLETE,
        "filename": ref.filename,
        "startDate": ended - int(duration * 1000),
        "endDate": ended,
        "duration": duration,
        "size": info.size,
        "details": f"Imported from {source.name}",
    }
    try:
        await storage.write_json(ref.metadata_key, metadata)
    except BaseException:
        await storage.delete(ref.media_key)  # nothing half-written
        raise
    return metadata


def _probe(source: Path) -> tuple[float, int]:
    """Duration in seconds and modification time in ms of an MP4 file."""
    return duration_seconds(source), int(source.stat().st_mtime * 1000)
