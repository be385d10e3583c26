"""How cached state stays fresh across the processes of one host and across hosts.

A process reuses what it read for at most CACHE_SECONDS. Every process of this host that
changes the state touches a `ChangeMarker`, and readers `stat` it (microseconds) on every use:
a change made through any worker is seen by every worker of the host on its next request, and
by other hosts sharing the storage within CACHE_SECONDS.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

CACHE_SECONDS = 1.0


class ChangeMarker:
    """A file per (storage, topic) that this host's writers touch after a change."""

    def __init__(self, storage_name: str, topic: str) -> None:
        digest = hashlib.sha256(storage_name.encode()).hexdigest()[:16]
        folder = Path(tempfile.gettempdir()) / f"ovmeet-{os.getuid()}"
        self._path = folder / f"{topic}-{digest}.changed"

    def version(self) -> int:
        """Changes as the file tells them (its modification time in ns; 0 before the first)."""
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return 0

    def touch(self) -> None:
        folder = self._path.parent
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_uid != os.getuid():  # someone else's folder: do not trust it
            return
        self._path.touch()
        # Two changes within the file system's time resolution must still differ.
        os.utime(self._path, ns=(time.time_ns(), max(time.time_ns(), self.version() + 1)))
