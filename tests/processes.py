"""Real servers for the tests: ovmeet itself and SeaweedFS, as processes on loopback ports."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
ADMIN = ("ovadmin", "admin-pass-Xk39sQ")
USER = ("ovuser", "user-pass-Pq72mN")
LIVEKIT_KEY = "test-api-key"
LIVEKIT_SECRET = "test-livekit-secret-0123456789abcdef"  # >= 32 bytes, as PyJWT wants
S3_ACCESS_KEY = "ovmeet-test-access"
S3_SECRET_KEY = "ovmeet-test-secret-0123456789"
S3_BUCKET = "ovmeet-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        with contextlib.suppress(Exception):  # not up yet
            if check():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not become ready within {timeout} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class SeaweedFS:
    """`weed mini` with every port pinned to a free loopback port and one S3 identity."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.s3_port = free_port()
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
                }
            ]
        }
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(identities))
        ports = {name: free_port() for name in _WEED_PORTS}
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
        wait_until(self._signed_call_works, 90, "SeaweedFS", self.process)
        return self

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
        if self.process is not None:
            stop_process(self.process)


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


class Ovmeet:
    """`python -m ovmeet serve` as a process, with its own environment and log file."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.env = {**env, "SERVER_PORT": str(self.port)}
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api = f"{self.base_url}/meet/internal-api/v1"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Ovmeet:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ovmeet", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        wait_until(
            lambda: httpx.get(f"{self.base_url}/meet/health").status_code == 200,
            60,
            f"ovmeet (log: {self.log_path.read_text()[-2000:]})",
            self.process,
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `ovmeet ARGS` with this server's configuration."""
        return run_cli(self.env, *args)

    def create_room(self, prefix: str = "test", *args: str) -> dict[str, Any]:
        result = self.cli("rooms", "create", "--prefix", prefix, *args)
        assert result.returncode == 0, result.stderr
        room: dict[str, Any] = json.loads(result.stdout)
        return room


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
    }
