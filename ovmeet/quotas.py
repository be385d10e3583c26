"""What a caller whom only the room creation policy lets in may create: rooms at a bounded
rate, per logged-in user, or per client address for anyone else. An API key and an ADMIN are
trusted with any number."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ovmeet.access import Principal
from ovmeet.errors import TooManyRequests
from ovmeet.recent import Recent

ROOMS_PER_HOUR = 60  # a burst of this many, then one a minute
MAX_TRACKED = 10_000


class RoomCreationQuota:
    """A bucket of ROOMS_PER_HOUR rooms per creator, refilled evenly over an hour."""

    def __init__(
        self, per_hour: int = ROOMS_PER_HOUR, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_hour = per_hour
        self._now = now
        self._buckets: Recent[str, tuple[float, float]] = Recent(MAX_TRACKED, now)  # left, at

    def spend(self, principal: Principal, client: str) -> None:
        """Count one room for its creator, or raise TooManyRequests if none is left."""
        if principal.api_key or (principal.user is not None and principal.user.role == "ADMIN"):
            return
        kind, who = ("user", principal.user.username) if principal.user else ("client", client)
        creator = f"{kind} {who}"
        now = self._now()
        left, at = self._buckets.get(creator) or (float(self._per_hour), now)
        left = min(float(self._per_hour), left + (now - at) * self._per_hour / 3600)
        if left < 1:
            wait = math.ceil((1 - left) * 3600 / self._per_hour)
            raise TooManyRequests(
                f"Too many rooms created by this {kind}: "
                f"{self._per_hour} an hour; try again in {wait} s",
                wait,
                name="Room Error",
            )
        self._buckets.put(creator, (left - 1, now))
