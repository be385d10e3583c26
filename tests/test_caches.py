"""Rooms and LiveKit call tokens kept between requests: what is reused, and how stale it can be."""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from livekit.api import TokenVerifier, VideoGrants

from ovmeet.livekit.gateway import CallTokens
from ovmeet.preferences.store import GlobalPreferences
from ovmeet.shared.cached_view import CachedView
from ovmeet.shared.change_markers import (
    CACHE_SECONDS,
    ChangeMarker,
    relay_changes,
    stop_relaying,
)
from ovmeet.storage.local import LocalStorage
from ovmeet.support.cache import SharedLoads
from ovmeet.support.config import Config
from ovmeet.support.errors import RoomNotFound
from tests.conftest import Servers
from tests.support.helpers import metric, request_token, secret, token_body
from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, Ovmeet, base_env
from tests.support.stored import Stored

verifier = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)
API_KEY = "freshness-test-key-5d1e"


def stored_room(name: str) -> str:
    return f"rooms/{name}/{name}.json"


def status_of_token(server: Ovmeet, room: dict[str, Any], name: str = "Ana") -> int:
    return request_token(server, token_body(room, name)).status_code


def test_a_room_deleted_through_this_host_is_gone_at_once(server: Ovmeet) -> None:
    room = server.create_room("fresh")
    assert status_of_token(server, room) == 200  # now in the server's cache
    assert server.cli("rooms", "delete", room["roomName"]).returncode == 0
    assert status_of_token(server, room) == 404


def test_a_room_changed_through_another_worker_is_seen_at_once(
    servers: Servers, backend: str
) -> None:
    server = servers.start(backend, ("--workers", "2"), MEET_API_KEY=API_KEY)
    room = server.create_room("fresh")
    for name in ("A", "B", "C", "D"):  # both workers have the room cached, most likely
        token = request_token(server, token_body(room, name, "moderator")).json()["token"]
        assert '"canRecord":true' in verifier.verify(token).metadata
    response = server.client.put(
        f"{server.base_url}/meet/api/v1/rooms/{room['roomName']}",
        json={"recordingPreferences": {"enabled": False}},
        headers={"X-API-KEY": API_KEY},
    )
    assert response.status_code == 200, response.text
    for name in ("E", "F", "G", "H"):
        token = request_token(server, token_body(room, name, "moderator")).json()["token"]
        assert '"canRecord":false' in verifier.verify(token).metadata


def test_a_room_deleted_by_another_host_is_gone_within_the_bound(server: Ovmeet) -> None:
    room = server.create_room("fresh")
    assert status_of_token(server, room) == 200
    Stored(server).delete(stored_room(room["roomName"]))
    deleted_at = time.monotonic()
    while status_of_token(server, room) != 404:
        assert time.monotonic() - deleted_at < CACHE_SECONDS + 0.5
        time.sleep(0.05)


def test_a_room_stored_by_another_host_is_found_at_once(server: Ovmeet) -> None:
    room = server.create_room("fresh")
    twin = {**room, "roomName": room["roomName"] + "x"}
    assert status_of_token(server, twin) == 404  # unknown names are not remembered
    Stored(server).write_json(stored_room(twin["roomName"]), twin)
    assert status_of_token(server, twin) == 200


def test_a_cached_room_expires_on_time(server: Ovmeet) -> None:
    expires = int(time.time() * 1000) + 1500
    room = server.create_room("fresh", expiration_date=expires)
    assert status_of_token(server, room) == 200
    time.sleep(max(0.0, expires / 1000 - time.time()) + 0.05)
    assert status_of_token(server, room, "Bea") == 404


def test_call_tokens_are_reused_per_grant_and_renewed_before_their_end() -> None:
    tokens = CallTokens(LIVEKIT_KEY, LIVEKIT_SECRET, ttl=2, renew_before=1)
    admin = tokens.header(VideoGrants(room_admin=True, room="a"))
    assert tokens.header(VideoGrants(room_admin=True, room="a")) == admin
    other = tokens.header(VideoGrants(room_admin=True, room="b"))
    record = tokens.header(VideoGrants(room_record=True))
    assert len({admin["Authorization"], other["Authorization"], record["Authorization"]}) == 3
    claims = verifier.verify(admin["Authorization"].removeprefix("Bearer "))
    assert claims.video is not None and claims.video.room == "a" and claims.video.room_admin
    time.sleep(1.1)  # less than `renew_before` left: a new one
    assert tokens.header(VideoGrants(room_admin=True, room="a")) != admin


