"""S3 storage (MinIO, AWS S3, SeaweedFS, ...) through the minio SDK, off the event loop.

Two calls reach into the SDK's private methods, as no public one sends If-None-Match or takes
a page size: `_put_object` and `_list_objects`, listed in `ovmeet.support.reaches` (checked at
start; minio is pinned)."""

from __future__ import annotations

import io
import json
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from ovmeet.storage.base import (
    ByteStream,
    ObjectChanged,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
)
from ovmeet.storage.keys import check_prefix, object_name, subbucket_prefix
from ovmeet.support.config import Config
from ovmeet.support.metrics import STORAGE_CALLS

_T = TypeVar("_T")
_MISSING = {"NoSuchKey", "NoSuchObject", "NoSuchBucket"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CONNECT_TIMEOUT, READ_TIMEOUT = 3.0, 60.0
_REFUSED = {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken"}


class S3Storage:
    """Keys live under `{subbucket}/` in one bucket; every SDK call runs in a bounded pool."""

    def __init__(self, config: Config) -> None:
        self.bucket = config.s3_bucket
        self.subbucket = config.s3_subbucket
        self.prefix = subbucket_prefix(config.s3_subbucket)
        self.name = f"S3 storage ({config.s3_endpoint}, bucket {self.bucket})"
        self._limiter = anyio.CapacityLimiter(config.storage_threads)
        self._http = urllib3.PoolManager(
            # Every storage thread a connection, and as many more for the open streams that
            # hold theirs between reads: fewer made urllib3 discard (and log) connections.
            maxsize=2 * config.storage_threads,
            timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
            # A refused or unanswered connection is tried once more: a storage that is down
            # is said within seconds, at start or per request.
            retries=urllib3.Retry(
                total=2, connect=1, backoff_factor=0.2, status_forcelist=(502, 503, 504)
            ),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self.client = _client(config, config.s3_endpoint, self._http)
        # Signs URLs only (no request goes through it): the host browsers reach is signed.
        self.public_client = _client(config, config.s3_public_endpoint or config.s3_endpoint)
        self._path_style = config.s3_path_style

    def object_name(self, key: str) -> str:
        """The object name of `key` in the bucket."""
        return object_name(self.subbucket, key)

    async def _run(self, call: str, fn: Callable[[], _T]) -> _T:
        with STORAGE_CALLS.timed(call, (ObjectNotFound,)):
            return await self._translated(fn)

    async def _translated(self, fn: Callable[[], _T]) -> _T:
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._limiter)
        except S3Error as error:
            if error.code in _MISSING:
                raise ObjectNotFound(error.code) from None
            if error.code in _REFUSED:
                raise StorageError(
                    f"{self.name} refused the request ({error.code}): "
                    "check MEET_S3_ACCESS_KEY and MEET_S3_SECRET_KEY"
                ) from None
            if error.code == "PreconditionFailed":
                raise ObjectChanged(f"{self.name}: the object changed while it was read") from None
            raise StorageError(f"{self.name} failed: {error.code} {error.message}") from None
        except (ServerError, InvalidResponseError) as error:
            raise StorageError(f"{self.name} answered with an error: {error}") from None
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise StorageError(f"{self.name} is unreachable: {self._why(error)}") from None

    def _why(self, error: BaseException) -> str:
        """The root cause of a failed connection in a few words, with a hint where one helps."""
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, urllib3.exceptions.NameResolutionError):
            host = getattr(reason.conn, "host", "?")
            hint = ""
            if not self._path_style:
                hint = (
                    f" (virtual-host style puts the bucket in the host name: {host}; set "
                    "MEET_S3_WITH_PATH_STYLE_ACCESS=true unless the server serves buckets so)"
                )
            return f"the host name {host} does not resolve{hint}"
        if isinstance(reason, urllib3.exceptions.NewConnectionError):  # a ConnectTimeoutError
            cause = reason.__cause__ or reason.__context__
            return str(getattr(cause, "strerror", None) or "the connection failed").lower()
        if isinstance(reason, urllib3.exceptions.ConnectTimeoutError):
            return f"no connection within {CONNECT_TIMEOUT:g} s"
        if isinstance(reason, urllib3.exceptions.ReadTimeoutError):
            return f"no answer within {READ_TIMEOUT:g} s"
        return str(reason)

    def signed_url(
        self, key: str, seconds: int, *, public: bool, response_headers: dict[str, str]
    ) -> str | None:
        """A presigned GET (signature version 4, computed here: no request is made)."""
        client = self.public_client if public else self.client
        return client.presigned_get_object(
            self.bucket,
            self.object_name(key),
            expires=timedelta(seconds=seconds),
            response_headers=dict(response_headers),
        )

    async def check(self) -> None:
        def ensure_bucket() -> None:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)

        await self._run("check", ensure_bucket)

    async def supports_exclusive_create(self) -> bool:
        """Whether the server honours If-None-Match (a second create of a probe must fail)."""
        probe = f".probe-{secrets.token_hex(6)}.json"
        try:
            return await self.create_json(probe, {}) and not await self.create_json(probe, {})
        finally:
            await self.delete(probe)

    async def read_json(self, key: str) -> Any:
        name = self.object_name(key)

        def get() -> bytes:
            response = self.client.get_object(self.bucket, name)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        data = await self._run("read_json", get)
        try:
            return json.loads(data)
        except ValueError:
            raise StorageError(f"{self.name}: {key} is not valid JSON") from None

    async def write_json(self, key: str, value: Any) -> None:
        name = self.object_name(key)
        data = json.dumps(value, indent=2).encode()
        await self._run(
            "write_json",
            lambda: self.client.put_object(
                self.bucket, name, io.BytesIO(data), len(data), content_type="application/json"
            ),
        )

    async def create_json(self, key: str, value: Any) -> bool:
        name = self.object_name(key)
        data = json.dumps(value, indent=2).encode()
        headers: dict[str, str | list[str] | tuple[str]] = {
            "If-None-Match": "*",
            "Content-Type": "application/json",
        }

        def create() -> bool:
            # S3 conditional writes (AWS since 2024, MinIO, SeaweedFS): the server refuses a
            # second creator with 412 (supports_exclusive_create tells whether it does).
            try:
                self.client._put_object(self.bucket, name, data, headers=headers)
            except S3Error as error:
                if error.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
            return True

        return await self._run("create_json", create)

    async def stat(self, key: str) -> ObjectInfo:
        name = self.object_name(key)
        st = await self._run("stat", lambda: self.client.stat_object(self.bucket, name))
        return ObjectInfo(
            size=int(st.size or 0),
            etag=f'"{st.etag}"',
            last_modified=(st.last_modified or _EPOCH).astimezone(UTC),
        )

    async def open_range(
        self, key: str, offset: int, length: int, *, etag: str | None = None
    ) -> ByteStream:
        name = self.object_name(key)
        headers: dict[str, str | list[str] | tuple[str]] | None = (
            {"If-Match": etag} if etag else None
        )

        def open_and_read(first_size: int) -> tuple[Any, bytes]:
            response = self.client.get_object(
                self.bucket, name, offset=offset, length=length, request_headers=headers
            )
            try:
                return response, bytes(response.read(min(length, first_size)))
            except BaseException:
                response.close()
                response.release_conn()
                raise

        with ByteStream.opening() as first_size:
            response, first = await self._run("open_range", lambda: open_and_read(first_size))

        async def read(size: int) -> bytes:
            return bytes(await self._run("read", lambda: response.read(size)))

        async def close() -> None:
            response.close()
            response.release_conn()

        return ByteStream(read, close, length, self.name, first)

    async def write_file(self, key: str, source: Path) -> ObjectInfo:
        name = self.object_name(key)
        await self._run(
            "write_file",
            lambda: self.client.fput_object(
                self.bucket, name, str(source), content_type=_type(key)
            ),
        )
        return await self.stat(key)

    async def list_page(self, prefix: str, start_after: str, limit: int) -> list[str]:
        start = self.prefix + check_prefix(prefix)
        after = self.prefix + start_after if start_after else None

        def page() -> list[str]:
            # One ListObjectsV2 request of `limit` keys (the public list_objects asks for 1000
            # and cannot be told fewer; the private generator takes max_keys).
            found: list[str] = []
            for item in self.client._list_objects(
                self.bucket, prefix=start, start_after=after, max_keys=limit
            ):
                if len(found) >= limit:
                    break
                if item.object_name:
                    found.append(item.object_name[len(self.prefix) :])
            return found

        return await self._run("list_page", page)

    async def list(self, prefix: str) -> list[str]:
        start = self.prefix + check_prefix(prefix)
        objects = await self._run(
            "list",
            lambda: list(self.client.list_objects(self.bucket, prefix=start, recursive=True)),
        )
        return sorted(o.object_name[len(self.prefix) :] for o in objects if o.object_name)

    async def delete(self, key: str) -> None:
        name = self.object_name(key)
        await self._run("delete", lambda: self.client.remove_object(self.bucket, name))

    async def aclose(self) -> None:
        self._http.clear()


def _type(key: str) -> str:
    return "video/mp4" if key.endswith(".mp4") else "application/octet-stream"


def _client(
    config: Config, endpoint: str | None, http_client: urllib3.PoolManager | None = None
) -> Minio:
    """A minio client of `endpoint` with the configured key, region and addressing style."""
    parts = urlsplit(endpoint or "")
    client = Minio(
        parts.netloc,
        access_key=config.s3_access_key,
        secret_key=config.s3_secret_key,
        secure=parts.scheme == "https",
        region=config.s3_region,
        http_client=http_client,
    )
    if config.s3_path_style:
        client.disable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
    else:
        client.enable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
    return client
