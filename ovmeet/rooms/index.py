"""The room index: one empty object per room whose key names what a listing and the clean-up
need (creation date, name, expiration date), so that a page of rooms reads that page's rooms,
not every room.

Listing keys costs ovmeet CPU (the S3 client parses about 10,000 keys a second on these
machines), so a process keeps the index in memory: it reads the keys added since its last read
every CACHE_SECONDS (or at once when a worker of this host added a room), and the whole index
every FULL_LISTING_SECONDS (or at once when a worker of this host removed one).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from ovmeet.shared.change_markers import CACHE_SECONDS, ChangeMarker
from ovmeet.storage import ObjectNotFound, Storage, keys_after
from ovmeet.storage.keys import ROOM_INDEX, room_key, room_of_index_key
from ovmeet.support.errors import RoomNotFound

logger = logging.getLogger(__name__)

FULL_LISTING_SECONDS = 30.0

T = TypeVar("T")


@dataclass(frozen=True)
class IndexedRoom:
    """A room as its index entry names it."""

    key: str
    room_name: str
    creation_date: int
    expiration_date: int | None

    def is_expired(self, now_ms: int) -> bool:
        return self.expiration_date is not None and self.expiration_date <= now_ms


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and where it stands in the whole."""

    items: list[T]
    total_items: int
    total_pages: int
    number: int


def page_of(items: list[T], number: int | None, size: int | None) -> Page[T]:
    """Page `number` (from 1) of `items`, `size` per page (10 if only the number is given)."""
    number, size = number or 1, size or 10
    start = (number - 1) * size
    return Page(items[start : start + size], len(items), -(-len(items) // size), number)


async def read_index(storage: Storage, after: str = "") -> list[IndexedRoom]:
    """The index entries after the key `after` (all by default), oldest room first."""
    entries: list[IndexedRoom] = []
    async for key in keys_after(storage, ROOM_INDEX, after):
        named = room_of_index_key(key)
        if named is not None:
            entries.append(IndexedRoom(key, named[1], named[0], named[2]))
    return entries


def added_marker(storage: Storage) -> ChangeMarker:
    return ChangeMarker(storage.name, "room-index-added")


def removed_marker(storage: Storage) -> ChangeMarker:
    return ChangeMarker(storage.name, "room-index-removed")


Reading = Literal["full", "added"]


class RoomIndex(Generic[T]):
    """The index in memory, and the pages of rooms it lists. Rooms created through another
    host are listed within CACHE_SECONDS (plus one read of the new keys); rooms it deleted
    leave the pages as soon as `read_room` no longer finds them, and the count within
    FULL_LISTING_SECONDS."""

    def __init__(
        self,
        storage: Storage,
        read_room: Callable[[str], Awaitable[T]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._read_room = read_room  # RoomNotFound if the room has gone or expired
        self._clock = clock
        self._added, self._removed = added_marker(storage), removed_marker(storage)
        self._keys: list[str] = []  # sorted
        self._entries: dict[str, IndexedRoom] = {}
        self._live: list[IndexedRoom] | None = None  # the unexpired entries, until...
        self._next_expiry: int | None = None  # ...the first of them expires (ms)
        self._full_at: float | None = None  # when the last full read started
        self._added_at = 0.0  # when the last read of new keys started
        self._versions = (-1, -1)  # the markers (added, removed) as the last reads saw them
        self._reading: asyncio.Task[None] | None = None

    async def page(self, number: int | None, size: int | None) -> Page[T]:
        """Page `number` (from 1) of the rooms that have not expired, `size` per page (10 if
        only the number is given)."""
        rooms = await self._rooms_of(page_of(await self.live(), number, size).items)
        counted = page_of(self._unexpired(), number, size)  # without rooms found gone meanwhile
        return Page(rooms, counted.total_items, counted.total_pages, counted.number)

    async def all(self) -> list[T]:
        """Every room that has not expired, oldest first."""
        return await self._rooms_of(await self.live())

    async def live(self) -> list[IndexedRoom]:
        """The entries of the rooms that have not expired, oldest first."""
        for _ in range(3):  # a host adding rooms without pause must not hold a listing
            needed = self._needed()
            if needed is None:
                break
            await self._read(needed)
        self._refresh_in_background()
        return self._unexpired()

    def _needed(self) -> Reading | None:
        """The read a request must wait for: this host changed the index, or it was never
        read, or its last full read is too old to serve while the next one runs."""
        added, removed = self._added.version(), self._removed.version()
        if self._full_at is None or removed != self._versions[1]:
            return "full"
        if self._clock() - self._full_at >= 2 * FULL_LISTING_SECONDS:
            return "full"
        return "added" if added != self._versions[0] else None

    def _refresh_in_background(self) -> None:
        if self._reading is not None or self._full_at is None:
            return
        now = self._clock()
        if now - self._full_at >= FULL_LISTING_SECONDS:
            self._start("full")
        elif now - self._added_at >= CACHE_SECONDS:
            self._start("added")

    async def _read(self, reading: Reading) -> None:
        if self._reading is None:
            self._start(reading)
        assert self._reading is not None
        await asyncio.shield(self._reading)  # a read running already: the loop checks again

    def _start(self, reading: Reading) -> None:
        self._reading = asyncio.create_task(self._full() if reading == "full" else self._new())
        self._reading.add_done_callback(self._read_done)

    def _read_done(self, task: asyncio.Task[None]) -> None:
        self._reading = None
        if not task.cancelled() and task.exception() is not None:  # the next request retries
            logger.warning("reading the room index failed: %s", task.exception())

    async def _full(self) -> None:
        versions = self._added.version(), self._removed.version()
        started = self._clock()
        entries = await read_index(self._storage)
        self._entries = {entry.key: entry for entry in entries}
        self._keys = [entry.key for entry in entries]
        self._live = None
        self._full_at = self._added_at = started
        self._versions = versions

    async def _new(self) -> None:
        version = self._added.version()
        started = self._clock()
        for entry in await read_index(self._storage, self._keys[-1] if self._keys else ""):
            if entry.key not in self._entries:
                self._entries[entry.key] = entry
                bisect.insort(self._keys, entry.key)
                self._live = None
        self._added_at = started
        self._versions = (version, self._versions[1])

    def _unexpired(self) -> list[IndexedRoom]:
        now = time.time_ns() // 1_000_000
        if self._live is None or (self._next_expiry is not None and self._next_expiry <= now):
            entries = (self._entries[key] for key in self._keys)
            self._live = [entry for entry in entries if not entry.is_expired(now)]
            expiries = [e.expiration_date for e in self._live if e.expiration_date is not None]
            self._next_expiry = min(expiries, default=None)
        return self._live

    async def _rooms_of(self, entries: list[IndexedRoom]) -> list[T]:
        found = await asyncio.gather(*(self._room(entry) for entry in entries))
        return [room for room in found if room is not None]

    async def _room(self, entry: IndexedRoom) -> T | None:
        """The room an entry names; None if it has gone or expired. The entry of a room that is
        not stored goes: the room was deleted (elsewhere), or its deletion was cut short."""
        try:
            return await self._read_room(entry.room_name)
        except RoomNotFound:
            try:
                await self._storage.stat(room_key(entry.room_name))
            except ObjectNotFound:
                await self._storage.delete(entry.key)
                self._forget(entry)
            return None

    def _forget(self, entry: IndexedRoom) -> None:
        if self._entries.pop(entry.key, None) is not None:
            self._keys.pop(bisect.bisect_left(self._keys, entry.key))
            self._live = None
