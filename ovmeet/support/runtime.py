"""What a serving process sets for itself at start."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

# glibc's mallopt parameter (malloc.h).
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def tune_malloc() -> bool:
    """Two malloc arenas at most, as MALLOC_ARENA_MAX=2 would (glibc only; False elsewhere):
    each storage thread otherwise grows an arena of its own, and a worker's memory climbs
    burst after burst of concurrent S3 streams (bench/README.md has the figures)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, MALLOC_ARENAS))


def settle_garbage_collector() -> None:
    """Once started: what is loaded so far (specs, validators, libraries) lives as long as the
    process, so it goes out of the collector's sight, and a full collection no longer walks it.
    A request's garbage is freed by reference counting, so the young generation is collected
    far less often (bench/README.md has the figures)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name)
    except OSError:
        return None