def test_call_tokens_keep_only_the_most_recent() -> None:
    tokens = CallTokens(LIVEKIT_KEY, LIVEKIT_SECRET, size=2)
    first = tokens.header(VideoGrants(room_admin=True, room="a"))
    tokens.header(VideoGrants(room_admin=True, room="b"))
    tokens.header(VideoGrants(room_admin=True, room="c"))  # "a" goes
    time.sleep(1.01)  # a token signed now differs (its nbf/exp are in seconds)
    assert tokens.header(VideoGrants(room_admin=True, room="a")) != first


@pytest.mark.parametrize("moderator", [True, False])
def test_issued_tokens_differ_per_participant_only_in_who_and_when(
    server: Ovmeet, moderator: bool
) -> None:
    room = server.create_room("fresh")
    role = "moderator" if moderator else "publisher"
    first = verifier.verify(request_token(server, token_body(room, "Ana", role)).json()["token"])
    second = verifier.verify(request_token(server, token_body(room, "Bob", role)).json()["token"])
    assert (first.identity, first.name, second.identity, second.name) == (
        "Ana",
        "Ana",
        "Bob",
        "Bob",
    )
    assert first.video == second.video and first.metadata == second.metadata
    assert first.video is not None and first.video.room == room["roomName"]
    assert bool(first.video.room_admin) is moderator


def test_tokens_within_the_bound_read_the_room_once(servers: Servers) -> None:
    server = servers.start("local")
    room = server.create_room("fresh")

    def room_reads() -> float:
        text = server.client.get(f"{server.base_url}/metrics").text
        return metric(text, "ovmeet_storage_call_duration_seconds_count", call="read_json")

    first = time.monotonic()
    assert status_of_token(server, room) == 200
    before = room_reads()
    for n in range(10):
        assert status_of_token(server, room, f"p{n}") == 200
    # At most one read of the room and one of the preferences per CACHE_SECONDS (ten without
    # the cache, in the ~50 ms these take).
    bound = 2 * math.ceil((time.monotonic() - first) / CACHE_SECONDS)
    assert room_reads() - before <= bound


@pytest.mark.anyio
async def test_concurrent_loads_of_one_key_share_one_load() -> None:
    loads: SharedLoads[str, object] = SharedLoads()
    started, release = 0, asyncio.Event()

    async def load() -> object:
        nonlocal started
        started += 1
        await release.wait()
        return object()

    waiters = [asyncio.create_task(loads.load("room", load)) for _ in range(5)]
    other = asyncio.create_task(loads.load("other room", load))
    await asyncio.sleep(0.01)
    waiters[0].cancel()  # one client leaving does not cancel the others' load
    release.set()
    shared = [await w for w in waiters[1:]]
    assert all(value is shared[0] for value in shared)
    assert await other is not shared[0]
    assert started == 2
    assert await loads.load("room", load) is not shared[0]  # a finished load is not reused
    assert started == 3


@pytest.mark.anyio
async def test_a_failed_load_fails_every_waiter_and_is_not_kept() -> None:
    loads: SharedLoads[str, int] = SharedLoads()
    calls = 0

    async def load() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RoomNotFound("gone")
        return calls

    results = await asyncio.gather(
        *(loads.load("k", load) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, RoomNotFound) for r in results) and calls == 1
    assert await loads.load("k", load) == 2


