"""What a caller whom only the room creation policy lets in may create: rooms at a bounded
rate, per logged-in user, or per client address for anyone else. An API key and an ADMIN are
trusted with any number. With Redis, one budget for every instance."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

from ovmeet.auth.access import Principal
from ovmeet.shared import redis_state
from ovmeet.support.cache import LruCache
from ovmeet.support.config import Config
from ovmeet.support.errors import TooManyRequests

ROOMS_PER_HOUR = 60  # a burst of this many, then one a minute
MAX_TRACKED = 10_000
BUCKET_SECONDS = 3600.0  # a bucket refills whole in this time


class Buckets(Protocol):
    """Buckets of `size` tokens per key, refilled evenly over BUCKET_SECONDS."""

    async def take(self, key: str, size: int) -> int:
        """Take one token of `key`'s bucket: 0, or the seconds until one is there."""


class LocalBuckets:
    """This process's buckets (the least recently used forgotten beyond MAX_TRACKED)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._buckets: LruCache[str, tuple[float, float]] = LruCache(MAX_TRACKED, now)  # left, at

    async def take(self, key: str, size: int) -> int:
        now = self._now()
        left, at = self._buckets.get(key) or (float(size), now)
        left = min(float(size), left + (now - at) * size / BUCKET_SECONDS)
        if left < 1:
            return math.ceil((1 - left) * BUCKET_SECONDS / size)
        self._buckets.put(key, (left - 1, now))
        return 0


# One step on Redis's own clock, so that instances agree; the bucket goes once it is full again.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local size, refill = tonumber(ARGV[1]), tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[1], 'left', 'at')
local left = tonumber(bucket[1]) or size
local at = tonumber(bucket[2]) or now
left = math.min(size, left + (now - at) * size / refill)
if left < 1 then return math.ceil((1 - left) * refill / size) end
redis.call('HSET', KEYS[1], 'left', tostring(left - 1), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(refill))
return 0
"""


class SharedBuckets:
    """Buckets kept in Redis. While Redis does not answer, this process's own buckets are used
    (and it says so once): a budget per process, never none."""

    def __init__(self, config: Config, redis: Redis, job: str) -> None:
        self._config, self._job = config, job
        self._local = LocalBuckets()
        self._take = redis.register_script(_TAKE)
        self._outage = redis_state.Outage(config, job, "are counted per process")

    async def take(self, key: str, size: int) -> int:
        shared = self._take(
            keys=[redis_state.key(self._config, self._job, key)], args=[size, BUCKET_SECONDS]
        )
        return int(await self._outage.answer(shared, lambda: self._local.take(key, size)))


def buckets(config: Config, redis: Redis | None, job: str) -> Buckets:
    """Shared buckets when Redis is configured, else this process's."""
    return SharedBuckets(config, redis, job) if redis is not None else LocalBuckets()


class RoomCreationQuota:
    """A bucket of `per_hour` rooms per creator, refilled evenly over an hour."""

    def __init__(self, buckets: Buckets, per_hour: int = ROOMS_PER_HOUR) -> None:
        self._buckets = buckets
        self._per_hour = per_hour

    async def spend(self, principal: Principal, client: str) -> None:
        """Count one room for its creator, or raise TooManyRequests if none is left."""
        if principal.api_key or (principal.user is not None and principal.user.role == "ADMIN"):
            return
        kind, who = ("user", principal.user.username) if principal.user else ("client", client)
        wait = await self._buckets.take(f"{kind} {who}", self._per_hour)
        if wait:
            raise TooManyRequests(
                f"Too many rooms created by this {kind}: "
                f"{self._per_hour} an hour; try again in {wait} s",
                wait,
                name="Room Error",
            )
