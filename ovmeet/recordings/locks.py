"""One recording per room: the lock a room's recording holds from its start to its end.

A lock names its holder by a random `uid` (the recording's own), the fencing value: a holder
changes or frees only a lock that still names it, and a stale lock is taken over only as it was
read. Two stores keep locks, one at a time:

- `StorageLocks`, without Redis: one object per room, created with the storage's exclusive
  create (a link() on local storage, an S3 `If-None-Match: *` write). Changing, freeing and
  taking over read the object first, so two processes acting on the same stale lock in the
  same few milliseconds can both succeed.
- `RedisLocks`, with Redis: one hash field per room, every step one atomic script: exactly one
  of any number of concurrent starts, in any instances, holds the room, whatever the timing.
  While Redis does not answer, recordings are neither started nor freed (503).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar, cast

from redis.asyncio import Redis

from ovmeet.shared import redis_state
from ovmeet.storage import ObjectNotFound, Storage
from ovmeet.storage.keys import RECORDING_LOCKS, recording_lock_key, room_of_lock_key
from ovmeet.support.config import Config


@dataclass(frozen=True)
class RecordingLock:
    room_id: str
    uid: str  # the recording's uid: who holds the lock
    since: int  # when the start took it (ms)
    egress_id: str | None = None  # once LiveKit has named the recording's egress

    def with_egress(self, egress_id: str) -> RecordingLock:
        return replace(self, egress_id=egress_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "roomId": self.room_id,
            "uid": self.uid,
            "since": self.since,
            "egressId": self.egress_id,
        }

    @classmethod
    def from_json(cls, room_id: str, data: Any) -> RecordingLock:
        """The lock as stored; a document that is not one holds the room for nobody (its uid is
        empty) and goes stale as one of time 0."""
        data = data if isinstance(data, dict) else {}
        since, uid, egress_id = data.get("since"), data.get("uid"), data.get("egressId")
        return cls(
            room_id=room_id,
            uid=uid if isinstance(uid, str) else "",
            since=since if isinstance(since, int) else 0,
            egress_id=egress_id if isinstance(egress_id, str) and egress_id else None,
        )


class RecordingLocks(Protocol):
    async def create(self, lock: RecordingLock) -> bool:
        """Take the room's lock if no one holds it."""

    async def read(self, room_id: str) -> RecordingLock | None:
        """The room's lock, if someone holds it."""

    async def update(self, lock: RecordingLock) -> bool:
        """Store what the holder learnt (its egress), if the lock still names it."""

    async def take_over(self, stale: RecordingLock, lock: RecordingLock) -> bool:
        """Replace a stale lock, if it is still the one read."""

    async def remove(self, lock: RecordingLock) -> bool:
        """Free the room, if the lock still names `lock`'s holder."""

    async def rooms(self) -> list[str]:
        """The rooms whose lock someone holds (for the clean-up)."""


class StorageLocks:
    """Locks as objects in the storage (`recordings/.locks/{roomId}.json`)."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def create(self, lock: RecordingLock) -> bool:
        return await self._storage.create_json(recording_lock_key(lock.room_id), lock.to_json())

    async def read(self, room_id: str) -> RecordingLock | None:
        try:
            data = await self._storage.read_json(recording_lock_key(room_id))
        except ObjectNotFound:
            return None
        return RecordingLock.from_json(room_id, data)

    async def update(self, lock: RecordingLock) -> bool:
        if not await self._holds(lock):
            return False
        await self._storage.write_json(recording_lock_key(lock.room_id), lock.to_json())
        return True

    async def take_over(self, stale: RecordingLock, lock: RecordingLock) -> bool:
        await self.remove(stale)  # not there (freed, or taken over): the create decides
        return await self.create(lock)

    async def remove(self, lock: RecordingLock) -> bool:
        if not await self._holds(lock):
            return False
        await self._storage.delete(recording_lock_key(lock.room_id))
        return True

    async def _holds(self, lock: RecordingLock) -> bool:
        """Whether the room's lock names `lock`'s holder (read, then acted on: not atomic)."""
        held = await self.read(lock.room_id)
        return held is not None and held.uid == lock.uid

    async def rooms(self) -> list[str]:
        return [room_of_lock_key(key) for key in await self._storage.list(RECORDING_LOCKS)]


# Acts on the room's field of the locks' hash (KEYS[1]; ARGV[1] the room) only if the lock there
# names the holder ARGV[2] ('' for a field that is not a lock document).
_IF_HELD = """
local function holder(held)
  local ok, lock = pcall(cjson.decode, held)
  if ok and type(lock) == 'table' and type(lock.uid) == 'string' then return lock.uid end
  return ''
end
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held or holder(held) ~= ARGV[2] then return 0 end
"""
_REPLACE = _IF_HELD + "redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])\nreturn 1\n"
_REMOVE = _IF_HELD + "redis.call('HDEL', KEYS[1], ARGV[1])\nreturn 1\n"


class RedisLocks:
    """Locks as fields of one Redis hash (`ovmeet:{deployment}:recording locks`), room by room."""

    def __init__(self, config: Config, redis: Redis) -> None:
        self._config, self._redis = config, redis
        self._key = redis_state.key(config, "recording locks")
        self._replace = redis.register_script(_REPLACE)
        self._remove = redis.register_script(_REMOVE)

    async def create(self, lock: RecordingLock) -> bool:
        async with self._answer():
            created = await _answer_of(self._redis.hsetnx(self._key, lock.room_id, _dumps(lock)))
        return bool(created)

    async def read(self, room_id: str) -> RecordingLock | None:
        async with self._answer():
            held = await _answer_of(self._redis.hget(self._key, room_id))
        return None if held is None else RecordingLock.from_json(room_id, _loads(held))

    async def update(self, lock: RecordingLock) -> bool:
        return await self._if_held(self._replace, lock, _dumps(lock))

    async def take_over(self, stale: RecordingLock, lock: RecordingLock) -> bool:
        if await self._if_held(self._replace, stale, _dumps(lock)):
            return True
        return await self.create(lock)  # freed meanwhile: any start may take it

    async def remove(self, lock: RecordingLock) -> bool:
        return await self._if_held(self._remove, lock)

    async def rooms(self) -> list[str]:
        async with self._answer():
            fields = await _answer_of(self._redis.hkeys(self._key))
        return [field.decode() if isinstance(field, bytes) else str(field) for field in fields]

    async def _if_held(self, script: Any, lock: RecordingLock, *value: str) -> bool:
        async with self._answer():
            done = await script(keys=[self._key], args=[lock.room_id, lock.uid, *value])
        return bool(done)

    def _answer(self) -> contextlib.AbstractAsyncContextManager[None]:
        return redis_state.answered(self._config)


def recording_locks(config: Config, storage: Storage, redis: Redis | None) -> RecordingLocks:
    """Redis's locks when it is configured, else the storage's."""
    return RedisLocks(config, redis) if redis is not None else StorageLocks(storage)


T = TypeVar("T")


async def _answer_of(call: Awaitable[T] | T) -> T:
    """What an asyncio client's call answers (redis-py types its commands for both clients)."""
    return await cast(Awaitable[T], call)


def _dumps(lock: RecordingLock) -> str:
    return json.dumps(lock.to_json())


def _loads(held: bytes | str) -> Any:
    try:
        return json.loads(held)
    except ValueError:
        return None
