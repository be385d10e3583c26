"""Storage keys: OpenVidu Meet's layout, and the check that keeps every key inside it."""

from __future__ import annotations

import re

from ovmeet.ids import RecordingId
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
    return f"recordings/{recording.room_id}/{recording.filename}"
