"""The one way a process caches what it read from storage: read through, kept for a bounded
time, dropped at once when this host's change marker says something changed, at most `size`
values, and one read at a time per key and version."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from ovmeet.shared.change_markers import CACHE_SECONDS, ChangeMarker
from ovmeet.support.cache import LruCache, SharedLoads

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CachedView(Generic[K, V]):
    """Values of stored state by key, each reused for at most `max_age` seconds.

    `strict`: while changes made on other hosts may go untold (a relay that does not listen),
    nothing remembered is trusted and every `get` reads alone (what a revocation needs);
    otherwise the age bound alone holds then.
    """

    def __init__(
        self,
        marker: ChangeMarker,
        size: int,
        *,
        max_age: float = CACHE_SECONDS,
        strict: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._marker, self._max_age, self._strict = marker, max_age, strict
        self._values: LruCache[K, V] = LruCache(size, clock)
        self._loads: SharedLoads[tuple[K, int], V] = SharedLoads()
        self._version = marker.version()

    async def get(self, key: K, read: Callable[[], Awaitable[V]]) -> V:
        """The value of `key`: remembered if fresh, else `read()` (shared with the reads of
        `key` running at this version)."""
        version = self._current_version()
        if version is None:
            return await read()
        value = self._values.get(key, self._max_age)
        if value is None:
            value = await self._loads.load((key, version), read)
            if version == self._version:  # nothing was told meanwhile
                self._values.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Remember `value`, just written by this process (after its marker was touched)."""
        self._current_version()
        self._values.put(key, value)

    def forget(self, key: K) -> None:
        self._values.forget(key)

    def _current_version(self) -> int | None:
        """The marker's version, with everything remembered before a change forgotten; None
        when nothing remembered may be trusted."""
        version = self._marker.version()
        if version != self._version:
            self._values.clear()
            self._version = version
        if self._strict and self._marker.may_miss_changes():
            return None
        return version
