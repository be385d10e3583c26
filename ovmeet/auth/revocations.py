"""Sessions ended before their time (logout), kept in storage so that every process honours them.

A revoked token is one object in its user's folder (`storage.keys.revoked_session_key`). A
request looks up its own token's object, at most once per REFRESH_SECONDS, and again at once
when a logout is told through the "revocations" change marker (every process of this host; with
Redis, every instance): the check costs the same whatever the number of revoked sessions. While
a configured relay does not listen, each request looks its token up: a logout elsewhere is
never missed. When a user has more than `max_per_user` revoked tokens alive, they are folded
into one mark, "every session issued before T": what one user can make the server store stays
bounded. The periodic clean-up forgets what has expired, in the folders of the configured users
(a user no longer configured has no valid token to refuse).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ovmeet.auth.tokens import Session
from ovmeet.shared.cached_view import CachedView
from ovmeet.shared.change_markers import ChangeMarker
from ovmeet.storage import ObjectNotFound, Storage, keys_after
from ovmeet.storage.keys import (
    REVOKED_SESSIONS,
    REVOKED_USERS,
    revoked_before_key,
    revoked_session_key,
    revoked_session_of_key,
    revoked_sessions_prefix,
    unattributed_revocation_expiry,
)
from ovmeet.support.cache import LruCache

T = TypeVar("T")
logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0  # how long another host may accept a token revoked elsewhere, untold
MAX_PER_USER = 1000
MAX_REMEMBERED = 16384  # token ids (and users) a process remembers the answer for


class Revocations:
    def __init__(
        self,
        storage: Storage,
        usernames: tuple[str, ...],
        session_lifetime: int,
        now: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        max_per_user: int = MAX_PER_USER,
    ) -> None:
        self._storage = storage
        self._users = usernames  # whose folders the clean-up sweeps
        self._lifetime = session_lifetime  # the longest a session token lives
        self._now = now
        self._max_per_user = max_per_user
        self._marker = ChangeMarker(storage.name, "revocations")
        self._revoked: LruCache[str, bool] = LruCache(MAX_REMEMBERED)  # for good: a token id
        # Whether a token id is revoked, and each user's mark (0: none), as lately read.
        self._answers: CachedView[str, bool] = self._view(monotonic)
        self._before: CachedView[str, int] = self._view(monotonic)

    async def revoke(self, session: Session) -> None:
        """End `session` now on this host; on other hosts as soon as Redis relays it, else
        within REFRESH_SECONDS."""
        if session.expires_at <= self._now():
            return
        await self._storage.write_json(_key_of(session), {})
        self._revoked.put(session.token_id, True)
        self._answers.forget(session.token_id)
        await self._keep_bounded(session.user.username)
        await self._marker.touch()

    async def is_revoked(self, session: Session) -> bool:
        if self._revoked.get(session.token_id):
            return True
        revoked = await self._answers.get(session.token_id, lambda: self._look_up(session))
        if revoked:
            self._revoked.put(session.token_id, True)
        return revoked

    def _view(self, clock: Callable[[], float]) -> CachedView[str, Any]:
        """Answers reused for REFRESH_SECONDS; none while a logout elsewhere may go untold."""
        return CachedView(
            self._marker, MAX_REMEMBERED, max_age=REFRESH_SECONDS, strict=True, clock=clock
        )

    async def forget_expired(self) -> int:
        """Delete the revocations of tokens that have expired (nothing left to refuse), and the
        marks that cover only such tokens; how many. A user's folder lists in expiry order, so
        this reads what has expired and one key more."""
        now = self._now()
        expired: list[str] = []
        for user in self._users:
            async for key in keys_after(self._storage, revoked_sessions_prefix(user)):
                named = revoked_session_of_key(key)
                if named is None:
                    continue
                if named[0] > now:
                    break
                expired.append(key)
            mark = await self._read_mark(user)
            if mark is not None and mark[1] <= now:
                expired.append(revoked_before_key(user))
        await asyncio.gather(*(self._storage.delete(key) for key in expired))
        return len(expired)

    async def adopt_unattributed(self) -> int:
        """Revocations stored by an ovmeet that named them by token only: as their users are
        unknown, every user's sessions issued until now end once. How many there were."""
        now = self._now()
        found: list[tuple[str, int]] = []
        # Their names start with a digit: they list before every user's folder.
        async for key in keys_after(self._storage, REVOKED_SESSIONS):
            if key.startswith(REVOKED_USERS):
                break
            if (expiry := unattributed_revocation_expiry(key)) is not None:
                found.append((key, expiry))
        if any(expiry > now for _, expiry in found):
            for user in self._users:
                await self._mark_before(user, int(now) + 1)
        await asyncio.gather(*(self._storage.delete(key) for key, _ in found))
        return len(found)

    async def _look_up(self, session: Session) -> bool:
        own, before = await asyncio.gather(
            self._exists(_key_of(session)), self._revoked_before(session.user.username)
        )
        return own or session.issued_at < before

    async def _exists(self, key: str) -> bool:
        try:
            await self._storage.stat(key)
        except ObjectNotFound:
            return False
        return True

    async def _revoked_before(self, user: str) -> int:
        """The user's mark: sessions issued before it are revoked (0: none is)."""

        async def read() -> int:
            mark = await self._read_mark(user)
            return 0 if mark is None else mark[0]

        return await self._before.get(user, read)

    async def _read_mark(self, user: str) -> tuple[int, int] | None:
        """The user's mark: (revoked before, kept until), if there is one."""
        try:
            mark = await self._storage.read_json(revoked_before_key(user))
        except ObjectNotFound:
            return None
        if not isinstance(mark, dict):
            return None
        before, until = mark.get("before"), mark.get("expiresAt")
        if not isinstance(before, int) or not isinstance(until, int):
            return None
        return before, until

    async def _keep_bounded(self, user: str) -> None:
        """Fold the user's revoked tokens into their mark once there are too many."""
        prefix = revoked_sessions_prefix(user)
        keys = await self._storage.list_page(prefix, "", self._max_per_user + 1)
        if len(keys) <= self._max_per_user:
            return
        before = await self._mark_before(user, int(self._now()))
        logger.warning(
            "user %s has logged out %d sessions still alive: all their sessions issued before "
            "this second are ended",
            user,
            len(keys),
        )
        # The mark is stored first: no revoked token is ever accepted in between.
        covered = [
            key for key in keys if (named := revoked_session_of_key(key)) and named[1] < before
        ]
        await asyncio.gather(*(self._storage.delete(key) for key in covered))

    async def _mark_before(self, user: str, before: int) -> int:
        """Revoke every session of `user` issued before `before` (a mark only moves forward)."""
        current = await self._read_mark(user)
        before = max(before, 0 if current is None else current[0])
        mark = {"before": before, "expiresAt": before + self._lifetime}
        await self._storage.write_json(revoked_before_key(user), mark)
        self._before.put(user, before)
        await self._marker.touch()
        return before


def _key_of(session: Session) -> str:
    return revoked_session_key(
        session.user.username, session.expires_at, session.issued_at, session.token_id
    )
