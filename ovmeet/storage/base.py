"""The storage interface every backend implements, and the byte stream it hands out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from ovmeet.support.errors import DependencyError

MIN_CHUNK = 64 * 1024
MAX_CHUNK = 4 * 1024 * 1024
# What all open streams of a process may read per step, together: a lone stream reads 4 MiB
# chunks (S3 needs them to keep up), 32 streams read 128 KiB ones, so memory stays bounded.
STREAM_BUFFER_BUDGET = 4 * 1024 * 1024
LIST_PAGE = 1000  # keys per listing request (S3's most)


class ObjectNotFound(LookupError):
    """The key holds no object."""


class StorageError(DependencyError):
    """The storage backend failed; `detail` names the backend and the cause."""

    default_name = "Storage Error"

    def __init__(self, detail: str) -> None:
        super().__init__("Storage failed", detail)


class ObjectChanged(StorageError):
    """The object is no longer the version (ETag) a read was pinned to."""


@dataclass(frozen=True)
class ObjectInfo:
    """What `stat` tells about a stored object."""

    size: int
    etag: str  # a strong HTTP entity tag, quotes included
    last_modified: datetime


class ByteStream:
    """An opened byte range: iterate it for chunks; always `aclose()` it.

    One read runs ahead while the caller sends the previous chunk, so the storage and the
    client are kept busy together. Chunk sizes shrink as more streams are open at once. A
    backend may hand over the `first` chunk, read in the same call that opened the object
    (a seek then costs one trip to a storage thread, not two).
    """

    open_streams = 0  # in this process, opened or being opened

    def __init__(
        self,
        read: Callable[[int], Awaitable[bytes]],
        close: Callable[[], Awaitable[None]],
        length: int,
        backend: str,
        first: bytes = b"",
    ) -> None:
        self._read = read
        self._close = close
        self._first = first
        self._unrequested = length - len(first)
        self._backend = backend
        self._ahead: asyncio.Task[bytes] | None = None
        self._closed = False
        ByteStream.open_streams += 1

    @property
    def exhausted(self) -> bool:
        """Whether every byte has been handed out (nothing read ahead, nothing left)."""
        return not self._first and self._ahead is None and self._unrequested <= 0

    @staticmethod
    def chunk_size() -> int:
        share = STREAM_BUFFER_BUDGET // max(1, ByteStream.open_streams)
        return max(MIN_CHUNK, min(MAX_CHUNK, share))

    @staticmethod
    @contextlib.contextmanager
    def opening() -> Iterator[int]:
        """Count a stream as open while its backend opens it, and give the size of its first
        chunk: streams opened at once then share the budget (32 used to read 4 MiB each)."""
        ByteStream.open_streams += 1
        try:
            yield ByteStream.chunk_size()
        finally:
            ByteStream.open_streams -= 1

    def _read_ahead(self) -> asyncio.Task[bytes] | None:
        if self._unrequested <= 0:
            return None
        size = min(self.chunk_size(), self._unrequested)
        self._unrequested -= size
        return asyncio.ensure_future(self._read_exactly(size))

    async def _read_exactly(self, size: int) -> bytes:
        chunk = await self._read(size)
        if not chunk:
            raise StorageError(f"{self._backend}: the object ended before the requested range")
        self._unrequested += size - len(chunk)  # a short read: ask for the rest later
        return chunk

    def __aiter__(self) -> ByteStream:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            chunk, self._first = self._first, b""
            self._ahead = self._read_ahead()
            return chunk
        if self._ahead is None:
            self._ahead = self._read_ahead()
            if self._ahead is None:
                raise StopAsyncIteration
        # Shielded: a caller cancelled here (its client left) must not cancel the read, whose
        # thread goes on regardless; aclose() waits for it before closing the source.
        chunk = await asyncio.shield(self._ahead)
        self._ahead = self._read_ahead()
        return chunk

    async def aclose(self) -> None:
        """Wait for the read in flight (at most one chunk), then release the file or
        connection; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        ByteStream.open_streams -= 1
        if self._ahead is not None:
            with contextlib.suppress(Exception):
                await self._ahead  # never close a file or response another thread reads
            self._ahead = None
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

    async def create_json(self, key: str, value: Any) -> bool:
        """Store `value` at `key` only if nothing is there, atomically (exactly one of several
        concurrent creators, in any process, gets True); False if `key` exists."""

    async def supports_exclusive_create(self) -> bool:
        """Whether create_json is atomic here (an S3 server may ignore conditional writes)."""

    async def stat(self, key: str) -> ObjectInfo:
        """Size, ETag and modification time of `key`; ObjectNotFound if there is none."""

    async def open_range(
        self, key: str, offset: int, length: int, *, etag: str | None = None
    ) -> ByteStream:
        """Open `length` bytes of `key` from `offset`; fail now if the object is not `etag`."""

    async def write_file(self, key: str, source: Path) -> ObjectInfo:
        """Store the file at `source` under `key`, atomically."""

    def signed_url(
        self, key: str, seconds: int, *, public: bool, response_headers: dict[str, str]
    ) -> str | None:
        """A URL that GETs `key` without other credentials for `seconds`, at the endpoint
        browsers reach (`public`) or the one ovmeet reaches; None if the backend has none."""

    async def list_page(self, prefix: str, start_after: str, limit: int) -> list[str]:
        """At most `limit` keys that start with `prefix` and sort after `start_after`, in order;
        the backend reads about as many, never every key."""

    async def list(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix` (empty, or ending in '/'), sorted."""

    async def delete(self, key: str) -> None:
        """Remove `key`; removing a missing key is not an error."""

    async def aclose(self) -> None:
        """Release the backend's connections and threads."""


async def keys_after(storage: Storage, prefix: str, after: str = "") -> AsyncIterator[str]:
    """The keys under `prefix` after the key `after`, in key order, read a page at a time (a
    caller that stops early reads no further page)."""
    while keys := await storage.list_page(prefix, after, LIST_PAGE):
        for key in keys:
            yield key
        after = keys[-1]


async def index_once(storage: Storage, built: str, index: Callable[[], Awaitable[int]]) -> int:
    """Run `index` once per storage: unless the mark `built` is stored; then store it. How many
    entries `index` made (0 when it had run before)."""
    try:
        await storage.stat(built)
        return 0
    except ObjectNotFound:
        pass
    indexed = await index()
    await storage.write_json(built, {"indexed": indexed})
    return indexed
