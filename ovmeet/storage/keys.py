"""Storage keys: OpenVidu Meet's layout, and the check that keeps every key inside it."""

from __future__ import annotations

import hashlib

from ovmeet.storage.base import StorageError
from ovmeet.support.ids import SEPARATOR, RecordingId, is_plain_path

PREFERENCES_KEY = "openvidu-meet-preferences.json"
MAX_KEY_LENGTH = 1024


class InvalidKey(StorageError):
    """A key that could leave the storage root or is not a plain relative path: refused
    before any I/O (a 500, since ovmeet builds every key itself)."""


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative key (`a/b/c.json`), else raise InvalidKey."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"a key must have 1 to {MAX_KEY_LENGTH} characters")
    if not is_plain_path(key):
        raise InvalidKey(f"unsafe storage key {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """Return `prefix` (empty, or a safe key ending in '/') or raise InvalidKey."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


def room_key(room_name: str) -> str:
    return f"rooms/{room_name}/{room_name}.json"


# The room index lists rooms oldest first in key order, each entry naming what a listing and
# the clean-up need without reading the room: {creation ms}--{name}--{expiration ms|never}.json.
ROOMS = "rooms/"
ROOM_INDEX = "rooms/.index/"
ROOM_INDEX_BUILT = "rooms/.index-built.json"


def room_index_key(room_name: str, creation_date: int, expiration_date: int | None) -> str:
    expiry = "never" if expiration_date is None else f"{expiration_date:013d}"
    return f"{ROOM_INDEX}{creation_date:013d}--{room_name}--{expiry}.json"


def room_of_index_key(key: str) -> tuple[int, str, int | None] | None:
    """(creation date, name, expiration date) an index key names; None for other keys."""
    name = key.removeprefix(ROOM_INDEX).removesuffix(".json")
    created, _, rest = name.partition("--")
    room_name, _, expiry = rest.rpartition("--")
    if not created.isdigit() or not room_name or not (expiry.isdigit() or expiry == "never"):
        return None
    return int(created), room_name, None if expiry == "never" else int(expiry)


def recording_metadata_key(recording: RecordingId) -> str:
    return f"recordings/.metadata/{recording.room_id}/{recording.egress_id}/{recording.uid}.json"


def recording_media_key(recording: RecordingId) -> str:
    return media_key(recording.room_id, recording.uid)


def media_key(room_id: str, uid: str) -> str:
    """Where the egress of a recording writes its MP4 (known before LiveKit names the egress)."""
    return f"recordings/{room_id}/{room_id}{SEPARATOR}{uid}.mp4"


RECORDING_LOCKS = "recordings/.locks/"


def recording_lock_key(room_id: str) -> str:
    """Present while `room_id` has a recording in progress (created exclusively)."""
    return f"{RECORDING_LOCKS}{room_id}.json"


def room_of_lock_key(key: str) -> str:
    return key.removeprefix(RECORDING_LOCKS).removesuffix(".json")


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


# Revoked sessions: one object per token in its user's folder, named so that the folder lists
# in expiry order ({exp:010d}-{iat:010d}-{jti}.json), and a user's "revoked before" mark.
REVOKED_SESSIONS = "revoked-sessions/"
REVOKED_USERS = REVOKED_SESSIONS + "users/"


def _user_segment(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:32]


def revoked_sessions_prefix(username: str) -> str:
    return f"{REVOKED_USERS}{_user_segment(username)}/"


def revoked_session_key(username: str, expires_at: int, issued_at: int, token_id: str) -> str:
    return f"{revoked_sessions_prefix(username)}{expires_at:010d}-{issued_at:010d}-{token_id}.json"


def revoked_before_key(username: str) -> str:
    """The user's mark: every session issued before a time is revoked."""
    return f"{REVOKED_USERS}{_user_segment(username)}.json"


def revoked_session_of_key(key: str) -> tuple[int, int] | None:
    """(expiry, issuing time) that a revoked session's key names; None for other keys."""
    name = key.rpartition("/")[2].removesuffix(".json")
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])
