"""What a serving process sets for itself at start."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger("ovmeet.process")
# glibc's mallopt parameter for the number of malloc arenas (malloc.h).
_M_ARENA_MAX = -8
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as MALLOC_ARENA_MAX would at exec): each storage thread
    otherwise gets an arena of its own, and a worker's memory climbed burst after burst of
    concurrent streams. False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
