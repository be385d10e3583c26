"""A real browser plays and seeks a recording through the stream endpoint."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Request, Response, sync_playwright

from tests.conftest import Servers
from tests.support.helpers import CHROMIUM_FLAGS, login
from tests.support.media import make_mp4
from tests.support.processes import Ovmeet
from tests.support.relay import Relay


def page_server(html: str) -> Iterator[str]:
    """Serve one HTML page from 127.0.0.1 (same site as ovmeet, another port)."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def recording(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> tuple[Ovmeet, str]:
    server = servers.get("local")
    room = server.create_room("browser")["roomName"]
    clip = make_mp4(
        tmp_path_factory.mktemp("browser") / "clip.mp4", seconds=8, size="640x360", noise=True
    )
    return server, str(server.import_recording(clip, room)["recordingId"])


def test_chromium_plays_and_seeks_a_recording(
    recording: tuple[Ovmeet, str], tmp_path: Path
) -> None:
    server, recording_id = recording
    # A 4 MB/s link: half a second into playback the browser has a few MB of the 30 MB file,
    # so the seek to the middle must fetch a new range (on loopback it could have it all).
    with Relay(server.port, bytes_per_second=SLOW) as slow:
        stream_url = f"{slow.endpoint}{STREAM.format(recording_id)}"
        seen = play_and_seek(stream_url, login(server)["OvMeetAccessToken"], tmp_path)
    seen.assert_played_and_seeked()
    assert 206 in seen.statuses[stream_url], seen.statuses


@dataclass
class Seen:
    """What a page playing a recording saw: its final state, and per URL, ranges and statuses."""

    duration: float
    state: dict[str, Any]
    ranges: dict[str, list[str]] = field(default_factory=dict)
    statuses: dict[str, list[int]] = field(default_factory=dict)

    def assert_played_and_seeked(self) -> None:
        assert 7.5 < self.duration < 8.5
        assert self.state["error"] is None
        assert self.duration / 2 - 0.5 <= self.state["t"] <= self.duration / 2 + 1.5
        assert self.state["ready"] >= 3  # HAVE_FUTURE_DATA: it plays from the middle
        ranges = [r for rs in self.ranges.values() for r in rs]
        assert ranges and all(r.startswith("bytes=") for r in ranges), self.ranges
        assert any(r != "bytes=0-" for r in ranges), self.ranges  # the seek fetched the middle
        assert not [s for ss in self.statuses.values() for s in ss if s >= 400], self.statuses


STREAM = "/meet/internal-api/v1/recordings/{}/stream"
SLOW = 4_000_000  # bytes per second of the link in front of what sends the recording


def play_and_seek(stream_url: str, cookie: str, tmp_path: Path) -> Seen:
    """Chromium plays the recording at `stream_url` (as ADMIN), then seeks to its middle."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is required (make system-deps installs it)"
    html = f'<!doctype html><video id="v" src="{stream_url}" preload="metadata" muted></video>'
    pages = page_server(html)
    page_url = next(pages)
    ranges: dict[str, list[str]] = {}
    statuses: dict[str, list[int]] = {}

    def on_request(request: Request) -> None:
        if request.url != page_url and not request.url.endswith("favicon.ico"):
            # A redirect's follow-up shows only provisional headers: the Range is its origin's.
            origin = request.redirected_from
            asked = request.headers.get("range") or (
                origin.headers.get("range", "") if origin else ""
            )
            ranges.setdefault(request.url, []).append(asked)

    def on_response(response: Response) -> None:
        if response.url != page_url and not response.url.endswith("favicon.ico"):
            statuses.setdefault(response.url, []).append(response.status)

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"),  # a fresh --user-data-dir
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_FLAGS,
            )
            browser.add_cookies(
                [
                    {
                        "name": "OvMeetAccessToken",
                        "value": cookie,
                        "domain": "127.0.0.1",
                        "path": "/",
                        "httpOnly": True,
                        "sameSite": "Strict",
                    }
                ]
            )
            page = browser.new_page()
            page.on("request", on_request)
            page.on("response", on_response)
            page.goto(page_url)
            page.wait_for_function("document.getElementById('v').readyState >= 1", timeout=20_000)
            duration = page.evaluate("document.getElementById('v').duration")
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').currentTime > 0.5", timeout=20_000)
            page.evaluate(
                """() => new Promise(resolve => {
                    const v = document.getElementById('v');
                    v.addEventListener('seeked', resolve, {once: true});
                    v.currentTime = v.duration / 2;
                })"""
            )
            page.wait_for_function("document.getElementById('v').readyState >= 3", timeout=20_000)
            state = page.evaluate(
                "(() => { const v = document.getElementById('v'); return"
                " {t: v.currentTime, ready: v.readyState, error: v.error && v.error.code}; })()"
            )
            browser.close()
    finally:
        next(pages, None)
    return Seen(duration, state, ranges, statuses)
