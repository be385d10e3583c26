"""A bounded memory of recent values: the one shape of everything ovmeet remembers in a process;
and loads shared by everyone who asks for the same value while it is being read."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
H = TypeVar("H", bound=Hashable)


class LruCache(Generic[K, V]):
    """At most `size` values, each with the time it was stored; the least recently used one
    goes first when a new one would exceed the size."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._size = size
        self._clock = clock
        self._values: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K, max_age: float = float("inf")) -> V | None:
        """The value stored less than `max_age` seconds ago, if any."""
        found = self._values.get(key)
        if found is None or self._clock() - found[1] >= max_age:
            return None
        self._values.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V) -> None:
        self._values[key] = (value, self._clock())
        self._values.move_to_end(key)
        if len(self._values) > self._size:
            self._values.popitem(last=False)

    def forget(self, key: K) -> None:
        self._values.pop(key, None)

    def clear(self) -> None:
        self._values.clear()


class SharedLoads(Generic[H, V]):
    """One load per key at a time: who asks for a key whose load is running waits for that
    load's outcome instead of starting another (a cache's expiry under load reads once, not
    once per waiting request). The key must name what makes a load current (e.g. a version)."""

    def __init__(self) -> None:
        self._running: dict[H, asyncio.Future[V]] = {}

    async def load(self, key: H, load: Callable[[], Awaitable[V]]) -> V:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(load())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        # One waiter cancelled (its client left) must not cancel the load of the others.
        return await asyncio.shield(running)

    def _finished(self, key: H, done: asyncio.Future[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone
