"""Fixtures: a LiveKit stand-in, SeaweedFS, ovmeet processes and in-process apps, all real.

Nothing starts unless a test asks for it: the first test that needs SeaweedFS or the shared
servers starts them (the two shared servers, local and S3 storage, start together).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.support import log_scan, shared
from tests.support.helpers import CALL_FLAGS, chromium
from tests.support.inprocess import App
from tests.support.livekit_server import RoutedLiveKit
from tests.support.livekit_standin import LiveKitStandIn, ThreadedServer
from tests.support.processes import (
    LIVEKIT_KEY,
    LIVEKIT_SECRET,
    Ovmeet,
    SeaweedFS,
    base_env,
    stop_processes,
)

BACKENDS = ("local", "s3")
_unique = itertools.count()
_background = ThreadPoolExecutor(max_workers=4, thread_name_prefix="start")


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[tuple[LiveKitStandIn, str]]:
    standin = LiveKitStandIn(LIVEKIT_KEY, LIVEKIT_SECRET)
    server = ThreadedServer(standin.app()).start()
    yield standin, server.url
    server.stop()


@pytest.fixture
def livekit(livekit_server: tuple[LiveKitStandIn, str]) -> Iterator[LiveKitStandIn]:
    """The stand-in, empty of participants, calls and faults for the test, and left so."""
    standin, _ = livekit_server
    standin.reset()
    yield standin
    standin.reset()


@pytest.fixture(scope="session")
def real_livekit(
    tmp_path_factory: pytest.TempPathFactory, livekit_server: tuple[LiveKitStandIn, str]
) -> Iterator[RoutedLiveKit]:
    """The real LiveKit server (`make livekit`), behind the router that sends Egress calls to
    the stand-in; started by the first test that needs it."""
    routed = RoutedLiveKit(
        tmp_path_factory.mktemp("livekit"), LIVEKIT_KEY, LIVEKIT_SECRET, livekit_server[1]
    ).start()
    yield routed
    routed.stop()


@pytest.fixture(scope="session")
def seaweed_starting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[SeaweedFS]]:
    future = _background.submit(SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start)
    yield future
    if future.exception() is None:
        future.result().stop()


@pytest.fixture(scope="session")
def seaweed(seaweed_starting: Future[SeaweedFS]) -> SeaweedFS:
    return seaweed_starting.result()


def storage_env(backend: str, workdir: Path, seaweed: Future[SeaweedFS]) -> dict[str, str]:
    """Environment for a fresh, isolated store on `backend`."""
    n = next(_unique)
    if backend == "local":
        return {"MEET_STORAGE": "local", "MEET_DATA_DIR": str(workdir / f"data-{n}")}
    return seaweed.result().storage_env(f"test-{n}")


class Servers:
    """ovmeet processes by configuration, started on first use and stopped at the end."""

    def __init__(self, workdir: Path, livekit_url: str, seaweed: Future[SeaweedFS]) -> None:
        self.workdir = workdir
        self.livekit_url = livekit_url
        self.seaweed = seaweed
        self.shared: dict[tuple[Any, ...], Future[Ovmeet]] = {}
        self.started: list[Ovmeet] = []

    def get(self, backend: str = "local", **env: str) -> Ovmeet:
        """The shared server of this configuration."""
        return self.starting(backend, **env).result()

    def starting(self, backend: str = "local", **env: str) -> Future[Ovmeet]:
        """The shared server of this configuration, starting in the background if new."""
        key = (backend, *sorted(env.items()))
        if key not in self.shared:
            self.shared[key] = _background.submit(lambda: self.start(backend, (), **env))
        return self.shared[key]

    def start(self, backend: str = "local", serve_args: tuple[str, ...] = (), **env: str) -> Ovmeet:
        """A new server of its own (the caller stops it, or it is stopped at the end)."""
        full_env = {
            **base_env(self.livekit_url),
            **storage_env(backend, self.workdir, self.seaweed),
            **env,
        }
        server = Ovmeet(full_env, self.workdir / f"ovmeet-{next(_unique)}.log", serve_args)
        self.started.append(server)
        return server.start()

    def stop_all(self) -> None:
        wait(self.shared.values())  # a server still starting would outlive the session
        stop_processes([s.process for s in self.started if s.process is not None])
        for server in self.started:
            server.client.close()


@pytest.fixture(scope="session")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
    livekit_server: tuple[LiveKitStandIn, str],
    seaweed_starting: Future[SeaweedFS],
) -> Iterator[Servers]:
    pool = Servers(tmp_path_factory.mktemp("ovmeet"), livekit_server[1], seaweed_starting)
    for backend in BACKENDS:
        pool.starting(backend)
    yield pool
    pool.stop_all()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(servers: Servers, backend: str, livekit: LiveKitStandIn) -> Ovmeet:
    """A server in auth mode `none` on the test's storage backend."""
    return servers.get(backend)


AppFactory = Callable[..., App]


@pytest.fixture
def apps(
    tmp_path: Path, livekit_server: tuple[LiveKitStandIn, str], livekit: LiveKitStandIn
) -> Iterator[AppFactory]:
    """Makes in-process apps on local storage (each its own folder unless MEET_DATA_DIR is
    given), with the test environment plus the variables passed; all stopped after the test."""
    started: list[App] = []

    def make(**env: str) -> App:
        data = {"MEET_STORAGE": "local", "MEET_DATA_DIR": str(tmp_path / f"data-{next(_unique)}")}
        app = App({**base_env(livekit_server[1]), **data, **env}).start()
        started.append(app)
        return app

    yield make
    for app in started:
        app.stop()


@pytest.fixture
def app(apps: AppFactory) -> App:
    """An in-process app in auth mode `none` on local storage."""
    return apps()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium with a fake camera and microphone, for the tests that join calls (a module
    may define a browser of its own)."""
    with chromium(CALL_FLAGS) as launched:
        yield launched


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_LEFT_OUT: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_shared(name): needs material of ../shared")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out, with a notice, the tests whose ../shared material this checkout lacks."""
    if shared.required():
        return
    kept: list[pytest.Item] = []
    left: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("needs_shared")
        (left if marker and shared.missing(marker.args[0]) else kept).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
        names = sorted({m.args[0] for i in left if (m := i.get_closest_marker("needs_shared"))})
        _LEFT_OUT.extend(f"{name}: {shared.MATERIAL[name]} is missing" for name in names)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for notice in _LEFT_OUT:
        terminalreporter.write_line(f"LEFT OUT (not run, not passed): tests needing {notice}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test is not a passing one: any skip fails the run. So does a secret, token or
    cookie value in the log of any ovmeet process the run started."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    factory = getattr(session.config, "_tmp_path_factory", None)
    if hasattr(session.config, "workerinput") or factory is None:
        return  # the controller scans every worker's folders
    found = log_scan.findings(factory.getbasetemp())
    if found and reporter is not None:
        reporter.write_line("SECRETS IN LOGS: " + "; ".join(found[:20]), red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
