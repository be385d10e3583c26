"""The two stores of recording locks (`ovmeet.recordings.locks`), on a real Redis and on real local
storage: who may take, change, take over and free a room's lock; exactly one of many concurrent
take-overs of a stale lock wins in Redis; a Redis that does not answer refuses (503)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from ovmeet.recordings.locks import RecordingLock, RecordingLocks, RedisLocks, StorageLocks
from ovmeet.shared import redis_state
from ovmeet.storage import open_storage
from ovmeet.support.config import Config
from tests.support.processes import RedisServer, base_env, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


def _config(tmp_path: Path, **env: str) -> Config:
    data = {"MEET_STORAGE": "local", "MEET_DATA_DIR": str(tmp_path / "data")}
    return Config.from_env({**base_env("http://127.0.0.1:1"), **data, **env})


@pytest.fixture(params=["storage", "redis"])
async def locks(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> AsyncIterator[RecordingLocks]:
    if request.param == "storage":
        storage = open_storage(_config(tmp_path))
        yield StorageLocks(storage)
        await storage.aclose()
        return
    config = _config(tmp_path, **redis_server.env())
    redis = redis_state.connect(config)
    yield RedisLocks(config, redis)
    await redis.aclose()


def _lock(uid: str, room: str = "room-a", since: int = 1_000) -> RecordingLock:
    return RecordingLock(room, uid, since)


async def test_one_holder_at_a_time_and_only_the_holder_changes_it(locks: RecordingLocks) -> None:
    mine, theirs = _lock("mine"), _lock("theirs")
    assert await locks.create(mine)
    assert not await locks.create(theirs)
    assert await locks.read("room-a") == mine
    assert await locks.read("room-b") is None

    assert not await locks.update(theirs.with_egress("EG_theirs"))  # not the holder
    assert await locks.update(mine.with_egress("EG_mine"))
    assert await locks.read("room-a") == mine.with_egress("EG_mine")

    assert not await locks.remove(theirs)
    assert await locks.rooms() == ["room-a"]
    assert await locks.remove(mine)
    assert await locks.read("room-a") is None
    assert await locks.rooms() == []
    assert not await locks.update(mine)  # freed: nothing to change


async def test_a_stale_lock_is_taken_over_only_as_it_was_read(locks: RecordingLocks) -> None:
    stale = _lock("stale", since=0)
    assert await locks.create(stale)
    first, second = _lock("first"), _lock("second")
    assert await locks.take_over(stale, first)
    assert not await locks.take_over(stale, second)  # read before the first took over
    assert await locks.read("room-a") == first
    assert await locks.remove(first)
    assert await locks.take_over(stale, second)  # freed meanwhile: anyone may take it
    assert await locks.read("room-a") == second


async def test_a_document_that_is_no_lock_goes_stale_and_can_be_taken_over(
    locks: RecordingLocks, tmp_path: Path, redis_server: RedisServer
) -> None:
    if isinstance(locks, StorageLocks):
        storage = open_storage(_config(tmp_path))
        await storage.write_json("recordings/.locks/room-a.json", ["not", "a", "lock"])
        await storage.aclose()
    else:
        config = _config(tmp_path, **redis_server.env())
        redis = redis_state.connect(config)
        await redis.hset(redis_state.key(config, "recording locks"), "room-a", "{not json")  # type: ignore[misc]
        await redis.aclose()
    broken = await locks.read("room-a")
    assert broken == RecordingLock("room-a", "", 0)
    assert await locks.take_over(broken, _lock("mine"))
    assert await locks.read("room-a") == _lock("mine")


async def test_many_concurrent_take_overs_of_one_stale_lock_give_it_to_exactly_one(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = _config(tmp_path, **redis_server.env())
    clients = [redis_state.connect(config) for _ in range(8)]  # as eight instances
    try:
        stores = [RedisLocks(config, client) for client in clients]
        for run in range(20):
            room = f"room-{run}"
            stale = _lock("stale", room, since=0)
            assert await stores[0].create(stale)
            takers = [_lock(f"taker-{n}", room) for n in range(40)]
            won = await asyncio.gather(
                *(stores[n % 8].take_over(stale, taker) for n, taker in enumerate(takers))
            )
            assert won.count(True) == 1, (run, won)
            assert await stores[0].read(room) == takers[won.index(True)]
    finally:
        for client in clients:
            await client.aclose()


async def test_a_redis_that_does_not_answer_refuses_with_a_503(tmp_path: Path) -> None:
    config = _config(tmp_path, MEET_REDIS_HOST="127.0.0.1", MEET_REDIS_PORT=str(free_port()))
    redis = redis_state.connect(config)
    locks = RedisLocks(config, redis)
    try:
        for attempt in (locks.create(_lock("mine")), locks.read("room-a"), locks.rooms()):
            with pytest.raises(redis_state.RedisUnavailable) as refused:
                await attempt
            assert refused.value.status == 503
            assert refused.value.message == "Redis is not available"
            assert f"127.0.0.1:{config.redis_port}" in refused.value.detail
    finally:
        await redis.aclose()
