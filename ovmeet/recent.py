"""A bounded memory of recent values: the one shape of every cache ovmeet keeps in a process."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most `size` values, each with the time it was stored; the least recently used one
    goes first when a new one would exceed the size."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: OrderedDict[K, tuple[V, float]] = OrderedDict()

    def get(self, key: K, max_age: float = float("inf")) -> V | None:
        """The value stored less than `max_age` seconds ago, if any."""
        found = self._values.get(key)
        if found is None or time.monotonic() - found[1] >= max_age:
            return None
        self._values.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V) -> None:
        self._values[key] = (value, time.monotonic())
        self._values.move_to_end(key)
        if len(self._values) > self._size:
            self._values.popitem(last=False)

    def forget(self, key: K) -> None:
        self._values.pop(key, None)

    def clear(self) -> None:
        self._values.clear()
