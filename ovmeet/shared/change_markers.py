"""How cached state stays fresh across the processes of one host and across hosts.

A process reuses what it read for at most CACHE_SECONDS. Every process of this host that
changes the state touches a `ChangeMarker`, and readers `stat` it (microseconds) on every use:
a change made through any worker is seen by every worker of the host on its next request, and
by other hosts sharing the storage within CACHE_SECONDS. With Redis, a `Relay` tells the other
hosts too: each touches its own markers as soon as Redis relays the change.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import Protocol

CACHE_SECONDS = 1.0
# Every kind of change a marker tells (what a relay that missed messages touches, all of them).
TOPICS = ("rooms", "preferences", "room-index-added", "room-index-removed", "revocations")


class Relay(Protocol):
    """Tells the other hosts of the deployment what changed (see `redis_state.ChangeRelay`)."""

    @property
    def listening(self) -> bool:
        """Whether changes told elsewhere reach this process now."""

    async def tell(self, topic: str) -> None:
        """Tell every other instance that `topic` changed (never raises)."""


_relays: dict[str, Relay] = {}  # storage name -> the relay of this process for it


def relay_changes(storage_name: str, relay: Relay) -> None:
    """Tell the changes to this storage through `relay` from now on."""
    _relays[storage_name] = relay


def stop_relaying(storage_name: str, relay: Relay) -> None:
    """Stop telling changes through `relay` (if it is the one telling them)."""
    if _relays.get(storage_name) is relay:
        del _relays[storage_name]


class ChangeMarker:
    """A file per (storage, topic) that this host's writers touch after a change."""

    def __init__(self, storage_name: str, topic: str) -> None:
        if topic not in TOPICS:
            raise ValueError(f"{topic!r} is not a kind of change ({', '.join(TOPICS)})")
        self._storage_name, self._topic = storage_name, topic
        digest = hashlib.sha256(storage_name.encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / f"ovmeet-{os.getuid()}"
        self._path = folder / f"{topic}-{digest}.changed"

    def version(self) -> int:
        """Changes as the file tells them (its modification time in ns; 0 before the first)."""
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return 0

    async def touch(self) -> None:
        """Tell this host's processes, and through the relay (if any) every other host."""
        self.touch_here()
        relay = _relays.get(self._storage_name)
        if relay is not None:
            await relay.tell(self._topic)

    def touch_here(self) -> None:
        """Tell this host's processes only (what a relay does for a change made elsewhere)."""
        folder = self._path.parent
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_uid != os.getuid():  # someone else's folder: do not trust it
            return
        self._path.touch()
        # Two changes within the file system's time resolution must still differ.
        os.utime(self._path, ns=(time.time_ns(), max(time.time_ns(), self.version() + 1)))

    def may_miss_changes(self) -> bool:
        """Whether a relay is configured but not listening: changes made on other hosts may go
        untold until it listens again."""
        relay = _relays.get(self._storage_name)
        return relay is not None and not relay.listening
