"""Single byte ranges (RFC 9110 section 14), and If-Range."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from ovmeet.storage import ObjectInfo
from ovmeet.support.errors import BadRequest, RangeNotSatisfiable

_SINGLE_RANGE = re.compile(r"bytes=(\d{1,20})?-(\d{1,20})?", re.IGNORECASE)
_OTHER_UNIT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+=.*", re.DOTALL)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str, size: int) -> ByteRange | None:
    """The range `header` asks of an object of `size` bytes; None for a unit other than bytes,
    which a server must ignore (RFC 9110 section 14.2).

    Malformed, multiple or reversed byte ranges raise BadRequest; a range that starts past the
    end (or a zero-length suffix) raises RangeNotSatisfiable.
    """
    header = header.strip()
    unit = header.partition("=")[0]
    if unit.lower() != "bytes" and _OTHER_UNIT.fullmatch(header):
        return None
    match = _SINGLE_RANGE.fullmatch(header)
    if match is None or match.groups() == (None, None):
        raise BadRequest("Invalid Range header")
    first, last = match.groups()
    if first is None:  # bytes=-n: the last n bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    if last is not None and int(last) < start:
        raise BadRequest("Invalid Range header")
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = size - 1 if last is None else min(int(last), size - 1)
    return ByteRange(start, end)


def if_range_holds(if_range: str | None, info: ObjectInfo) -> bool:
    """Whether a Range may be honoured: no If-Range, or one naming the current version."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"'):
        return value == info.etag  # strong comparison
    if value.startswith("W/"):
        return False  # weak tags never match in If-Range
    try:
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return date.tzinfo is not None and int(date.timestamp()) == int(info.last_modified.timestamp())
