"""A meeting embedded in another site's page, in Chromium (fake camera and microphone), on the
real LiveKit server: the page at http://127.0.0.1:A loads the release's `<openvidu-meet>` from
ovmeet at http://localhost:B (another site), the participant joins, and the element's methods
and events work; a page of an origin not listed cannot frame ovmeet, and messages posted by
another origin are ignored.

Screenshots of each step: test-artifacts/embedding/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from livekit import rtc
from playwright.sync_api import Browser, Frame, Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse
from starlette.routing import Route

from tests.conftest import Servers
from tests.support.client import MeetClient
from tests.support.livekit_server import RoutedLiveKit
from tests.support.livekit_standin import ThreadedServer
from tests.support.meeting import join
from tests.support.processes import REPO, Ovmeet, free_port
from tests.support.shared import MATERIAL, needs_shared

pytestmark = [needs_shared("frontend"), needs_shared("webcomponent")]

API_KEY = "embedding-browser-key-0123456789abcdef"
ARTIFACTS = REPO / "test-artifacts" / "embedding"
EXAMPLE = REPO / "examples" / "embed.html"
WAIT_MS = 45_000


def embedding_page(_request: Request) -> FileResponse:
    """The README's example page (examples/embed.html), as `make run` serves it."""
    return FileResponse(EXAMPLE)


def plain_page(request: Request) -> HTMLResponse:
    """A meeting in a plain iframe (other frames of the page can reach it: the element's sits
    in a shadow root, where they cannot), initialized as the element does it."""
    room = request.query_params["room"].replace('"', "%22")
    return HTMLResponse(
        f"""<!doctype html><iframe id="m" style="width:1200px;height:600px" src="{room}"
  allow="camera; microphone; display-capture; fullscreen; autoplay"></iframe>
<script>
  const meeting = document.getElementById('m');
  meeting.onload = () => meeting.contentWindow.postMessage(
    {{action: 'initialize', payload: {{domain: location.origin}}}}, new URL(meeting.src).origin);
</script>"""
    )


def poster_page(_request: Request) -> HTMLResponse:
    """Posts a command to the page's first frame (the meeting's) when told to."""
    return HTMLResponse(
        """<!doctype html><script>
  window.addEventListener('message', (event) => {
    if (event.data === 'go') parent.frames[0].postMessage({action: 'toggleChat'}, '*');
  });
</script>"""
    )


@pytest.fixture(scope="module")
def pages() -> Iterator[tuple[ThreadedServer, ThreadedServer]]:
    """Two sites of embedding pages: one listed in MEET_EMBED_ORIGINS, one not."""
    app = Starlette(
        routes=[
            Route("/embed.html", embedding_page),
            Route("/poster", poster_page),
            Route("/plain", plain_page),
        ]
    )
    listed, unlisted = ThreadedServer(app).start(), ThreadedServer(app).start()
    yield listed, unlisted
    listed.stop()
    unlisted.stop()


@pytest.fixture(scope="module")
def meet(
    servers: Servers, real_livekit: RoutedLiveKit, pages: tuple[ThreadedServer, ThreadedServer]
) -> Ovmeet:
    port = free_port(55000)
    server = servers.start(
        "local",
        ("--port", str(port)),
        MEET_FRONTEND_DIR=str(MATERIAL["frontend"]),
        MEET_WEBCOMPONENT_FILE=str(MATERIAL["webcomponent"]),
        MEET_EMBED_ORIGINS=pages[0].url,
        MEET_BASE_URL=f"http://localhost:{port}",
        MEET_API_KEY=API_KEY,
        LIVEKIT_URL=real_livekit.server.ws_url,
        LIVEKIT_URL_PRIVATE=real_livekit.router_url,
        MEET_LIVEKIT_TIMEOUT="10s",
    )
    real_livekit.router.targets.append(f"{server.base_url}/livekit/webhook")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return server


def site_of(meet: Ovmeet) -> str:
    """ovmeet as the browser reaches it: another site than the pages' 127.0.0.1."""
    return f"http://localhost:{meet.port}"


def new_room(meet: Ovmeet) -> dict[str, Any]:
    made = MeetClient(meet, API_KEY).public(
        "POST", "/rooms", json={"expirationDate": 4_000_000_000_000}
    )
    assert made.status_code == 200, made.text
    return made.json()  # type: ignore[no-any-return]


def open_embedded(
    browser: Browser, site: ThreadedServer, meet: Ovmeet, room_url: str, name: str = "Ana"
) -> Page:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    query = httpx.QueryParams({"meet": site_of(meet), "room": room_url, "name": name})
    page.goto(f"{site.url}/embed.html?{query}")
    return page


def post_from_frame_of(page: Page, site: ThreadedServer) -> None:
    """A frame of `site` in the page posts `toggleChat` to the page's first frame (the
    meeting's)."""
    page.evaluate(
        """(url) => new Promise(resolve => {
            const frame = document.createElement('iframe');
            frame.onload = () => { frame.contentWindow.postMessage('go', '*'); resolve(); };
            frame.src = url;
            document.body.appendChild(frame);
        })""",
        f"{site.url}/poster",
    )


