"""Users: password check in constant time, and a throttle that makes brute force impractical."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

from ovmeet.auth.revocations import Revocations
from ovmeet.auth.tokens import Session
from ovmeet.shared import redis_state
from ovmeet.support.cache import LruCache
from ovmeet.support.config import Config, User
from ovmeet.support.errors import TooManyRequests, Unauthorized

FAILURES_BEFORE_LOCK = 5
FIRST_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 3600.0
FORGET_AFTER_SECONDS = 3600.0
MAX_TRACKED = 10_000  # clients, and accounts (any name tried): the least recent forgotten


def authenticate(config: Config, username: str, password: str) -> User | None:
    """The user these credentials name; every user is compared, so timing tells nothing."""
    found = None
    for user in config.users:
        name_ok = hmac.compare_digest(username.encode(), user.username.encode())
        password_ok = hmac.compare_digest(password.encode(), user.password.encode())
        if name_ok and password_ok:
            found = user
    return found


@dataclass
class _Failures:
    count: int
    locked_until: float


class FailureCounts(Protocol):
    """Failures by key (a client or an account) and the lock they earn."""

    async def locked_for(self, key: str) -> int:
        """Seconds `key` stays locked (0 if it is not)."""

    async def failed(self, key: str) -> None:
        """Count one more failure of `key` (a lock from the FAILURES_BEFORE_LOCK-th on)."""

    async def forget(self, key: str) -> None:
        """Forget `key`'s failures."""


def lock_seconds(count: int) -> float:
    """The lock a `count`-th failure earns: none before FAILURES_BEFORE_LOCK, then doubling."""
    if count < FAILURES_BEFORE_LOCK:
        return 0.0
    return float(min(FIRST_LOCK_SECONDS * 2.0 ** (count - FAILURES_BEFORE_LOCK), MAX_LOCK_SECONDS))


class LocalFailureCounts:
    """This process's counts, each forgotten FORGET_AFTER_SECONDS after its last failure; the
    least recently seen forgotten first beyond MAX_TRACKED."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._entries: LruCache[str, _Failures] = LruCache(MAX_TRACKED, now)
        self._now = now

    async def locked_for(self, key: str) -> int:
        entry = self._entries.get(key, FORGET_AFTER_SECONDS)
        if entry is None or entry.locked_until <= self._now():
            return 0
        return max(1, math.ceil(entry.locked_until - self._now()))

    async def failed(self, key: str) -> None:
        entry = self._entries.get(key, FORGET_AFTER_SECONDS) or _Failures(0, 0.0)
        entry.count += 1
        if lock := lock_seconds(entry.count):
            entry.locked_until = self._now() + lock
        self._entries.put(key, entry)  # dated now: forgotten an hour after its last failure

    async def forget(self, key: str) -> None:
        self._entries.forget(key)


# Counted and locked in one step on Redis's own clock, so that instances agree.
_FAIL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local count = redis.call('HINCRBY', KEYS[1], 'count', 1)
local lock = tonumber(ARGV[count + 1] or ARGV[#ARGV])
if lock > 0 then redis.call('HSET', KEYS[1], 'until', tostring(now + lock)) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count
"""
_LOCKED_FOR = """
local left = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local t = redis.call('TIME')
left = left - (tonumber(t[1]) + tonumber(t[2]) / 1000000)
if left <= 0 then return 0 end
return math.ceil(left)
"""
# The lock of each count, 1 to the first at MAX_LOCK_SECONDS (the last stands for the rest).
_LOCKS = [
    lock_seconds(count)
    for count in range(
        1, FAILURES_BEFORE_LOCK + int(math.log2(MAX_LOCK_SECONDS / FIRST_LOCK_SECONDS)) + 2
    )
]


class SharedFailureCounts:
    """Counts kept in Redis, one budget for every instance. While Redis does not answer, this
    process counts alone (and says so once): a throttle per process, never none."""

    def __init__(self, config: Config, redis: Redis, job: str) -> None:
        self._config, self._redis, self._job = config, redis, job
        self._local = LocalFailureCounts()
        self._fail = redis.register_script(_FAIL)
        self._locked_for = redis.register_script(_LOCKED_FOR)
        self._outage = redis_state.Outage(config, f"failed {job}", "are counted per process")

    def _key(self, key: str) -> str:
        return redis_state.key(self._config, self._job, key)

    async def locked_for(self, key: str) -> int:
        here = await self._local.locked_for(key)
        shared = await self._outage.answer(self._locked_for(keys=[self._key(key)]), _zero)
        return max(int(shared), here)  # a lock this process saw outlasts a Redis restarted empty

    async def failed(self, key: str) -> None:
        await self._local.failed(key)  # what this process saw, should Redis go away
        args = [int(FORGET_AFTER_SECONDS), *_LOCKS]
        await self._outage.attempt(self._fail(keys=[self._key(key)], args=args))

    async def forget(self, key: str) -> None:
        await self._local.forget(key)
        await self._outage.attempt(self._redis.delete(self._key(key)))


async def _zero() -> int:
    return 0


def failure_counts(config: Config, redis: Redis | None, job: str) -> FailureCounts:
    """Shared counts when Redis is configured, else this process's."""
    return SharedFailureCounts(config, redis, job) if redis is not None else LocalFailureCounts()


class LoginThrottle:
    """Failures counted per client and per account; after FAILURES_BEFORE_LOCK of either, a
    lock that doubles with each new failure. A success clears its own account's count only,
    so that knowing one password does not reset the guesses at another."""

    def __init__(self, clients: FailureCounts, accounts: FailureCounts) -> None:
        self._clients = clients
        self._accounts = accounts

    async def check(self, client: str, username: str) -> None:
        """Raise TooManyRequests while `client` or the account `username` is locked."""
        for counts, key, what in (
            (self._clients, client, "from this client"),
            (self._accounts, username, "for this account"),
        ):
            wait = await counts.locked_for(key)
            if wait:
                raise TooManyRequests(f"Too many failed logins {what}; try again in {wait} s", wait)

    async def failed(self, client: str, username: str) -> None:
        await self._clients.failed(client)
        await self._accounts.failed(username)

    async def succeeded(self, username: str) -> None:
        await self._accounts.forget(username)


class ApiKeyThrottle:
    """Wrong X-API-KEY values counted per client; after FAILURES_BEFORE_LOCK, the client's key
    attempts are refused (429) for a lock that doubles with each new failure, as for logins."""

    def __init__(self, clients: FailureCounts) -> None:
        self._clients = clients

    async def check(self, client: str) -> None:
        wait = await self._clients.locked_for(client)
        if wait:
            raise TooManyRequests(
                f"Too many wrong API keys from this client; try again in {wait} s", wait
            )

    async def failed(self, client: str) -> None:
        await self._clients.failed(client)


async def login(
    config: Config, throttle: LoginThrottle, client: str, username: str, password: str
) -> User:
    """The user, or Unauthorized / TooManyRequests; failures count against the client and the
    account."""
    await throttle.check(client, username)
    user = authenticate(config, username, password)
    if user is None:
        await throttle.failed(client, username)
        raise Unauthorized("Invalid username or password")
    await throttle.succeeded(username)
    return user


async def logout(revocations: Revocations, *sessions: Session | None) -> None:
    """End the sessions of the cookies sent (access, refresh) for every ovmeet process."""
    for session in sessions:
        if session is not None:
            await revocations.revoke(session)
