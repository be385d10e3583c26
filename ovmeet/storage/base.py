"""The storage interface every backend implements, and the byte stream it hands out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ovmeet.errors import DependencyError

CHUNK_SIZE = 256 * 1024


class ObjectNotFound(LookupError):
    """The key holds no object."""


class StorageError(DependencyError):
    """The storage backend failed; the message names the backend."""


@dataclass(frozen=True)
class ObjectInfo:
    """What `stat` tells about a stored object."""

    size: int
    etag: str  # a strong HTTP entity tag, quotes included
    last_modified: datetime


class ByteStream:
    """An opened byte range: iterate it for chunks of at most CHUNK_SIZE; always `aclose()` it."""

    def __init__(
        self,
        read: Callable[[int], Awaitable[bytes]],
        close: Callable[[], Awaitable[None]],
        length: int,
        backend: str,
    ) -> None:
        self._read = read
        self._close = close
        self._remaining = length
        self._backend = backend
        self._closed = False

    def __aiter__(self) -> ByteStream:
        return self

    async def __anext__(self) -> bytes:
        if self._remaining <= 0:
            raise StopAsyncIteration
        chunk = await self._read(min(CHUNK_SIZE, self._remaining))
        if not chunk:
            raise StorageError(f"{self._backend}: the object ended before the requested range")
        self._remaining -= len(chunk)
        return chunk

    async def aclose(self) -> None:
        """Release the file or connection; safe to call more than once."""
        if not self._closed:
            self._closed = True
            await self._close()


class Storage(Protocol):
    """Keyed objects under one root; keys are checked with `keys.check_key`."""

    name: str

    async def check(self) -> None:
        """Prove the backend is reachable and writable (create the bucket if missing)."""

    async def read_json(self, key: str) -> Any:
        """The JSON value stored at `key`; ObjectNotFound if there is none."""

    async def write_json(self, key: str, value: Any) -> None:
        """Store `value` as JSON at `key`, atomically."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size, ETag and modification time of `key`; ObjectNotFound if there is none."""

    async def open_range(
        self, key: str, offset: int, length: int, *, etag: str | None = None
    ) -> ByteStream:
        """Open `length` bytes of `key` from `offset`; fail now if the object is not `etag`."""

    async def write_file(self, key: str, source: Path) -> ObjectInfo:
        """Store the file at `source` under `key`, atomically."""

    async def list(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix` (empty, or ending in '/'), sorted."""

    async def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    async def aclose(self) -> None:
        """Release the backend's connections and threads."""
