"""What an attacker can make ovmeet write or send: application webhooks never follow a redirect,
their URL's password never reaches the log, and no request can forge a log line."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from livekit.protocol.webhook import WebhookEvent

from tests.conftest import Servers
from tests.support.helpers import access_cookie, cookie_header
from tests.support.livekit_webhooks import signed
from tests.support.processes import Ovmeet, run_cli

API_KEY = "log-and-webhook-safety-key-0123456789abcdef"


class Hits:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []


@pytest.fixture
def target() -> Iterator[tuple[str, Hits]]:
    """Where a redirect would send the webhook: (its URL, what reached it)."""
    yield from _serve(lambda handler: (200, {}))


@pytest.fixture
def redirector(target: tuple[str, Hits]) -> Iterator[tuple[str, Hits]]:
    """An application endpoint that answers every POST with 307 to `target`."""
    yield from _serve(lambda handler: (307, {"Location": target[0]}))


def _serve(answer: Any) -> Iterator[tuple[str, Hits]]:
    hits = Hits()

    class Endpoint(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            hits.requests.append((self.command, self.path, dict(self.headers)))
            status, headers = answer(self)
            self.send_response(status)
            for name, value in {**headers, "Content-Length": "0"}.items():
                self.send_header(name, value)
            self.end_headers()

        do_POST = do_GET = _any

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", hits
    httpd.shutdown()


def finish_room(server: Ovmeet, room: str) -> None:
    """LiveKit says the room finished: ovmeet tells the application (roomFinished)."""
    event = WebhookEvent(event="room_finished", id=f"EV_{time.time_ns()}")
    event.room.name = room
    body, headers = signed(event)
    answer = httpx.post(f"{server.base_url}/livekit/webhook", content=body, headers=headers)
    assert answer.status_code == 200, answer.text


def test_a_redirect_is_a_failed_delivery_never_followed(
    servers: Servers, redirector: tuple[str, Hits], target: tuple[str, Hits]
) -> None:
    url, redirected = redirector
    with_password = url.replace("http://", "http://app-user:hunter2-secret@")
    server = servers.start(
        "local",
        MEET_API_KEY=API_KEY,
        MEET_WEBHOOK_ENABLED="true",
        MEET_WEBHOOK_URL=with_password,
    )
    try:
        finish_room(server, server.create_room("redirected")["roomName"])
        deadline = time.monotonic() + 10
        while "given up" not in server.log():
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.05)
        time.sleep(1.0)  # a retry would come after 0.5 s
        assert [method for method, _, _ in redirected.requests] == ["POST"]  # not retried
        assert target[1].requests == []  # neither the body nor its signature went elsewhere
        log = server.log()
        assert "HTTP 307 (a redirect: not followed, not retried)" in log
        assert "hunter2-secret" not in log and "app-user" not in log
        assert url.removeprefix("http://") in log  # the host and path are still named
    finally:
        server.stop()


def test_a_webhook_url_with_a_line_break_is_refused(servers: Servers) -> None:
    server = servers.get("local")
    cookie = cookie_header(access_cookie(server))
    path = f"{server.base_url}/meet/api/v1/preferences/webhooks"
    before = httpx.get(path, headers=cookie).json()
    for url in ("http://example.com/hook\n2026-12-02 INFO forged", "http://example.com/a b"):
        answer = httpx.put(path, json={"enabled": True, "url": url}, headers=cookie)
        assert answer.status_code == 422, (url, answer.text)
    assert httpx.get(path, headers=cookie).json() == before
    refused = run_cli({**server.env, "MEET_WEBHOOK_URL": "http://example.com/x\nFORGED"}, "gc")
    assert refused.returncode != 0 and "MEET_WEBHOOK_URL" in refused.stderr, refused.stderr


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_request_cannot_forge_a_log_line_or_colour_the_terminal(
    servers: Servers, log_format: str
) -> None:
    server = servers.start("local", MEET_LOG_FORMAT=log_format)
    try:
        forged = "/x%0A2026-12-02 10:00:00,000 INFO ovmeet.access: FORGED LINE"
        colour = "/y%1b[31mred%0d"
        for path in (forged, colour):
            assert httpx.get(server.base_url + path).status_code == 404
        time.sleep(0.3)
        log = server.log()
        assert "FORGED LINE" in log  # logged, but inside the line of its request
        assert not any(line.startswith("2026-12-02 10:00:00") for line in log.splitlines())
        assert "\x1b" not in log and "\r" not in log
    finally:
        server.stop()
