"""The in-process tier: ovmeet's ASGI app in the test process, driven by Starlette's TestClient.

For the rule matrices: no server process to start, rooms made through the domain code. The HTTP
edge itself (uvicorn, sockets, streaming), the CLI, S3 and the browser are tested against real
processes (tests/support/processes.py). LiveKit is the stand-in over a real socket in both tiers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import httpx
from starlette.testclient import TestClient

from ovmeet.services import prepare_storage
from ovmeet.support.config import Config
from ovmeet.web.app import create_app
from tests.support.processes import RoomMaker, without_cookie_jar


class App(RoomMaker):
    """create_app(config from `env`), its lifespan running while started."""

    base_url = "http://testserver"

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        app = create_app(Config.from_env(self.env))
        self.client: httpx.Client = without_cookie_jar(TestClient(app, base_url=self.base_url))

    @property
    def api(self) -> str:
        return f"{self.base_url}/meet/internal-api/v1"

    def start(self) -> App:
        """What `ovmeet serve` does: prepare the storage, then run the app's lifespan."""
        asyncio.run(prepare_storage(self.config()))
        self.client.__enter__()  # TestClient's: runs the lifespan
        return self

    def stop(self) -> None:
        self.client.__exit__(None, None, None)
