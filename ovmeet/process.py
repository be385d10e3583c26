"""What a serving process sets for itself at start."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

# glibc's mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2
MMAP_THRESHOLD = 256 * 1024


def tune_malloc() -> bool:
    """Keep a worker's memory down under streaming load (glibc only; False elsewhere).

    Two arenas at most (as MALLOC_ARENA_MAX=2 would): each storage thread otherwise grows an
    arena of its own. And blocks of 256 KiB or more (stream chunks, 1 MiB seeks) always mapped
    on their own and given back when freed: glibc's default raises that threshold to the
    largest block freed so far, after which such chunks stay in the heap (bench/soak.py: RSS
    92-120 MiB instead of 103-147).
    """
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_ARENA_MAX, MALLOC_ARENAS)) and bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    )


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
