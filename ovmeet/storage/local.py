"""Local storage: one file per key under a data directory, written atomically."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import anyio

from ovmeet.storage.base import (
    ByteStream,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
)
from ovmeet.storage.keys import check_key, check_prefix
from ovmeet.support.metrics import STORAGE_CALLS

_T = TypeVar("_T")
_TEMP_SUFFIX = ".tmp"


class LocalStorage:
    """Keys map to files below `root`; a key can never name a path outside it."""

    def __init__(self, root: str | Path, *, threads: int = 32) -> None:
        self.root = Path(root).resolve()
        self.name = f"local storage ({self.root})"
        self._limiter = anyio.CapacityLimiter(threads)

    def path_of(self, key: str) -> Path:
        """The file that holds `key`."""
        return self.root / check_key(key)

    async def _run(self, call: str, fn: Callable[[], _T]) -> _T:
        with STORAGE_CALLS.timed(call, (ObjectNotFound,)):
            return await self._translated(fn)

    async def _translated(self, fn: Callable[[], _T]) -> _T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        except (FileNotFoundError, NotADirectoryError) as error:
            raise ObjectNotFound(str(error.filename)) from None
        except OSError as error:
            raise StorageError(f"{self.name}: {error.strerror or error}") from error

    async def check(self) -> None:
        def probe() -> None:
            make_folders(self.root)
            probe_file = self.root / f".probe-{secrets.token_hex(4)}{_TEMP_SUFFIX}"
            probe_file.write_bytes(b"")
            probe_file.unlink()

        try:
            await self._run("check", probe)
        except ObjectNotFound:
            raise StorageError(f"{self.name}: the data directory cannot be created") from None

    async def read_json(self, key: str) -> Any:
        path = self.path_of(key)
        data = await self._run("read_json", path.read_bytes)
        try:
            return json.loads(data)
        except ValueError:
            raise StorageError(f"{self.name}: {key} is not valid JSON") from None

    async def write_json(self, key: str, value: Any) -> None:
        data = json.dumps(value, indent=2).encode()
        path = self.path_of(key)
        await self._run("write_json", lambda: _atomic_write(path, lambda f: f.write(data)))

    async def create_json(self, key: str, value: Any) -> bool:
        data = json.dumps(value, indent=2).encode()
        path = self.path_of(key)

        def create() -> bool:
            # The whole file is written aside, then linked in: link() fails if the name exists,
            # so exactly one creator wins and nobody ever reads a partial file.
            make_folders(path.parent)
            temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
            try:
                with _new_private_file(temp) as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                os.link(temp, path)
            except FileExistsError:
                return False
            finally:
                temp.unlink(missing_ok=True)
            return True

        return await self._run("create_json", create)

    async def supports_exclusive_create(self) -> bool:
        return True  # create_json is link(), atomic on every local file system

    def signed_url(
        self, key: str, seconds: int, *, public: bool, response_headers: dict[str, str]
    ) -> str | None:
        return None  # a folder has no URLs: nginx reads it itself (accel)

    async def stat(self, key: str) -> ObjectInfo:
        path = self.path_of(key)
        return _info(await self._run("stat", path.stat))

    async def open_range(
        self, key: str, offset: int, length: int, *, etag: str | None = None
    ) -> ByteStream:
        path = self.path_of(key)

        def open_checked(first_size: int) -> tuple[int, bytes]:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if etag is not None and _info(os.fstat(fd)).etag != etag:
                    raise ObjectChanged(f"{self.name}: {key} changed while it was being read")
                return fd, os.pread(fd, min(length, first_size), offset)
            except BaseException:
                os.close(fd)
                raise

        with ByteStream.opening() as first_size:
            fd, first = await self._run("open_range", lambda: open_checked(first_size))
        position = offset + len(first)

        async def read(size: int) -> bytes:
            nonlocal position
            chunk = await self._run("read", lambda: os.pread(fd, size, position))
            position += len(chunk)
            return chunk

        async def close() -> None:
            os.close(fd)

        return ByteStream(read, close, length, self.name, first)

    async def write_file(self, key: str, source: Path) -> ObjectInfo:
        path = self.path_of(key)

        def copy() -> os.stat_result:
            with source.open("rb") as src:
                _atomic_write(path, lambda dst: shutil.copyfileobj(src, dst, 1024 * 1024))
            return path.stat()

        return _info(await self._run("write_file", copy))

    async def list_page(self, prefix: str, start_after: str, limit: int) -> list[str]:
        # A folder holds the keys of one level: walking it in name order finds the page
        # after reading the names of the folders on the way, not every key below.
        base = self.root / check_prefix(prefix).rpartition("/")[0]

        def walk() -> list[str]:
            found: list[str] = []

            def visit(folder: Path) -> None:
                try:
                    names = sorted(os.listdir(folder))
                except (FileNotFoundError, NotADirectoryError):
                    return
                for name in names:
                    if len(found) >= limit:
                        return
                    path = folder / name
                    key = path.relative_to(self.root).as_posix()
                    if path.is_dir():
                        if (key + "/") > start_after or start_after.startswith(key + "/"):
                            visit(path)
                    elif _is_listed(key, prefix) and key > start_after:
                        found.append(key)

            visit(base)
            return found

        return await self._run("list_page", walk)

    async def list(self, prefix: str) -> list[str]:
        base = self.root / check_prefix(prefix).rpartition("/")[0]

        def walk() -> list[str]:
            keys = []
            for directory, _, files in os.walk(base):
                for file in files:
                    key = Path(directory, file).relative_to(self.root).as_posix()
                    if _is_listed(key, prefix):
                        keys.append(key)
            return sorted(keys)

        return await self._run("list", walk)

    async def delete(self, key: str) -> None:
        path = self.path_of(key)

        def remove() -> None:
            path.unlink(missing_ok=True)
            for parent in path.parents:  # tidy up directories the key leaves empty
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                try:
                    parent.rmdir()
                except OSError:
                    break

        await self._run("delete", remove)

    async def aclose(self) -> None:
        return None


def _is_listed(key: str, prefix: str) -> bool:
    """A stored key under `prefix` (not a temporary file of a write in progress)."""
    return key.startswith(prefix) and not key.endswith(_TEMP_SUFFIX)


def _info(st: os.stat_result) -> ObjectInfo:
    return ObjectInfo(
        size=st.st_size,
        etag=f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
    )


FILE_MODE, FOLDER_MODE = 0o600, 0o700  # room secrets and recordings: for ovmeet's user only


def make_folders(folder: Path) -> None:
    """`folder` and its missing parents, each created FOLDER_MODE whatever the umask."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir()
        except FileExistsError:  # another writer made it meanwhile
            continue
        os.chmod(created, FOLDER_MODE)


def _new_private_file(path: Path) -> BinaryIO:
    """A file that did not exist, opened for writing, FILE_MODE whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, "wb")


def _atomic_write(path: Path, write: Callable[[Any], object]) -> None:
    """Write through a temporary file in the same directory, fsync, then rename over `path`."""
    make_folders(path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{_TEMP_SUFFIX}")
    try:
        with _new_private_file(temp) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
