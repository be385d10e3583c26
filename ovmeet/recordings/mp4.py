"""Just enough ISO BMFF (MP4) to tell a file is one and read its duration."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO


class NotMp4(ValueError):
    """The file is not an MP4 this reader understands."""


def duration_seconds(path: Path) -> float:
    """The movie duration in seconds, from the `moov/mvhd` box."""
    with path.open("rb") as file:
        size = path.stat().st_size
        first = True
        for box_type, start, end in _boxes(file, 0, size):
            if first and box_type != b"ftyp":
                raise NotMp4(f"{path.name} does not start with an 'ftyp' box")
            first = False
            if box_type == b"moov":
                for child, child_start, child_end in _boxes(file, start, end):
                    if child == b"mvhd":
                        return _mvhd_duration(file, child_start, child_end)
                raise NotMp4(f"{path.name} has no 'mvhd' box")
        if first:
            raise NotMp4(f"{path.name} is empty")
    raise NotMp4(f"{path.name} has no 'moov' box")


def _boxes(file: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes between `start` and `end`."""
    boxes = []
    position = start
    while position + 8 <= end:
        file.seek(position)
        size, box_type = struct.unpack(">I4s", file.read(8))
        header = 8
        if size == 1:
            (size,) = struct.unpack(">Q", file.read(8))
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            raise NotMp4(f"box {box_type!r} at byte {position} has an impossible size")
        boxes.append((box_type, position + header, position + size))
        position += size
    return boxes


def _mvhd_duration(file: BinaryIO, start: int, end: int) -> float:
    file.seek(start)
    payload = file.read(min(end - start, 32))
    if len(payload) < 20:
        raise NotMp4("the 'mvhd' box is truncated")
    if payload[0] == 1:
        if len(payload) < 32:
            raise NotMp4("the 'mvhd' box is truncated")
        timescale, duration = struct.unpack(">IQ", payload[20:32])
    else:
        timescale, duration = struct.unpack(">II", payload[12:20])
    if timescale == 0:
        raise NotMp4("the 'mvhd' box has a zero timescale")
    return round(float(duration) / float(timescale), 3)
