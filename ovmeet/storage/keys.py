"""Storage keys: OpenVidu Meet's layout, ovmeet's own additions, and the check that keeps every
key inside it. Every key and prefix ovmeet stores or lists is built here, and nowhere else.

The release's layout, under the sub-bucket prefix on S3 (the data folder's root locally):
`openvidu-meet-preferences.json`, `rooms/{room}/{room}.json`,
`recordings/.metadata/{room}/{egress}/{uid}.json` and `recordings/{room}/{room}--{uid}.mp4`.
ovmeet adds dot-folders the release does not list (`rooms/.index/`, `recordings/.index/`,
`recordings/.locks/`) and `revoked-sessions/`."""

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


def subbucket_prefix(subbucket: str) -> str:
    """What precedes every key in the bucket: the sub-bucket and a slash (nothing if empty)."""
    return f"{subbucket}/" if subbucket else ""


def object_name(subbucket: str, key: str) -> str:
    """The name of `key`'s object in the bucket (where the egress writes a recording, too)."""
    return subbucket_prefix(subbucket) + check_key(key)


def check_prefix(prefix: str) -> str:
    """Return `prefix` (empty, or a safe key ending in '/') or raise InvalidKey."""
    if prefix:
        check_key(prefix.removesuffix("/"))
    return prefix


ROOMS = "rooms/"


def room_key(room_name: str) -> str:
    return f"{ROOMS}{room_name}/{room_name}.json"


def room_of_key(key: str) -> str | None:
    """The room name of a room document's key; None for every other key."""
    name = key.removeprefix(ROOMS).partition("/")[0]
    return name if key == room_key(name) else None


# The room index lists rooms oldest first in key order, each entry naming what a listing and
# the clean-up need without reading the room: {creation ms}--{name}--{expiration ms|never}.json.
ROOM_INDEX = f"{ROOMS}.index/"
ROOM_INDEX_BUILT = f"{ROOMS}.index-built.json"


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


RECORDINGS = "recordings/"
RECORDING_METADATA = f"{RECORDINGS}.metadata/"


def recording_metadata_key(recording: RecordingId) -> str:
    return f"{RECORDING_METADATA}{recording.room_id}/{recording.egress_id}/{recording.uid}.json"


def recording_of_metadata_key(key: str) -> RecordingId | None:
    """The recording a metadata key names; None for other keys."""
    if not (key.startswith(RECORDING_METADATA) and key.endswith(".json")):
        return None
    parts = key.removeprefix(RECORDING_METADATA).removesuffix(".json").split("/")
    return RecordingId.parse(SEPARATOR.join(parts)) if len(parts) == 3 else None


def recording_media_key(recording: RecordingId) -> str:
    return media_key(recording.room_id, recording.uid)


def media_filename(room_id: str, uid: str) -> str:
    """The MP4's file name (the release's `filename` of a recording)."""
    return f"{room_id}{SEPARATOR}{uid}.mp4"


def uid_of_media_filename(room_id: str, filename: str) -> str | None:
    """The uid in the name of a room's MP4 (`{room}--{uid}.mp4`); None for other names."""
    prefix, suffix = f"{room_id}{SEPARATOR}", ".mp4"
    if not (filename.startswith(prefix) and filename.endswith(suffix)):
        return None
    return filename[len(prefix) : -len(suffix)]


def media_key(room_id: str, uid: str) -> str:
    """Where the egress of a recording writes its MP4 (known before LiveKit names the egress)."""
    return f"{RECORDINGS}{room_id}/{media_filename(room_id, uid)}"


RECORDING_LOCKS = f"{RECORDINGS}.locks/"


def recording_lock_key(room_id: str) -> str:
    """Present while `room_id` has a recording in progress (created exclusively)."""
    return f"{RECORDING_LOCKS}{room_id}.json"


def room_of_lock_key(key: str) -> str:
    return key.removeprefix(RECORDING_LOCKS).removesuffix(".json")


# The index lists recordings newest first in key order: {13 digits counting down}--{id}.json.
RECORDING_INDEX = f"{RECORDINGS}.index/all/"
RECORDING_INDEX_BUILT = f"{RECORDINGS}.index/built.json"
_NEWEST_FIRST = 9_999_999_999_999


def recording_index_prefix(room_id: str | None) -> str:
    return f"{RECORDINGS}.index/rooms/{room_id}/" if room_id else RECORDING_INDEX


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


def unattributed_revocation_expiry(key: str) -> int | None:
    """The expiry an earlier ovmeet's `revoked-sessions/{exp}-{jti}.json` names (no user)."""
    name = key.removeprefix(REVOKED_SESSIONS).removesuffix(".json")
    expiry, _, token_id = name.partition("-")
    return int(expiry) if expiry.isdigit() and token_id else None


def revoked_session_of_key(key: str) -> tuple[int, int] | None:
    """(expiry, issuing time) that a revoked session's key names; None for other keys."""
    name = key.rpartition("/")[2].removesuffix(".json")
    parts = name.split("-", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])
