"""Users: password check in constant time, and a throttle that makes brute force impractical."""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ovmeet.config import Config, User
from ovmeet.errors import TooManyRequests, Unauthorized
from ovmeet.recent import Recent
from ovmeet.revocations import Revocations
from ovmeet.tokens import Session

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


class _FailureCounts:
    """Failures by key (a client or an account), each forgotten FORGET_AFTER_SECONDS after its
    last failure; the least recently seen forgotten first beyond MAX_TRACKED."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._entries: Recent[str, _Failures] = Recent(MAX_TRACKED, now)
        self._now = now

    def locked_for(self, key: str) -> int:
        """Seconds `key` stays locked (0 if it is not)."""
        entry = self._entries.get(key, FORGET_AFTER_SECONDS)
        if entry is None or entry.locked_until <= self._now():
            return 0
        return max(1, math.ceil(entry.locked_until - self._now()))

    def failed(self, key: str) -> None:
        now = self._now()
        entry = self._entries.get(key, FORGET_AFTER_SECONDS) or _Failures(0, 0.0)
        entry.count += 1
        if entry.count >= FAILURES_BEFORE_LOCK:
            lock = FIRST_LOCK_SECONDS * 2 ** (entry.count - FAILURES_BEFORE_LOCK)
            entry.locked_until = now + min(lock, MAX_LOCK_SECONDS)
        self._entries.put(key, entry)  # dated now: forgotten an hour after its last failure

    def forget(self, key: str) -> None:
        self._entries.forget(key)


class LoginThrottle:
    """Failures counted per client and per account; after FAILURES_BEFORE_LOCK of either, a
    lock that doubles with each new failure. A success clears its own account's count only,
    so that knowing one password does not reset the guesses at another."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._clients = _FailureCounts(now)
        self._accounts = _FailureCounts(now)

    def check(self, client: str, username: str) -> None:
        """Raise TooManyRequests while `client` or the account `username` is locked."""
        for counts, key, what in (
            (self._clients, client, "from this client"),
            (self._accounts, username, "for this account"),
        ):
            wait = counts.locked_for(key)
            if wait:
                raise TooManyRequests(f"Too many failed logins {what}; try again in {wait} s", wait)

    def failed(self, client: str, username: str) -> None:
        self._clients.failed(client)
        self._accounts.failed(username)

    def succeeded(self, username: str) -> None:
        self._accounts.forget(username)


class ApiKeyThrottle:
    """Wrong X-API-KEY values counted per client; after FAILURES_BEFORE_LOCK, the client's key
    attempts are refused (429) for a lock that doubles with each new failure, as for logins."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._clients = _FailureCounts(now)

    def check(self, client: str) -> None:
        wait = self._clients.locked_for(client)
        if wait:
            raise TooManyRequests(
                f"Too many wrong API keys from this client; try again in {wait} s", wait
            )

    def failed(self, client: str) -> None:
        self._clients.failed(client)


def login(
    config: Config, throttle: LoginThrottle, client: str, username: str, password: str
) -> User:
    """The user, or Unauthorized / TooManyRequests; failures count against the client and the
    account."""
    throttle.check(client, username)
    user = authenticate(config, username, password)
    if user is None:
        throttle.failed(client, username)
        raise Unauthorized("Invalid username or password")
    throttle.succeeded(username)
    return user


async def logout(revocations: Revocations, *sessions: Session | None) -> None:
    """End the sessions of the cookies sent (access, refresh) for every ovmeet process."""
    for session in sessions:
        if session is not None:
            await revocations.revoke(session)
