"""Fixtures: a LiveKit stand-in, SeaweedFS, and ovmeet servers, all real and on loopback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.livekit_standin import LiveKitStandIn, ThreadedServer
from tests.processes import (
    LIVEKIT_KEY,
    LIVEKIT_SECRET,
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    Ovmeet,
    SeaweedFS,
    base_env,
    free_port,
)

BACKENDS = ("local", "s3")
_unique = itertools.count()


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[tuple[LiveKitStandIn, str]]:
    standin = LiveKitStandIn(LIVEKIT_KEY, LIVEKIT_SECRET)
    server = ThreadedServer(standin.app(), free_port()).start()
    yield standin, server.url
    server.stop()


@pytest.fixture
def livekit(livekit_server: tuple[LiveKitStandIn, str]) -> LiveKitStandIn:
    """The stand-in, emptied of participants, calls and faults for this test."""
    standin, _ = livekit_server
    standin.reset()
    return standin


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    yield server
    server.stop()


def storage_env(backend: str, request: pytest.FixtureRequest, workdir: Path) -> dict[str, str]:
    """Environment for a fresh, isolated store on `backend`."""
    n = next(_unique)
    if backend == "local":
        return {"MEET_STORAGE": "local", "MEET_DATA_DIR": str(workdir / f"data-{n}")}
    weed: SeaweedFS = request.getfixturevalue("seaweed")
    return {
        "MEET_STORAGE": "s3",
        "MEET_S3_SERVICE_ENDPOINT": weed.endpoint,
        "MEET_S3_ACCESS_KEY": S3_ACCESS_KEY,
        "MEET_S3_SECRET_KEY": S3_SECRET_KEY,
        "MEET_S3_BUCKET": S3_BUCKET,
        "MEET_S3_SUBBUCKET": f"test-{n}",
    }


class Servers:
    """ovmeet servers by configuration, started on first use and stopped at the end."""

    def __init__(self, request: pytest.FixtureRequest, workdir: Path, livekit_url: str) -> None:
        self.request = request
        self.workdir = workdir
        self.livekit_url = livekit_url
        self.shared: dict[tuple[Any, ...], Ovmeet] = {}
        self.started: list[Ovmeet] = []

    def get(self, backend: str = "local", **env: str) -> Ovmeet:
        """The shared server of this configuration."""
        key = (backend, *sorted(env.items()))
        if key not in self.shared:
            self.shared[key] = self.start(backend, **env)
        return self.shared[key]

    def start(self, backend: str = "local", **env: str) -> Ovmeet:
        """A new server of its own (the caller stops it, or it is stopped at the end)."""
        full_env = {
            **base_env(self.livekit_url),
            **storage_env(backend, self.request, self.workdir),
            **env,
        }
        log = self.workdir / f"ovmeet-{next(_unique)}.log"
        server = Ovmeet(full_env, log)
        self.started.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture(scope="session")
def servers(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    livekit_server: tuple[LiveKitStandIn, str],
) -> Iterator[Servers]:
    pool = Servers(request, tmp_path_factory.mktemp("ovmeet"), livekit_server[1])
    yield pool
    pool.stop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(servers: Servers, backend: str) -> Ovmeet:
    """A server in auth mode `none` on the test's storage backend."""
    return servers.get(backend)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a passing one: any skip fails the run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
