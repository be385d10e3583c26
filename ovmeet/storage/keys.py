"""Storage keys: OpenVidu Meet's layout, and the check that keeps every key inside it."""

from __future__ import annotations

import re

from ovmeet.ids import SEPARATOR, RecordingId
from ovmeet.storage.base import StorageError

PREFERENCES_KEY = "openvidu-meet-preferences.json"

# One path segment of a key: no separators, no NUL, no control characters, not "." or "..".
_SEGMENT = re.compile(r"^[^/\\\x00-\x1f\x7f]+$")


class InvalidKey(StorageError):
    """A key that could leave the storage root or is not a plain relative path: refused
    before any I/O (a 500, since ovmeet builds every key itself)."""


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key (`a/b/c.json`), else raise InvalidKey."""
    if not key or len(key) > 1024:
        raise InvalidKey("a key must have 1 to 1024 characters")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _SEGMENT.match(segment):
            raise InvalidKey(f"unsafe storage key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` (empty, or a safe key ending in '/') or raise InvalidKey."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


def room_key(room_name: str) -> str:
    return f"rooms/{room_name}/{room_name}.json"


def recording_metadata_key(recording: RecordingId) -> str:
    return f"recordings/.metadata/{recording.room_id}/{recording.egress_id}/{recording.uid}.json"


def recording_media_key(recording: RecordingId) -> str:
    return media_key(recording.room_id, recording.uid)


def media_key(room_id: str, uid: str) -> str:
    """Where the egress of a recording writes its MP4 (known before LiveKit names the egress)."""
    return f"recordings/{room_id}/{room_id}{SEPARATOR}{uid}.mp4"


def recording_lock_key(room_id: str) -> str:
    """Present while `room_id` has a recording in progress (created exclusively)."""
    return f"recordings/.locks/{room_id}.json"


# The index lists recordings newest first in key order: {13 digits counting down}--{id}.json.
RECORDING_INDEX = "recordings/.index/all/"
_NEWEST_FIRST = 9_999_999_999_999


def recording_index_prefix(room_id: str | None) -> str:
    return f"recordings/.index/rooms/{room_id}/" if room_id else RECORDING_INDEX


def recording_index_keys(recording: RecordingId, start_date_ms: int) -> tuple[str, str]:
    """The recording's entries in the whole index and in its room's."""
    name = f"{_NEWEST_FIRST - start_date_ms:013d}--{recording}.json"
    return RECORDING_INDEX + name, recording_index_prefix(recording.room_id) + name


def recording_of_index_key(key: str) -> RecordingId | None:
    name = key.rpartition("/")[2].removesuffix(".json")
    return RecordingId.parse(name.partition("--")[2])
