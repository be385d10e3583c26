"""Real MP4 files for the tests, made with ffmpeg."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path


def make_mp4(
    path: Path, seconds: float = 4, size: str = "320x240", rate: int = 25, noise: bool = False
) -> Path:
    """An H.264 MP4 (keyframe each second, `faststart` layout) of a test pattern, or of noise
    at 30 Mb/s, which cannot be compressed: a file big enough that seeking needs new ranges."""
    source = f"testsrc=duration={seconds}:size={size}:rate={rate}"
    quality = ["-preset", "veryfast"]
    if noise:
        source = f"nullsrc=s={size}:d={seconds}:r={rate},geq=random(1)*255:128:128"
        quality = ["-preset", "ultrafast", "-b:v", "30M", "-maxrate", "30M", "-bufsize", "30M"]
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is required (make system-deps installs it)")
    subprocess.run(
        [
            ffmpeg,
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            source,
            "-c:v",
            "libx264",
            *quality,
            "-pix_fmt",
            "yuv420p",
            "-g",
            str(rate),
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
    )
    return path


def pad_mp4(source: Path, path: Path, size: int) -> Path:
    """`source` followed by a `free` box of random bytes: a valid MP4 of exactly `size` bytes."""
    data = source.read_bytes()
    padding = size - len(data) - 8
    assert padding > 0
    with path.open("wb") as file:
        file.write(data)
        file.write(struct.pack(">I4s", padding + 8, b"free"))
        remaining = padding
        while remaining:
            block = os.urandom(min(remaining, 1 << 20))
            file.write(block)
            remaining -= len(block)
    return path
