"""Users: password check in constant time, and a throttle that makes brute force impractical."""

from __future__ import annotations

import hmac
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from ovmeet.config import Config, User
from ovmeet.errors import TooManyRequests, Unauthorized

FAILURES_BEFORE_LOCK = 5
FIRST_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 3600.0
FORGET_AFTER_SECONDS = 3600.0
MAX_TRACKED_CLIENTS = 10_000


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
    last: float
    locked_until: float


class LoginThrottle:
    """Per client: after FAILURES_BEFORE_LOCK failures, a lock that doubles with each new one."""

    def __init__(self) -> None:
        self._clients: OrderedDict[str, _Failures] = OrderedDict()
        self._now = time.monotonic

    def check(self, client: str) -> None:
        """Raise TooManyRequests while `client` is locked out."""
        entry = self._entry(client)
        if entry is not None and entry.locked_until > self._now():
            wait = math.ceil(entry.locked_until - self._now())
            raise TooManyRequests(
                f"Too many failed logins from this client; try again in {wait} s", wait
            )

    def failed(self, client: str) -> None:
        now = self._now()
        entry = self._entry(client) or _Failures(0, now, 0.0)
        entry.count += 1
        entry.last = now
        if entry.count >= FAILURES_BEFORE_LOCK:
            lock = FIRST_LOCK_SECONDS * 2 ** (entry.count - FAILURES_BEFORE_LOCK)
            entry.locked_until = now + min(lock, MAX_LOCK_SECONDS)
        self._clients[client] = entry
        self._clients.move_to_end(client)
        while len(self._clients) > MAX_TRACKED_CLIENTS:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)

    def _entry(self, client: str) -> _Failures | None:
        entry = self._clients.get(client)
        if entry is not None and self._now() - entry.last > FORGET_AFTER_SECONDS:
            del self._clients[client]
            return None
        return entry


def login(
    config: Config, throttle: LoginThrottle, client: str, username: str, password: str
) -> User:
    """The user, or Unauthorized / TooManyRequests; failures count against `client`."""
    throttle.check(client)
    user = authenticate(config, username, password)
    if user is None:
        throttle.failed(client)
        raise Unauthorized("Invalid username or password")
    throttle.succeeded(client)
    return user
