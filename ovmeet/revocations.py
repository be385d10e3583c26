"""Sessions ended before their time (logout): kept in storage, so that every process honours
them, and cached for at most REFRESH_SECONDS.

One object per revoked token, named by its expiry and id (`revoked-sessions/{exp}-{jti}.json`),
so that a listing says everything and any process can delete those whose token has expired.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ovmeet.storage import Storage
from ovmeet.tokens import Session

PREFIX = "revoked-sessions/"
REFRESH_SECONDS = 1.0


class Revocations:
    def __init__(
        self,
        storage: Storage,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._storage = storage
        self._now = now
        self._monotonic = monotonic
        self._revoked: dict[str, int] = {}  # token id -> expiry
        self._read_at: float | None = None
        self._reading = asyncio.Lock()

    async def revoke(self, session: Session) -> None:
        """End `session` now, here; everywhere within REFRESH_SECONDS."""
        if session.expires_at <= self._now():
            return
        await self._storage.write_json(_key(session.expires_at, session.token_id), {})
        self._revoked[session.token_id] = session.expires_at

    async def is_revoked(self, session: Session) -> bool:
        await self._refresh()
        return session.token_id in self._revoked

    async def _refresh(self) -> None:
        """Re-read the revoked tokens if the cache is older than REFRESH_SECONDS."""
        if self._read_at is not None and self._monotonic() - self._read_at < REFRESH_SECONDS:
            return
        async with self._reading:  # one listing for all the requests that wait on it
            if self._read_at is not None and self._monotonic() - self._read_at < REFRESH_SECONDS:
                return
            revoked, expired = {}, []
            for key in await self._storage.list(PREFIX):
                parsed = _parse(key)
                if parsed is None:
                    continue
                expires_at, token_id = parsed
                if expires_at <= self._now():
                    expired.append(key)
                else:
                    revoked[token_id] = expires_at
            self._revoked = revoked
            self._read_at = self._monotonic()
        for key in expired:  # tokens that cannot be used any more: nothing to remember
            await self._storage.delete(key)


def _key(expires_at: int, token_id: str) -> str:
    return f"{PREFIX}{expires_at}-{token_id}.json"


def _parse(key: str) -> tuple[int, str] | None:
    name = key.removeprefix(PREFIX).removesuffix(".json")
    expiry, _, token_id = name.partition("-")
    if not expiry.isdigit() or not token_id:
        return None
    return int(expiry), token_id
