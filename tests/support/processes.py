"""Real servers for the tests: ovmeet itself and SeaweedFS, as processes on loopback ports."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx

from ovmeet.recordings import store as recordings
from ovmeet.rooms import store as rooms
from ovmeet.storage import open_storage
from ovmeet.support.config import Config

REPO = Path(__file__).resolve().parents[2]
ADMIN = ("ovadmin", "admin-pass-Xk39sQ")
USER = ("ovuser", "user-pass-Pq72mN")
LIVEKIT_KEY = "test-api-key"
LIVEKIT_SECRET = "test-livekit-secret-0123456789abcdef"  # >= 32 bytes, as PyJWT wants
S3_ACCESS_KEY = "ovmeet-test-access"
S3_SECRET_KEY = "ovmeet-test-secret-0123456789"
S3_BUCKET = "ovmeet-test"
# A key that can only write recordings under one sub-bucket, as the README tells to give egress.
EGRESS_SUBBUCKET = "egress-only"
S3_EGRESS_ACCESS_KEY = "ovmeet-test-egress"
S3_EGRESS_SECRET_KEY = "ovmeet-test-egress-secret-9876543210"
# weed listens on each port + 10000 for gRPC: ports for it stay below this.
HIGHEST_WEED_PORT = 55535

_T = TypeVar("_T")
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def free_port(highest: int = 65535) -> int:
    """A port nothing listens on now (for servers, like weed, that cannot bind port 0)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port <= highest:
            return port


def wait_until(
    check: Callable[[], _T | None], timeout: float, what: str, process: subprocess.Popen[bytes]
) -> _T:
    """The first truthy result of `check`; on failure, say why the last attempt failed."""
    deadline = time.monotonic() + timeout
    last = "no attempt finished"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} ({last})")
        try:
            result = check()
        except Exception as error:  # not up yet: remember why
            last = f"{type(error).__name__}: {error}"
        else:
            if result:
                return result
            last = "not ready"
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not become ready within {timeout} s ({last})")


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to all at once, then wait for each (SIGKILL after 10 s)."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_process(process: subprocess.Popen[bytes]) -> None:
    stop_processes([process])


class SeaweedFS:
    """`weed mini` with every port pinned to a free loopback port and one S3 identity."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.s3_port = free_port(HIGHEST_WEED_PORT)
        self.endpoint = f"http://127.0.0.1:{self.s3_port}"
        self.log_path = workdir / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SeaweedFS:
        self.workdir.mkdir(parents=True, exist_ok=True)
        identities = {
            "identities": [
                {
                    "name": "ovmeet",
                    "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "egress",
                    "credentials": [
                        {"accessKey": S3_EGRESS_ACCESS_KEY, "secretKey": S3_EGRESS_SECRET_KEY}
                    ],
                    "actions": [f"Write:{S3_BUCKET}/{EGRESS_SUBBUCKET}/recordings/*"],
                },
            ]
        }
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(identities))
        ports = {name: free_port(HIGHEST_WEED_PORT) for name in _WEED_PORTS}
        command = [
            str(Path(sys.executable).with_name("weed")),
            "mini",
            f"-dir={self.workdir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            *(f"-{name}={port}" for name, port in ports.items()),
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        try:
            wait_until(self._signed_call_works, 60, "SeaweedFS", self.process)
        except RuntimeError as error:
            self.stop()
            tail = self.log_path.read_text()[-3000:]
            raise RuntimeError(f"{error}; its log ends:\n{tail}") from None
        return self

    def storage_env(self, subbucket: str) -> dict[str, str]:
        """The MEET_* variables of an ovmeet that stores under `subbucket` of the test bucket."""
        return {
            "MEET_STORAGE": "s3",
            "MEET_S3_SERVICE_ENDPOINT": self.endpoint,
            "MEET_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "MEET_S3_SECRET_KEY": S3_SECRET_KEY,
            "MEET_S3_BUCKET": S3_BUCKET,
            "MEET_S3_SUBBUCKET": subbucket,
        }

    def _signed_call_works(self) -> bool:
        from minio import Minio

        client = Minio(
            f"127.0.0.1:{self.s3_port}",
            access_key=S3_ACCESS_KEY,
            secret_key=S3_SECRET_KEY,
            secure=False,
            region="us-east-1",
        )
        if not client.bucket_exists(S3_BUCKET):
            client.make_bucket(S3_BUCKET)
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # its data is the test's to throw away; SIGTERM takes 2 s
            self.process.wait()


_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "webdav.port",
)


class _NoCookieJar(http.cookiejar.CookieJar):
    """Keeps no cookie from responses: every test sends the cookies it means to send."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


def without_cookie_jar(client: httpx.Client) -> httpx.Client:
    client.cookies = _NoCookieJar()
    return client


class RoomMaker:
    """Rooms and recordings made in a server's storage by the domain code (as the CLI would)."""

    env: dict[str, str]

    def config(self) -> Config:
        return Config.from_env(self.env)

    def create_room(self, prefix: str = "test", **options: Any) -> dict[str, Any]:
        config = self.config()
        room = _with_storage(
            config,
            lambda storage: rooms.create_room(
                storage, config, rooms.RoomOptions(prefix, **options)
            ),
        )
        return room.to_json()  # type: ignore[no-any-return]

    def import_recording(self, source: Path, room: str, **options: Any) -> dict[str, Any]:
        recording = _with_storage(
            self.config(),
            lambda storage: recordings.import_recording(storage, source, room_name=room, **options),
        )
        return recording.to_json()  # type: ignore[no-any-return]


