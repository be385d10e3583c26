"""The Node.js backend ovmeet replaces (OpenVidu Meet at fb0bf4b1), run beside ovmeet.

`scripts/build-node-reference.sh` builds it into `.cache/node-reference/`. It needs S3 and Redis:
it runs on the benchmark's SeaweedFS and on a redis-server of its own, on loopback ports.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import REPO, running
from tests.support.processes import free_port, stop_process

COMMIT = "fb0bf4b1"
SERVER = REPO / ".cache" / "node-reference" / COMMIT / "backend" / "dist" / "src" / "server.js"
API_KEY = "bench-node-api-key"
_REDIS_PASSWORD = "bench-redis-password"


@dataclass(frozen=True)
class NodeReference:
    url: str
    pid: int


def missing() -> str | None:
    """Why the reference cannot run here, or None."""
    if not SERVER.exists():
        return f"no {SERVER.relative_to(REPO)}: run scripts/build-node-reference.sh GIT_DIR"
    for program in ("node", "redis-server"):
        if shutil.which(program) is None:
            return f"{program} is not installed (scripts/system-deps.sh installs redis-server)"
    return None


@contextmanager
def _redis(work: Path) -> Iterator[int]:
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--requirepass", _REDIS_PASSWORD, "--dir", str(work)]
    with (work / "redis.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while "Ready to accept connections" not in (work / "redis.log").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: see {work / 'redis.log'}")
            time.sleep(0.05)
        yield port
    finally:
        stop_process(process)


@contextmanager
def node_reference(
    work: Path, livekit_url: str, livekit_key: str, livekit_secret: str, s3: dict[str, str]
) -> Iterator[NodeReference]:
    """The reference backend on a free port, on LiveKit at `livekit_url` and ovmeet-style
    MEET_S3_* settings `s3`; its logs at warn level and above (ovmeet's run without access log)."""
    work.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        redis_port = stack.enter_context(_redis(work))
        port = free_port()
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("MEET_", "LIVEKIT_"))}
        env = {
            **keep,
            "NODE_ENV": "production",
            "SERVER_PORT": str(port),
            "LIVEKIT_URL": livekit_url.replace("http://", "ws://"),
            "LIVEKIT_URL_PRIVATE": livekit_url,
            "LIVEKIT_API_KEY": livekit_key,
            "LIVEKIT_API_SECRET": livekit_secret,
            "MEET_API_KEY": API_KEY,
            "MEET_LOG_LEVEL": "warn",
            "MEET_S3_SERVICE_ENDPOINT": s3["MEET_S3_SERVICE_ENDPOINT"],
            "MEET_S3_ACCESS_KEY": s3["MEET_S3_ACCESS_KEY"],
            "MEET_S3_SECRET_KEY": s3["MEET_S3_SECRET_KEY"],
            "MEET_S3_BUCKET": s3["MEET_S3_BUCKET"],
            "MEET_S3_SUBBUCKET": s3["MEET_S3_SUBBUCKET"],
            "MEET_REDIS_HOST": "127.0.0.1",
            "MEET_REDIS_PORT": str(redis_port),
            "MEET_REDIS_PASSWORD": _REDIS_PASSWORD,
        }
        url = f"http://127.0.0.1:{port}"
        process = stack.enter_context(
            running(
                ["node", str(SERVER)],
                f"{url}/meet/health",
                env,
                work / "node.log",
                SERVER.parents[2],
            )
        )
        yield NodeReference(url, process.pid)


def create_room(reference: NodeReference, prefix: str) -> dict[str, str]:
    """A room of the reference, made through its public API: roomName and the two room URLs."""
    expires = int((time.time() + 86_400) * 1000)
    answer = httpx.post(
        f"{reference.url}/meet/api/v1/rooms",
        headers={"X-API-KEY": API_KEY},
        json={"roomNamePrefix": prefix, "expirationDate": expires},
        timeout=30,
    )
    answer.raise_for_status()
    room: dict[str, str] = answer.json()
    return room