def meeting_frame(page: Page, meet: Ovmeet) -> Frame:
    for _ in range(WAIT_MS // 100):
        for frame in page.frames:
            if frame.url.startswith(site_of(meet) + "/room/"):
                return frame
        page.wait_for_timeout(100)
    raise AssertionError(f"no frame of {site_of(meet)} in {[f.url for f in page.frames]}")


def events(page: Page) -> list[str]:
    return page.evaluate("window.events")  # type: ignore[no-any-return]


def until_event(page: Page, event: str) -> None:
    page.wait_for_function(f"window.events.includes('{event}')", timeout=WAIT_MS)


class Caller:
    """An SDK participant in a thread of its own (Playwright's sync API holds this one)."""

    def __init__(self, url: str, token: str) -> None:
        self._pool = ThreadPoolExecutor(1)
        self._joined: Future[None] = Future()
        self.ended: Future[int] = self._pool.submit(lambda: asyncio.run(self._stay(url, token)))

    async def _stay(self, url: str, token: str) -> int:
        attendee = await join(url, token)
        self._joined.set_result(None)
        reason = await attendee.disconnected(within=WAIT_MS / 1000)
        return reason

    def joined(self) -> None:
        self._joined.result(timeout=WAIT_MS / 1000)


def test_an_embedded_meeting_joins_obeys_its_page_and_ends_for_everyone(
    meet: Ovmeet,
    browser: Browser,
    pages: tuple[ThreadedServer, ThreadedServer],
    real_livekit: RoutedLiveKit,
) -> None:
    room = new_room(meet)
    token = httpx.post(
        f"{meet.api}/participants/token",
        json={
            "roomName": room["roomName"],
            "participantName": "Bob",
            "secret": room["publisherRoomUrl"].split("secret=")[1],
        },
    )
    assert token.status_code == 200, token.text
    bob = Caller(real_livekit.server.ws_url, token.json()["token"])
    bob.joined()

    page = open_embedded(browser, pages[0], meet, room["moderatorRoomUrl"])
    try:
        # 1. The room loads in the frame and the moderator joins: the page hears `join`.
        until_event(page, "join")
        frame = meeting_frame(page, meet)
        frame.wait_for_selector("#session-container", timeout=WAIT_MS)
        page.screenshot(path=str(ARTIFACTS / "1-joined.png"))

        # 2. The page opens the chat, and closes it.
        chat = frame.locator("#chat-input")
        page.evaluate("document.getElementById('meet').toggleChat()")
        chat.wait_for(timeout=WAIT_MS)
        page.screenshot(path=str(ARTIFACTS / "2-chat.png"))
        page.evaluate("document.getElementById('meet').toggleChat()")
        chat.wait_for(state="hidden", timeout=WAIT_MS)

        # 3. The moderator ends the meeting: the front end deletes the room with its
        # (partitioned, cross-site) participant cookie, and the call ends for Bob too.
        with page.expect_response(
            lambda r: r.request.method == "DELETE" and "/meet/api/v1/rooms/" in r.url,
            timeout=WAIT_MS,
        ) as deleted:
            page.evaluate("document.getElementById('meet').endMeeting()")
        assert deleted.value.status == 204
        assert bob.ended.result(timeout=WAIT_MS / 1000) == rtc.DisconnectReason.ROOM_DELETED
        assert (
            MeetClient(meet, API_KEY).public("GET", f"/rooms/{room['roomName']}").status_code == 404
        )
        page.screenshot(path=str(ARTIFACTS / "3-ended.png"))
    finally:
        page.context.close()


def test_commands_from_a_frame_of_another_origin_are_ignored(
    meet: Ovmeet, browser: Browser, pages: tuple[ThreadedServer, ThreadedServer]
) -> None:
    listed, unlisted = pages
    room = new_room(meet)
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    try:
        page.goto(f"{listed.url}/plain?{httpx.QueryParams({'room': room['publisherRoomUrl']})}")
        frame = meeting_frame(page, meet)
        name = frame.locator("input[formcontrolname=name]")  # not embedded by the element:
        name.wait_for(timeout=WAIT_MS)  # no participant name given, so the name form
        name.fill("Dora")
        frame.click("button.full-width")
        frame.wait_for_selector("#session-container", timeout=WAIT_MS)
        chat = frame.locator("#chat-input")
        post_from_frame_of(page, unlisted)
        page.wait_for_timeout(2000)
        assert not chat.is_visible()  # another origin: ignored
        post_from_frame_of(page, listed)
        chat.wait_for(timeout=WAIT_MS)  # the page's own origin, the one it announced: obeyed
        page.screenshot(path=str(ARTIFACTS / "6-commands.png"))
    finally:
        context.close()


def test_leave_room_leaves_and_the_page_hears_left(
    meet: Ovmeet, browser: Browser, pages: tuple[ThreadedServer, ThreadedServer]
) -> None:
    room = new_room(meet)
    page = open_embedded(browser, pages[0], meet, room["publisherRoomUrl"], name="Carla")
    try:
        until_event(page, "join")
        page.evaluate("document.getElementById('meet').leaveRoom()")
        until_event(page, "left")
        assert events(page) == ["join", "left"]
        assert (
            MeetClient(meet, API_KEY).public("GET", f"/rooms/{room['roomName']}").status_code == 200
        )
        page.screenshot(path=str(ARTIFACTS / "4-left.png"))
    finally:
        page.context.close()


def test_a_page_of_an_origin_not_listed_cannot_frame_ovmeet(
    meet: Ovmeet, browser: Browser, pages: tuple[ThreadedServer, ThreadedServer]
) -> None:
    room = new_room(meet)
    page = open_embedded(browser, pages[1], meet, room["publisherRoomUrl"])
    refusals: list[str] = []
    page.on("console", lambda message: refusals.append(message.text))
    try:
        page.reload()
        page.wait_for_timeout(3000)
        assert events(page) == []
        loaded = [f for f in page.frames if f.url.startswith(site_of(meet))]
        for frame in loaded:  # a blocked frame has no document of ovmeet's
            assert frame.evaluate("document.querySelector('app-root')") is None
        assert any("frame-ancestors" in text for text in refusals), refusals
        page.screenshot(path=str(ARTIFACTS / "5-refused.png"))
    finally:
        page.context.close()
