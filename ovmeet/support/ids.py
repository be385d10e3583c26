"""Identifiers: one grammar for room names, egress ids and uids, and recordingIds of all three."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

# Letters, digits, `_` and single inner dashes: safe in storage keys and URLs, and `--` can join
# parts into a recordingId unambiguously.
ID_PART = r"[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*"
MAX_ID_LENGTH = 128
SEPARATOR = "--"

_ID = re.compile(ID_PART)
_ALPHANUMERIC = string.ascii_letters + string.digits


def is_id(text: str) -> bool:
    """Whether `text` is a room name, egress id or uid ovmeet can store."""
    return len(text) <= MAX_ID_LENGTH and _ID.fullmatch(text) is not None


def random_id(length: int = 12) -> str:
    """A random id of letters and digits (71 bits at the default length)."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


@dataclass(frozen=True)
class RecordingId:
    """`{roomId}--{egressId}--{uid}`, OpenVidu Meet's recordingId."""

    room_id: str
    egress_id: str
    uid: str

    @classmethod
    def parse(cls, text: str) -> RecordingId | None:
        """The parts of a well-formed recordingId; None for anything else."""
        parts = text.split(SEPARATOR) if len(text) <= 3 * MAX_ID_LENGTH + 4 else []
        if len(parts) != 3 or not all(is_id(part) for part in parts):
            return None
        return cls(*parts)

    def __str__(self) -> str:
        return SEPARATOR.join((self.room_id, self.egress_id, self.uid))


# One segment of a relative path: no separators, no NUL, no control characters.
_PATH_SEGMENT = re.compile(r"^[^/\\\x00-\x1f\x7f]+$")


def is_plain_path(path: str) -> bool:
    """Whether `path` is a plain relative path (`a/b/c.json`): segments separated by '/', none
    of them empty, '.' or '..', without backslashes or control characters."""
    return all(
        segment not in ("", ".", "..") and _PATH_SEGMENT.match(segment)
        for segment in path.split("/")
    )