class HeldReads(LocalStorage):
    """Local storage whose JSON reads, once read, wait to be released before they answer."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.read = asyncio.Event()
        self.release = asyncio.Event()

    async def read_json(self, key: str) -> Any:
        value = await super().read_json(key)
        self.read.set()
        await self.release.wait()
        return value


@pytest.mark.anyio
async def test_a_preferences_read_overtaken_by_a_change_is_not_served_after_it(
    tmp_path: Path,
) -> None:
    config = Config.from_env({**base_env("http://127.0.0.1:9"), "MEET_DATA_DIR": str(tmp_path)})
    held = HeldReads(tmp_path)
    worker = GlobalPreferences(held, config)
    other_worker = GlobalPreferences(LocalStorage(tmp_path), config)  # same host, same storage
    await other_worker.ensure_stored()
    reading = asyncio.create_task(worker.current())
    await held.read.wait()  # the old document is read; its answer is held back
    change = {"enabled": True, "url": "http://127.0.0.1:9/hook"}
    await other_worker.update("webhooks", change)
    held.release.set()
    assert (await reading).section("webhooks")["enabled"] is False  # what it read, before
    assert (await worker.current()).section("webhooks") == change


def test_concurrent_tokens_of_an_uncached_room_read_it_once(servers: Servers) -> None:
    server = servers.start("s3")
    room = server.create_room("fresh")  # clears this host's room caches
    text = server.client.get(f"{server.base_url}/metrics").text
    before = metric(text, "ovmeet_storage_call_duration_seconds_count", call="read_json")

    async def tokens() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            answers = await asyncio.gather(
                *(
                    client.post(f"{server.api}/participants/token", json=token_body(room, f"p{n}"))
                    for n in range(24)
                )
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(tokens()) == [200] * 24
    text = server.client.get(f"{server.base_url}/metrics").text
    reads = metric(text, "ovmeet_storage_call_duration_seconds_count", call="read_json") - before
    # The room once and the preferences at most once (each request read both without sharing).
    assert reads <= 2


def test_roles_of_secrets_come_from_the_room_cache(server: Ovmeet) -> None:
    room = server.create_room("fresh")
    role_url = f"{server.api}/rooms/{room['roomName']}/participant-role"

    def role() -> httpx.Response:
        return server.client.get(role_url, params={"secret": secret(room, "moderator")})

    def room_reads() -> float:
        text = server.client.get(f"{server.base_url}/metrics").text
        return metric(text, "ovmeet_storage_call_duration_seconds_count", call="read_json")

    first = time.monotonic()
    assert role().json() == "moderator"
    before = room_reads()
    for _ in range(10):
        assert role().json() == "moderator"
    assert room_reads() - before <= math.ceil((time.monotonic() - first) / CACHE_SECONDS)
    assert server.cli("rooms", "delete", room["roomName"]).returncode == 0
    assert role().status_code == 404  # a deletion through this host is seen at once


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class NotListening:
    """A relay whose subscription is down: changes made elsewhere may go untold."""

    listening = False

    async def tell(self, topic: str) -> None:
        return None


def marker_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> ChangeMarker:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return ChangeMarker(name, "rooms")


@pytest.mark.anyio
async def test_a_cached_view_reads_through_and_keeps_a_value_for_its_age(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, reads = Clock(), []
    view: CachedView[str, int] = CachedView(
        marker_in(tmp_path, monkeypatch, "age"), 10, max_age=1.0, clock=clock
    )

    async def read() -> int:
        reads.append(clock.now)
        return len(reads)

    assert [await view.get("a", read) for _ in range(3)] == [1, 1, 1]
    clock.now = 0.99
    assert await view.get("a", read) == 1
    clock.now = 1.0
    assert await view.get("a", read) == 2
    assert reads == [0.0, 1.0]


@pytest.mark.anyio
async def test_a_cached_view_forgets_everything_when_its_marker_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = marker_in(tmp_path, monkeypatch, "touched")
    view: CachedView[str, str] = CachedView(marker, 10, clock=Clock())
    stored = {"a": "old", "b": "old"}

    async def read_a() -> str:
        return stored["a"]

    assert await view.get("a", read_a) == "old"
    stored["a"] = "new"
    assert await view.get("a", read_a) == "old"  # the clock stands still: within its age
    marker.touch_here()
    assert await view.get("a", read_a) == "new"


@pytest.mark.anyio
async def test_a_cached_view_holds_at_most_its_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view: CachedView[str, str] = CachedView(marker_in(tmp_path, monkeypatch, "size"), 2)
    reads: list[str] = []

    def reader(key: str) -> Callable[[], Awaitable[str]]:
        async def read() -> str:
            reads.append(key)
            return key

        return read

    for key in ("a", "b", "c", "a"):
        await view.get(key, reader(key))
    assert reads == ["a", "b", "c", "a"]  # "a" was the least recently used when "c" came


@pytest.mark.anyio
async def test_a_strict_view_trusts_nothing_while_changes_may_go_untold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = marker_in(tmp_path, monkeypatch, "strict")
    strict: CachedView[str, int] = CachedView(marker, 10, strict=True, clock=Clock())
    lenient: CachedView[str, int] = CachedView(marker, 10, clock=Clock())
    counts = {"strict": 0, "lenient": 0}

    def reader(name: str) -> Callable[[], Awaitable[int]]:
        async def read() -> int:
            counts[name] += 1
            return counts[name]

        return read

    relay = NotListening()
    relay_changes("strict", relay)
    try:
        for _ in range(3):
            await strict.get("a", reader("strict"))
            await lenient.get("a", reader("lenient"))
    finally:
        stop_relaying("strict", relay)
    assert counts == {"strict": 3, "lenient": 1}
    await strict.get("a", reader("strict"))
    await strict.get("a", reader("strict"))
    assert counts["strict"] == 4  # listening again: remembered
