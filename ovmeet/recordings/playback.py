"""Playback: the bytes of a COMPLETE recording, whole or by range, with their HTTP headers; or,
when the deployment says so (MEET_RECORDING_DELIVERY), where to get them instead."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import format_datetime
from urllib.parse import urlsplit

from ovmeet.recordings.ranges import ByteRange, if_range_holds, parse_range
from ovmeet.recordings.store import (
    Recording,
    RecordingNotFound,
    RecordingStatus,
    parse_recording_id,
    read_recording,
)
from ovmeet.storage import ByteStream, ObjectChanged, ObjectInfo, ObjectNotFound, Storage
from ovmeet.storage.keys import recording_media_key
from ovmeet.support.cache import LruCache
from ovmeet.support.config import Delivery
from ovmeet.support.ids import RecordingId


@dataclass(frozen=True)
class Playback:
    """An answer to a stream request: status, headers and the opened bytes (None for HEAD)."""

    status: int
    headers: dict[str, str]
    body: ByteStream | None


class PlayableMedia:
    """What is known of the media of COMPLETE recordings, reused so that a seek costs one
    storage round trip instead of three.

    Safe because a COMPLETE recording never changes, and every read is pinned to the ETag
    seen: a file since deleted or replaced fails its read, is forgotten, and is looked up
    again. At most `size` recordings, each for at most `seconds`.
    """

    def __init__(self, storage: Storage, size: int = 4096, seconds: float = 300.0) -> None:
        self.storage = storage
        self._seconds = seconds
        self._known: LruCache[RecordingId, ObjectInfo] = LruCache(size)

    async def lookup(self, recording_id: RecordingId) -> ObjectInfo:
        """The media's size and version, from storage (RecordingNotFound if not playable)."""
        info = await _playable_media(self.storage, recording_id)
        self._known.put(recording_id, info)
        return info

    def known(self, recording_id: RecordingId) -> ObjectInfo | None:
        """What was looked up less than `seconds` ago, if anything."""
        return self._known.get(recording_id, self._seconds)

    def forget(self, recording_id: RecordingId) -> None:
        self._known.forget(recording_id)


async def open_playback(
    media: PlayableMedia,
    recording_id: str,
    range_header: str | None,
    if_range: str | None,
    *,
    with_body: bool = True,
) -> Playback:
    """Open the part of a COMPLETE recording the request asks for, with its headers; without
    `with_body` (HEAD), the same headers (from storage, never reused) and nothing opened."""
    parsed = parse_recording_id(recording_id)
    known = media.known(parsed) if with_body else None
    info = known or await media.lookup(parsed)
    status, headers, offset, length = _answer(info, range_header, if_range)
    if not with_body:
        return Playback(status, headers, None)
    key = recording_media_key(parsed)
    try:
        body = await media.storage.open_range(key, offset, length, etag=info.etag)
    except (ObjectNotFound, ObjectChanged) as error:
        media.forget(parsed)
        if known is not None:  # deleted or replaced since: look it up anew
            return await open_playback(media, recording_id, range_header, if_range)
        if isinstance(error, ObjectNotFound):  # deleted between the lookup and the read
            raise RecordingNotFound(
                f"Recording '{recording_id}' has no media file in storage"
            ) from None
        raise
    return Playback(status, headers, body)


# What a presigned GET makes S3 answer, so that the browser gets what proxy mode sends.
_RESPONSE_OVERRIDES = {"response-content-type": "video/mp4", "response-cache-control": "private"}


async def hand_over(
    media: PlayableMedia,
    recording_id: str,
    range_header: str | None,
    if_range: str | None,
    delivery: Delivery,
    *,
    seconds: int,
    accel_prefix: str,
) -> Playback:
    """After the checks `open_playback` makes (a request it refuses is refused the same way),
    send the client to the storage (`redirect`: a presigned URL) or tell nginx where the bytes
    are (`accel`: X-Accel-Redirect), instead of sending them."""
    parsed = parse_recording_id(recording_id)
    info = media.known(parsed) or await media.lookup(parsed)
    status, *_ = _answer(info, range_header, if_range)  # its range errors, 400 and 416
    key = recording_media_key(parsed)
    if delivery == "redirect":
        url = media.storage.signed_url(
            key, seconds, public=True, response_headers=_RESPONSE_OVERRIDES
        )
        assert url is not None  # the configuration allows redirect with S3 only
        return Playback(302, {"Location": url, "Cache-Control": "no-store"}, None)
    signed = media.storage.signed_url(key, seconds, public=False, response_headers={})
    if signed is None:  # a local file: nginx reads it under its own alias of the data folder
        target = f"{accel_prefix}/{key}"
    else:  # an S3 object: nginx proxies this presigned path to the storage
        parts = urlsplit(signed)
        # S3 servers ignore If-Range: when it does not hold, nginx drops the Range (`_whole`).
        whole = "/_whole" if range_header is not None and status == 200 else ""
        target = f"{accel_prefix}{whole}{parts.path}?{parts.query}"
    headers = {"X-Accel-Redirect": target, "Content-Type": "video/mp4", "Cache-Control": "private"}
    return Playback(200, headers, None)


def _answer(
    info: ObjectInfo, range_header: str | None, if_range: str | None
) -> tuple[int, dict[str, str], int, int]:
    """Status, headers, offset and length of the answer to a request for `info`'s bytes."""
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
    return status, headers, offset, length


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
