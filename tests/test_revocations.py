"""Logouts: a revoked session is refused everywhere, what one user can make the server store is
bounded, and expired revocations are forgotten by the clean-up, never on a request's path."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from ovmeet.auth.revocations import MAX_PER_USER, Revocations
from ovmeet.auth.tokens import Session
from ovmeet.services import prepare_storage
from ovmeet.storage.keys import revoked_sessions_prefix
from ovmeet.storage.local import LocalStorage
from ovmeet.support.config import Config, User
from tests.support.helpers import cookie_header, login
from tests.support.inprocess import App
from tests.support.processes import ADMIN, USER, base_env, run_cli

ALICE = User("alice", "pw", "USER")
USERS = (ALICE.username,)


def session(token_id: str, issued_at: int, expires_at: int, user: User = ALICE) -> Session:
    return Session(user, token_id, expires_at, issued_at)


def profile_status(app: App, access_token: str) -> int:
    headers = cookie_header({"OvMeetAccessToken": access_token})
    return app.client.get(f"{app.api}/auth/profile", headers=headers).status_code


def logout(app: App, cookies: dict[str, str]) -> None:
    response = app.client.post(f"{app.api}/auth/logout", headers=cookie_header(cookies))
    assert response.status_code == 200, response.text


def revoked_keys(app: App) -> list[str]:
    root = Path(app.env["MEET_DATA_DIR"]) / "revoked-sessions"
    return [f"{folder}/{name}" for folder, _, names in os.walk(root) for name in names]


def test_a_user_who_logs_out_without_end_cannot_fill_the_storage(app: App) -> None:
    kept_open = login(app, USER)["OvMeetAccessToken"]
    other_user = login(app, ADMIN)["OvMeetAccessToken"]
    time.sleep(1.1)  # the sessions above belong to an earlier second than the ones below
    # Every logout revokes two tokens (access and refresh): this passes the bound.
    for _ in range(MAX_PER_USER // 2 + 10):
        logout(app, login(app, USER))
        assert len(revoked_keys(app)) <= MAX_PER_USER + 2
    assert profile_status(app, kept_open) == 401  # folded: every older session of that user
    assert profile_status(app, other_user) == 200  # another user's are not touched
    assert profile_status(app, login(app, USER)["OvMeetAccessToken"]) == 200  # a new one at once


def test_a_revoked_session_is_refused_through_its_own_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = LocalStorage(tmp_path)
        now = time.time()
        here = Revocations(storage, USERS, 3600)
        elsewhere = Revocations(storage, USERS, 3600)  # another process on the same storage
        ended = session("abcdefghijklmnop", int(now) - 5, int(now) + 600)
        kept = session("qrstuvwxyzABCDEF", int(now) - 5, int(now) + 600)
        assert not await elsewhere.is_revoked(ended)
        await here.revoke(ended)
        assert await here.is_revoked(ended)
        assert not await here.is_revoked(kept)
        # The other process asked a moment ago and may answer from memory for REFRESH_SECONDS.
        fresh = Revocations(storage, USERS, 3600)
        assert await fresh.is_revoked(ended)
        assert not await fresh.is_revoked(kept)
        await storage.aclose()

    asyncio.run(scenario())


def test_expired_revocations_are_forgotten_by_the_clean_up_only(tmp_path: Path) -> None:
    async def scenario() -> None:
        clock = [1_000_000.0]
        storage = LocalStorage(tmp_path)
        revocations = Revocations(
            storage, USERS, 60, now=lambda: clock[0], monotonic=lambda: clock[0]
        )
        ending = session("abcdefghijklmnop", 999_990, 1_000_060)
        lasting = session("qrstuvwxyzABCDEF", 999_990, 1_000_600)
        await revocations.revoke(ending)
        await revocations.revoke(lasting)
        clock[0] += 120  # the first token has expired: nothing left to refuse
        assert await revocations.is_revoked(lasting)
        assert len(await storage.list("revoked-sessions/")) == 2  # requests delete nothing
        assert await revocations.forget_expired() == 1
        keys = await storage.list("revoked-sessions/")
        assert len(keys) == 1 and keys[0].endswith("-0000999990-qrstuvwxyzABCDEF.json")
        assert await Revocations(storage, USERS, 60, now=lambda: clock[0]).is_revoked(lasting)
        await storage.aclose()

    asyncio.run(scenario())


def test_the_fold_mark_is_forgotten_when_every_session_it_covers_has_expired(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        clock = [1_000_000.0]
        storage = LocalStorage(tmp_path)
        revocations = Revocations(
            storage, USERS, 600, now=lambda: clock[0], monotonic=lambda: clock[0], max_per_user=3
        )
        sessions = [session(f"token{n:011d}", 999_000 + n, 1_000_500) for n in range(4)]
        for revoked in sessions:
            await revocations.revoke(revoked)
        older = session("olderolderolder1", 999_100, 1_000_500)  # never logged out
        newer = session("newernewernewer1", 1_000_000, 1_000_500)  # issued in the fold's second
        assert await revocations.is_revoked(older)
        assert not await revocations.is_revoked(newer)
        assert len(await storage.list("revoked-sessions/")) == 1  # the mark alone
        clock[0] += 599
        assert await revocations.forget_expired() == 0
        clock[0] += 2
        assert await revocations.forget_expired() == 1
        assert await storage.list("revoked-sessions/") == []
        await storage.aclose()

    asyncio.run(scenario())


def test_revocations_an_earlier_ovmeet_stored_by_token_only_still_hold(tmp_path: Path) -> None:
    """Before, a revocation named no user (`revoked-sessions/{exp}-{jti}.json`): at the next
    start every session issued until then ends once, rather than a logged-out one coming back."""
    now = int(time.time())
    old = tmp_path / "revoked-sessions" / f"{now + 600}-abcdefghijklmnop.json"
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    config = Config(data_dir=str(tmp_path), admin_user=ALICE.username, admin_secret="pw")
    asyncio.run(prepare_storage(config))

    async def check() -> None:
        storage = LocalStorage(tmp_path)
        revocations = Revocations(storage, USERS, 3600)
        assert await revocations.is_revoked(session("abcdefghijklmnop", now - 10, now + 600))
        assert await revocations.is_revoked(session("anyotheroldtoken", now - 10, now + 600))
        assert not await revocations.is_revoked(session("anewtokenissued1", now + 2, now + 900))
        await storage.aclose()

    asyncio.run(check())
    assert not old.exists()
    marks = list((tmp_path / "revoked-sessions" / "users").glob("*.json"))
    assert len(marks) == 1 and json.loads(marks[0].read_text())["before"] >= now


@pytest.mark.parametrize("count", [0, 3])
def test_the_clean_up_command_forgets_expired_revocations(tmp_path: Path, count: int) -> None:
    root = tmp_path / revoked_sessions_prefix(ADMIN[0])
    root.mkdir(parents=True)
    for n in range(count):
        (root / f"{1_000_000 + n:010d}-{999_000:010d}-token{n:011d}.json").write_text("{}")
    (root / f"{int(time.time()) + 600:010d}-{999_000:010d}-alivealivealive1.json").write_text("{}")
    env = {**base_env("ws://127.0.0.1:9"), "MEET_STORAGE": "local", "MEET_DATA_DIR": str(tmp_path)}
    done = run_cli(env, "gc")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["forgottenRevocations"] == count
    assert len(list(root.iterdir())) == 1
