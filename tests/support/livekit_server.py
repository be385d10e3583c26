"""The real LiveKit server for the tests, and the router ovmeet calls it through.

`LiveKitServer` runs the binary that `make livekit` builds (`scripts/build-livekit.sh`: the
pinned tag of github.com/livekit/livekit-server) on loopback ports, single node, no Redis.

`LiveKitRouter` sits between ovmeet and that server: Egress calls go to the LiveKit stand-in
(no Egress worker can run here), every other Twirp call to the real server, byte for byte. The
real server's webhooks arrive at the router's `/webhook` and are forwarded unchanged (body,
signature) to the ovmeet processes a test names, and kept for the test to read.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.livekit_standin import ThreadedServer
from tests.support.processes import REPO, free_port, stop_process, wait_until

VERSION = (REPO / "scripts" / "livekit-version").read_text().strip()
BINARY = Path(
    os.environ.get("OVMEET_LIVEKIT_SERVER")
    or REPO / ".cache" / "livekit" / VERSION / "livekit-server"
)
# What the router passes on from a request to the server it routes to, and back.
_FORWARDED = ("authorization", "content-type")


class LiveKitServer:
    """`livekit-server --config FILE` on 127.0.0.1: HTTP/WebSocket and UDP ports of its own."""

    def __init__(
        self, workdir: Path, api_key: str, api_secret: str, webhook_urls: list[str]
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.udp_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.api_key, self.api_secret = api_key, api_secret
        self.log_path = workdir / "livekit.log"
        self.config = {
            "port": self.port,
            "bind_addresses": ["127.0.0.1"],
            "keys": {api_key: api_secret},
            "rtc": {
                "udp_port": self.udp_port,
                "tcp_port": 0,  # a TCP port would listen on every interface
                "node_ip": "127.0.0.1",
                "use_external_ip": False,
                "enable_loopback_candidate": True,
                "ips": {"includes": ["127.0.0.1/32"]},
                "stun_servers": ["127.0.0.1:3478"],  # never Google's: no network here
            },
            "room": {"empty_timeout": 10, "departure_timeout": 1},
            "logging": {"json": True, "level": "info"},
            "webhook": {"api_key": api_key, "urls": webhook_urls},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveKitServer:
        if not BINARY.exists():
            raise RuntimeError(f"no LiveKit server at {BINARY}: run `make livekit` first")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "livekit.yaml"
        config_path.write_text(yaml.safe_dump(self.config))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(BINARY), "--config", str(config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
            )
        try:
            # A configuration error makes it exit with status 0: any exit is a failure here.
            wait_until(self._up, 30, f"LiveKit ({self.log_path})", self.process)
        except RuntimeError as error:
            self.stop()
            raise RuntimeError(f"{error}; its log ends:\n{self.log()[-3000:]}") from None
        return self

    def _up(self) -> bool:
        # 406 "Not Ready" until the node is up, then 200 OK.
        return httpx.get(self.url, timeout=2).text == "OK"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Delivery:
    """A webhook the real server sent: its event, and what each ovmeet answered."""

    event: dict[str, Any]
    answers: dict[str, tuple[int, str]]  # by target URL
    body: bytes
    headers: dict[str, str]


@dataclass
class LiveKitRouter:
    """Egress to the stand-in, the rest to the real server; webhooks fanned out to `targets`."""

    livekit_url: str
    standin_url: str
    targets: list[str] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _client: httpx.AsyncClient | None = None  # made in the router's own event loop

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=30)
        return self._client

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/twirp/{service}/{method}", self._twirp, methods=["POST"]),
                Route("/webhook", self._webhook, methods=["POST"]),
            ]
        )

    async def _twirp(self, request: Request) -> Response:
        service = request.path_params["service"]
        base = self.standin_url if service == "livekit.Egress" else self.livekit_url
        answer = await self.client().post(
            f"{base}{request.url.path}",
            content=await request.body(),
            headers={k: v for k, v in request.headers.items() if k in _FORWARDED},
        )
        return Response(
            answer.content,
            status_code=answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k in _FORWARDED},
        )

    async def _webhook(self, request: Request) -> Response:
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k in _FORWARDED}
        answers = {}
        for url in list(self.targets):
            try:
                answer = await self.client().post(url, content=body, headers=headers)
                answers[url] = (answer.status_code, answer.text)
            except httpx.HTTPError as error:
                answers[url] = (0, str(error))
        self.deliveries.append(Delivery(json.loads(body), answers, body, headers))
        return Response(status_code=200)

    def events(self, room: str) -> list[dict[str, Any]]:
        """The events the real server sent about `room`, in order."""
        return [
            d.event
            for d in self.deliveries
            if (d.event.get("room") or {}).get("name") == room
            or (d.event.get("egressInfo") or {}).get("roomName") == room
        ]

    def wait_for(self, room: str, event: str, timeout: float = 20) -> Delivery:
        """The first delivery of `event` about `room`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for delivery in list(self.deliveries):
                about = (delivery.event.get("room") or {}).get("name")
                if delivery.event.get("event") == event and about == room:
                    return delivery
            time.sleep(0.05)
        seen = [e.get("event") for e in self.events(room)]
        raise AssertionError(f"no {event} for room {room} within {timeout} s (seen: {seen})")


class RoutedLiveKit:
    """The real server and its router, started together."""

    def __init__(self, workdir: Path, api_key: str, api_secret: str, standin_url: str) -> None:
        webhook_port = free_port()
        self.server = LiveKitServer(
            workdir, api_key, api_secret, [f"http://127.0.0.1:{webhook_port}/webhook"]
        )
        self.router = LiveKitRouter(self.server.url, standin_url)
        self._router_server = ThreadedServer(self.router.app(), port=webhook_port)

    def start(self) -> RoutedLiveKit:
        self._router_server.start()
        try:
            self.server.start()
        except BaseException:
            self._router_server.stop()
            raise
        return self

    @property
    def router_url(self) -> str:
        return self._router_server.url

    def stop(self) -> None:
        self.server.stop()
        self._router_server.stop()
