"""Playback: the bytes of a COMPLETE recording, whole or by range, with their HTTP headers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import format_datetime

from ovmeet.ids import RecordingId
from ovmeet.ranges import ByteRange, if_range_holds, parse_range
from ovmeet.recordings import (
    Recording,
    RecordingNotFound,
    RecordingStatus,
    parse_recording_id,
    read_recording,
)
from ovmeet.storage import ByteStream, ObjectInfo, ObjectNotFound, Storage
from ovmeet.storage.keys import recording_media_key


@dataclass(frozen=True)
class Playback:
    """An answer to a stream request: status, headers and the opened bytes (None for HEAD)."""

    status: int
    headers: dict[str, str]
    body: ByteStream | None


async def open_playback(
    storage: Storage,
    recording_id: str,
    range_header: str | None,
    if_range: str | None,
    *,
    with_body: bool = True,
) -> Playback:
    """Open the part of a COMPLETE recording the request asks for, with its headers; without
    `with_body` (HEAD), the same headers and nothing opened."""
    parsed = parse_recording_id(recording_id)
    info = await _playable_media(storage, parsed)
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
    if not with_body:
        return Playback(status, headers, None)
    body = await storage.open_range(recording_media_key(parsed), offset, length, etag=info.etag)
    return Playback(status, headers, body)


async def _playable_media(storage: Storage, recording_id: RecordingId) -> ObjectInfo:
    """The media of a COMPLETE recording; metadata and media are looked up together."""
    recording, media = await asyncio.gather(
        read_recording(storage, recording_id),
        storage.stat(recording_media_key(recording_id)),
        return_exceptions=True,
    )
    for result in (recording, media):
        if isinstance(result, BaseException) and not isinstance(result, ObjectNotFound):
            raise result
    if recording is None:
        raise RecordingNotFound()
    assert isinstance(recording, Recording)
    if recording.status != RecordingStatus.COMPLETE:
        raise RecordingNotFound(
            f"Recording '{recording_id}' cannot be played: its status is {recording.status}"
        )
    if isinstance(media, ObjectNotFound):
        raise RecordingNotFound(f"Recording '{recording_id}' has no media file in storage")
    assert isinstance(media, ObjectInfo)
    return media
