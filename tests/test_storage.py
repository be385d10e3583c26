"""One storage suite, run against both backends: a local folder and S3 (SeaweedFS)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from ovmeet.storage import MAX_CHUNK, ObjectNotFound, Storage, StorageError
from ovmeet.storage.base import STREAM_BUFFER_BUDGET
from ovmeet.storage.local import LocalStorage
from ovmeet.storage.s3 import S3Storage
from ovmeet.support.config import Config
from tests.conftest import BACKENDS
from tests.support.media import make_mp4
from tests.support.processes import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    SeaweedFS,
    base_env,
    run_cli,
)

pytestmark = pytest.mark.anyio
_subbuckets = itertools.count()

UNSAFE_KEYS = ["", "../escape.json", "/etc/passwd", "a/../../b", "a//b", "a/./b", "a\\b", "a\x00b"]


def s3_config(weed: SeaweedFS, **overrides: str) -> Config:
    env = {
        "MEET_STORAGE": "s3",
        "MEET_S3_SERVICE_ENDPOINT": weed.endpoint,
        "MEET_S3_ACCESS_KEY": S3_ACCESS_KEY,
        "MEET_S3_SECRET_KEY": S3_SECRET_KEY,
        "MEET_S3_BUCKET": S3_BUCKET,
        "MEET_S3_SUBBUCKET": f"storage-suite-{next(_subbuckets)}",
        "MEET_STORAGE_THREADS": "4",
        **overrides,
    }
    return Config.from_env(env)


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        store: Storage = LocalStorage(tmp_path / "data", threads=4)
    else:
        store = S3Storage(s3_config(request.getfixturevalue("seaweed")))
    await store.check()
    yield store
    await store.aclose()


async def read_all(storage: Storage, key: str, offset: int, length: int) -> bytes:
    stream = await storage.open_range(key, offset, length)
    try:
        chunks = [chunk async for chunk in stream]
    finally:
        await stream.aclose()
    assert all(0 < len(chunk) <= MAX_CHUNK for chunk in chunks)
    return b"".join(chunks)


async def test_json_round_trip_and_missing_keys(storage: Storage) -> None:
    await storage.write_json("rooms/r-1/r-1.json", {"roomName": "r-1", "n": [1, 2]})
    assert await storage.read_json("rooms/r-1/r-1.json") == {"roomName": "r-1", "n": [1, 2]}
    with pytest.raises(ObjectNotFound):
        await storage.read_json("rooms/nope/nope.json")
    with pytest.raises(ObjectNotFound):
        await storage.stat("rooms/nope/nope.json")
    with pytest.raises(ObjectNotFound):
        await storage.open_range("rooms/nope/nope.json", 0, 1)


async def test_stat_gives_size_etag_and_time_and_etag_follows_content(storage: Storage) -> None:
    await storage.write_json("a/b.json", {"x": 1})
    first = await storage.stat("a/b.json")
    assert first.size == len(b'{\n  "x": 1\n}')
    assert first.etag.startswith('"') and first.etag.endswith('"') and len(first.etag) > 2
    assert first.last_modified.tzinfo is not None
    await storage.write_json("a/b.json", {"x": 22})
    assert (await storage.stat("a/b.json")).etag != first.etag


async def test_byte_ranges_are_exact_and_chunked(storage: Storage, tmp_path: Path) -> None:
    data = os.urandom(3 * MAX_CHUNK + 1234)
    source = tmp_path / "video.mp4"
    source.write_bytes(data)
    info = await storage.write_file("recordings/r/r--u.mp4", source)
    assert info.size == len(data)
    for offset, length in [
        (0, len(data)),
        (0, 1),
        (len(data) - 1, 1),
        (MAX_CHUNK - 1, MAX_CHUNK + 2),
        (777, 100_000),
    ]:
        assert (
            await read_all(storage, "recordings/r/r--u.mp4", offset, length)
            == data[offset : offset + length]
        )


async def test_streams_opened_at_once_share_the_buffer_budget(
    storage: Storage, tmp_path: Path
) -> None:
    source = tmp_path / "video.mp4"
    source.write_bytes(os.urandom(2 * MAX_CHUNK))
    await storage.write_file("recordings/r/r--u.mp4", source)
    streams = await asyncio.gather(
        *(storage.open_range("recordings/r/r--u.mp4", 0, 2 * MAX_CHUNK) for _ in range(32))
    )
    try:
        held = sum([len(await anext(stream)) for stream in streams])
    finally:
        for stream in streams:
            await stream.aclose()
    # The k-th stream opened reads at most 1/k of the budget first (32 x 4 MiB before).
    assert held <= STREAM_BUFFER_BUDGET * 5, held / STREAM_BUFFER_BUDGET


async def test_a_changed_object_fails_before_the_first_byte(
    storage: Storage, tmp_path: Path
) -> None:
    await storage.write_json("x/changing.json", {"v": 1})
    stale = await storage.stat("x/changing.json")
    await storage.write_json("x/changing.json", {"v": 2, "more": True})
    with pytest.raises(StorageError, match="changed"):
        await storage.open_range("x/changing.json", 0, 5, etag=stale.etag)


async def test_list_and_delete(storage: Storage) -> None:
    for key in ["rooms/b/b.json", "rooms/a/a.json", "recordings/.metadata/a/EG_1/u.json"]:
        await storage.write_json(key, {})
    assert await storage.list("rooms/") == ["rooms/a/a.json", "rooms/b/b.json"]
    assert await storage.list("recordings/.metadata/a/") == ["recordings/.metadata/a/EG_1/u.json"]
    assert await storage.list("nothing/") == []
    await storage.delete("rooms/a/a.json")
    await storage.delete("rooms/a/a.json")  # deleting twice is fine
    assert await storage.list("rooms/") == ["rooms/b/b.json"]


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_unsafe_keys_are_refused_before_any_io(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="key"):
        await storage.write_json(key, {"evil": True})
    with pytest.raises(StorageError, match="key"):
        await storage.read_json(key)
    with pytest.raises(StorageError, match="key"):
        await storage.delete(key)
    assert await storage.list("") == []


async def test_readers_never_see_a_half_written_document(storage: Storage) -> None:
    versions = [{"v": n, "pad": str(n) * 300_000} for n in range(2)]
    await storage.write_json("big/doc.json", versions[0])
    seen = set()

    async def write() -> None:
        for n in range(12):
            await storage.write_json("big/doc.json", versions[n % 2])

    async def read() -> None:
        for _ in range(40):
            document = await storage.read_json("big/doc.json")  # raises on torn JSON
            assert document in versions
            seen.add(document["v"])

    async with anyio.create_task_group() as group:
        group.start_soon(write)
        group.start_soon(read)
    assert seen


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


async def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    await storage.check()
    await storage.write_json("rooms/r/r.json", {"v": 1})
    with pytest.raises(TypeError):  # not serializable: the old content must survive
        await storage.write_json("rooms/r/r.json", {"v": object()})
    assert await storage.read_json("rooms/r/r.json") == {"v": 1}
    assert files_under(tmp_path) == ["data/rooms/r/r.json"]


async def test_local_stream_closes_its_file_when_abandoned(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "data")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(4 * MAX_CHUNK))
    await storage.write_file("big.bin", source)
    open_fds = len(os.listdir("/proc/self/fd"))
    stream = await storage.open_range("big.bin", 0, 4 * MAX_CHUNK)
    assert len(os.listdir("/proc/self/fd")) == open_fds + 1
    await stream.__anext__()
    await stream.aclose()
    assert len(os.listdir("/proc/self/fd")) == open_fds


async def test_s3_stream_releases_its_connection_when_abandoned(
    seaweed: SeaweedFS, tmp_path: Path
) -> None:
    storage = S3Storage(s3_config(seaweed))
    await storage.check()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(8 * MAX_CHUNK))
    await storage.write_file("big.bin", source)
    connections = storage._http.connection_from_url(seaweed.endpoint).pool
    assert connections is not None
    for _ in range(3 * connections.maxsize):  # more abandoned streams than the pool holds
        stream = await storage.open_range("big.bin", 0, 8 * MAX_CHUNK)
        await stream.__anext__()
        assert connections.qsize() < connections.maxsize  # one connection is out, reading
        await stream.aclose()
        assert connections.qsize() == connections.maxsize  # and it came back
    assert (await storage.stat("big.bin")).size == 8 * MAX_CHUNK
    await storage.aclose()


async def test_wrong_s3_secret_is_a_clear_error(seaweed: SeaweedFS) -> None:
    storage = S3Storage(s3_config(seaweed, MEET_S3_SECRET_KEY="not-the-secret"))
    with pytest.raises(StorageError, match="MEET_S3_SECRET_KEY"):
        await storage.check()


async def test_unreachable_s3_is_a_clear_error() -> None:
    config = Config.from_env(
        {"MEET_STORAGE": "s3", "MEET_S3_SERVICE_ENDPOINT": "http://127.0.0.1:9"}
    )
    storage = S3Storage(config)
    with pytest.raises(StorageError, match="unreachable"):
        await storage.check()


def test_serve_with_a_wrong_s3_secret_stops_with_one_clear_line(seaweed: SeaweedFS) -> None:
    env = {
        **base_env("http://127.0.0.1:1"),
        "MEET_STORAGE": "s3",
        "MEET_S3_SERVICE_ENDPOINT": seaweed.endpoint,
        "MEET_S3_ACCESS_KEY": S3_ACCESS_KEY,
        "MEET_S3_SECRET_KEY": "wrong-secret",
    }
    result = run_cli(env, "serve", "--port", "1")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ovmeet: S3 storage (")
    assert "refused the request" in last and "MEET_S3_SECRET_KEY" in last
    assert "Traceback" not in result.stderr


async def test_exclusive_create_has_exactly_one_winner(storage: Storage) -> None:
    for round_ in range(5):
        key = f"locks/room-{round_}.json"
        results = await asyncio.gather(*(storage.create_json(key, {"n": n}) for n in range(8)))
        assert results.count(True) == 1, results
        winner = results.index(True)
        assert await storage.read_json(key) == {"n": winner}
        assert await storage.create_json(key, {"n": -1}) is False
        await storage.delete(key)
        assert await storage.create_json(key, {"n": 99}) is True
    assert await storage.supports_exclusive_create() is True


async def test_pages_of_a_listing_read_only_what_they_need(storage: Storage) -> None:
    keys = [f"index/all/{n:04d}.json" for n in range(25)]
    for key in keys:
        await storage.write_json(key, {})
    await storage.write_json("index/other.json", {})
    assert await storage.list_page("index/all/", "", 10) == keys[:10]
    assert await storage.list_page("index/all/", keys[9], 10) == keys[10:20]
    assert await storage.list_page("index/all/", keys[19], 10) == keys[20:]
    assert await storage.list_page("index/all/", keys[24], 10) == []
    assert await storage.list_page("index/none/", "", 10) == []


def test_local_files_are_for_ovmeets_user_alone_whatever_the_umask(tmp_path: Path) -> None:
    """Room secrets and recordings: files 0600, folders 0700, even under umask 000."""
    data = tmp_path / "data"
    env = {**base_env("http://127.0.0.1:9"), "MEET_STORAGE": "local", "MEET_DATA_DIR": str(data)}
    clip = make_mp4(tmp_path / "clip.mp4", seconds=1)
    previous = os.umask(0)
    try:
        room = run_cli(env, "rooms", "create", "--prefix", "private")
        assert room.returncode == 0, room.stderr
        name = json.loads(room.stdout)["roomName"]
        imported = run_cli(env, "recordings", "import", str(clip), "--room", name)
        assert imported.returncode == 0, imported.stderr
    finally:
        os.umask(previous)
    modes = {
        path.relative_to(data).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in [data, *data.rglob("*")]
    }
    assert any(key.endswith(".mp4") for key in modes) and any("rooms/" in key for key in modes)
    wrong = {
        key: oct(mode)
        for key, mode in modes.items()
        if mode != (0o700 if (data / key).is_dir() else 0o600)
    }
    assert wrong == {}, wrong