class Ovmeet(RoomMaker):
    """`python -m ovmeet serve --port 0` as a process, with its own environment and log file."""

    def __init__(
        self, env: Mapping[str, str], log_path: Path, serve_args: tuple[str, ...] = ()
    ) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.serve_args = serve_args
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.client = without_cookie_jar(httpx.Client(timeout=60))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.base_url}/meet/internal-api/v1"

    def start(self) -> Ovmeet:
        with self.log_path.open("wb") as log:
            # Outside the repository, so that the installed package is what runs.
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ovmeet", "serve", "--port", "0", *self.serve_args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
            )
        self.port = wait_until(self._listening_port, 60, f"ovmeet ({self.log_path})", self.process)
        wait_until(self._healthy, 10, f"ovmeet on port {self.port}", self.process)
        return self

    def _listening_port(self) -> int | None:
        found = _LISTENING.search(self.log())
        return int(found.group(1)) if found else None

    def _healthy(self) -> bool:
        return self.client.get(f"{self.base_url}/meet/health").status_code == 200

    def stop(self) -> None:
        self.client.close()
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `ovmeet ARGS` with this server's configuration."""
        return run_cli(self.env, *args)


def _with_storage(config: Config, work: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        storage = open_storage(config)
        try:
            return await work(storage)
        finally:
            await storage.aclose()

    return asyncio.run(run())


def run_cli(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ovmeet", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def base_env(livekit_url: str) -> dict[str, str]:
    """A clean environment: no inherited MEET_* / LIVEKIT_* variables, test credentials."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("MEET_", "LIVEKIT_"))}
    return {
        **keep,
        "LIVEKIT_URL": livekit_url.replace("http://", "ws://"),
        "LIVEKIT_API_KEY": LIVEKIT_KEY,
        "LIVEKIT_API_SECRET": LIVEKIT_SECRET,
        "MEET_ADMIN_USER": ADMIN[0],
        "MEET_ADMIN_SECRET": ADMIN[1],
        "MEET_USER": USER[0],
        "MEET_SECRET": USER[1],
        "MEET_LIVEKIT_TIMEOUT": "2s",
        "MEET_TRUSTED_PROXIES": "127.0.0.1",  # the tests set X-Forwarded-For to mean clients
        "MEET_VALIDATE_RESPONSES": "true",  # every answer of every test checked against the spec
        # tests/test_reaches.py runs suites again on Connexion's own classes.
        "MEET_PREPARED_OPERATIONS": os.environ.get("OVMEET_TEST_PREPARED_OPERATIONS", "true"),
    }


class RedisServer:
    """Debian's `redis-server` on a free loopback port, with a password, nothing on disk."""

    PASSWORD = "redis-test-password-4f1c"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """The MEET_REDIS_* variables of an ovmeet that uses this server."""
        return {
            "MEET_REDIS_HOST": "127.0.0.1",
            "MEET_REDIS_PORT": str(self.port),
            "MEET_REDIS_PASSWORD": self.PASSWORD,
        }

    def start(self) -> RedisServer:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        assert Path(executable).exists(), "redis-server is required (make system-deps)"
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [executable, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--requirepass", self.PASSWORD, "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir)]
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._answers, 20, f"redis-server on port {self.port}", self.process)
        return self

    def _answers(self) -> bool:
        answer = b""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(f"AUTH {self.PASSWORD}\r\nPING\r\n".encode())
                while b"+PONG" not in answer and (part := sock.recv(64)):
                    answer += part
        except OSError:
            return False
        return b"+PONG" in answer

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None


class RedisSentinel:
    """Debian's `redis-server --sentinel` on a free loopback port, watching `master` as
    "openvidu" (the release's master name), with a password of its own."""

    PASSWORD = "sentinel-test-password-7a2e"

    def __init__(self, workdir: Path, master: RedisServer) -> None:
        self.workdir = workdir
        self.master = master
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """The MEET_REDIS_* variables of an ovmeet that finds its Redis through this sentinel."""
        return {
            "MEET_REDIS_SENTINEL_HOST_LIST": f"127.0.0.1:{self.port}",
            "MEET_REDIS_SENTINEL_PASSWORD": self.PASSWORD,
            "MEET_REDIS_PASSWORD": RedisServer.PASSWORD,
        }

    def start(self) -> RedisSentinel:
        executable = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "sentinel.conf"  # the sentinel rewrites it: a file of its own
        config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.workdir}\n"
            f"sentinel monitor openvidu 127.0.0.1 {self.master.port} 1\n"
            f"sentinel auth-pass openvidu {RedisServer.PASSWORD}\n"
            f"requirepass {self.PASSWORD}\n"
        )
        log = (self.workdir / "sentinel.log").open("ab")
        command = [executable, str(config), "--sentinel"]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._names_the_master, 20, f"sentinel on port {self.port}", self.process)
        return self

    def _names_the_master(self) -> bool:
        from redis import Redis

        client = Redis(host="127.0.0.1", port=self.port, password=self.PASSWORD)
        try:
            named = client.execute_command(  # type: ignore[no-untyped-call]
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "openvidu"
            )
            return named is not None
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
