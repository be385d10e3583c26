"""The floor of this stack for a range request: a bare uvicorn app that reads the bytes asked
for in a thread (from a file, or from S3 with minio, as ovmeet does) and sends them in one
message, with nothing else: no routing, access check, validation, metrics or headers.

bench/stream.py measures it beside ovmeet, as the lower bound of a seek through this stack.
Run: FLOOR_FILE=path | FLOOR_S3_ENDPOINT, FLOOR_S3_ACCESS_KEY, FLOOR_S3_SECRET_KEY,
FLOOR_S3_BUCKET, FLOOR_S3_OBJECT; python -m uvicorn bench.floor:app --port P
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import anyio
import urllib3
from minio import Minio
from starlette.types import Receive, Scope, Send

_RANGE = re.compile(rb"bytes=(\d+)-(\d+)")
_LIMITER = anyio.CapacityLimiter(32)


def _file_reader(path: str) -> Callable[[int, int], bytes]:
    def read(offset: int, length: int) -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    return read


def _s3_reader(env: os._Environ[str]) -> Callable[[int, int], bytes]:
    client = Minio(
        urlsplit(env["FLOOR_S3_ENDPOINT"]).netloc,
        env["FLOOR_S3_ACCESS_KEY"],
        env["FLOOR_S3_SECRET_KEY"],
        secure=False,
        region="us-east-1",
        http_client=urllib3.PoolManager(maxsize=64),
    )
    bucket, name = env["FLOOR_S3_BUCKET"], env["FLOOR_S3_OBJECT"]

    def read(offset: int, length: int) -> bytes:
        response = client.get_object(bucket, name, offset=offset, length=length)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()

    return read


_read = (
    _file_reader(os.environ["FLOOR_FILE"]) if "FLOOR_FILE" in os.environ else _s3_reader(os.environ)
)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    asked = dict(scope["headers"]).get(b"range", b"")
    match = _RANGE.fullmatch(asked)
    if match is None:  # the health check
        status, headers, body = 200, [], b"UP"
    else:
        start, end = int(match[1]), int(match[2])
        body = await anyio.to_thread.run_sync(_read, start, end - start + 1, limiter=_LIMITER)
        status, headers = 206, [(b"content-type", b"video/mp4")]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
