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
    each storage thread otherwise grows an arena of its own, and a worker's memory climbed
    burst after burst of concurrent S3 streams.

    (Mapping every block of 256 KiB or more on its own, M_MMAP_THRESHOLD, kept the soak's
    memory lower but cost a third of S3 streaming throughput in page faults: not done.)
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, MALLOC_ARENAS))


def settle_garbage_collector() -> None:
    """Once started: what is loaded so far (specs, validators, libraries) lives as long as the
    process, so it goes out of the collector's sight, and a full collection no longer walks it
    (that paused the worker ~60 ms about once a second under load). A request's garbage is
    freed by reference counting; collecting the young generation every 20,000 allocations
    instead of 700 took its cost from 2.7% of the CPU to 0.1% (bench/tokens.py)."""
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
