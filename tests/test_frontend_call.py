"""The release's front end in a real call: two Chromium contexts with fake cameras join the same
room through ovmeet, on the real LiveKit server, see each other, chat, record from the front
end's own button (the recording state reaches both through ovmeet's signals), and the recording
plays for the admin. With a short participant token lifetime, the moderator's click after the
token expired makes the front end refresh it and stay in the call.

Screenshots of each step: test-artifacts/frontend-call/.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from livekit import api
from playwright.sync_api import Browser, BrowserContext, Page

from tests.conftest import Servers
from tests.support.client import MeetClient
from tests.support.helpers import access_cookie
from tests.support.livekit_server import RoutedLiveKit
from tests.support.livekit_standin import LiveKitStandIn
from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, REPO, Ovmeet, free_port
from tests.support.shared import MATERIAL, needs_shared

pytestmark = needs_shared("frontend")

API_KEY = "frontend-call-test-key-0123456789abcdef"
ARTIFACTS = REPO / "test-artifacts" / "frontend-call"
TOKEN_SECONDS = 8  # the participant token lifetime: the test outlives it

WAIT_MS = 45_000  # CI shares two cores between the browser, LiveKit, ovmeet and the suite


@pytest.fixture(scope="module")
def meet(servers: Servers, real_livekit: RoutedLiveKit) -> Ovmeet:
    port = free_port(55000)
    server = servers.start(
        "local",
        ("--port", str(port)),
        MEET_FRONTEND_DIR=str(MATERIAL["frontend"]),
        MEET_BASE_URL=f"http://127.0.0.1:{port}",
        MEET_API_KEY=API_KEY,
        LIVEKIT_URL=real_livekit.server.ws_url,
        LIVEKIT_URL_PRIVATE=real_livekit.router_url,
        MEET_PARTICIPANT_TOKEN_EXPIRATION=f"{TOKEN_SECONDS}s",
        MEET_PARTICIPANT_REFRESH_WINDOW="10m",
        MEET_LIVEKIT_TIMEOUT="10s",  # through the router, on two cores shared with the suite
    )
    real_livekit.router.targets.append(f"{server.base_url}/livekit/webhook")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return server


@pytest.fixture
def egress(livekit: LiveKitStandIn, meet: Ovmeet, real_livekit: RoutedLiveKit) -> LiveKitStandIn:
    async def room_is_live(name: str) -> bool:
        async with api.LiveKitAPI(real_livekit.server.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
            return bool((await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))).rooms)

    livekit.room_is_live = room_is_live
    livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    return livekit


class Person:
    """One browser context in the room, and every ovmeet answer it received."""

    def __init__(self, browser: Browser, name: str) -> None:
        self.name = name
        self.context: BrowserContext = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page: Page = self.context.new_page()
        self.answers: list[tuple[str, str, int]] = []
        self.page.on(
            "response",
            lambda r: (
                self.answers.append((r.request.method, r.url.split("?")[0], r.status))
                if "/meet/" in r.url
                else None
            ),
        )

    def shot(self, step: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{step}-{self.name.lower()}.png"))

    def enter(self, link: str) -> None:
        """Through the name form and the pre-join screen, into the call."""
        self.page.goto(link)
        self.page.wait_for_selector("input[formcontrolname=name]", timeout=WAIT_MS)
        self.page.fill("input[formcontrolname=name]", self.name)
        self.page.click("button.full-width")
        self.page.get_by_text("Join session").wait_for(timeout=WAIT_MS)
        self.page.get_by_text("Join session").click()
        self.page.wait_for_selector("#session-container", timeout=WAIT_MS)

    def sees_video_of(self, other: str) -> None:
        """The other person's name on a stream whose video really plays."""
        self.page.locator("#participant-name", has_text=other).first.wait_for(
            state="attached", timeout=WAIT_MS
        )
        self.page.wait_for_function(
            "[...document.querySelectorAll('video')].filter("
            "v => v.readyState >= 2 && v.videoWidth > 0 && !v.paused).length >= 2",
            timeout=WAIT_MS,
        )

    def calls(self, method: str, path_end: str) -> list[int]:
        return [s for m, url, s in self.answers if m == method and url.endswith(path_end)]

    def close(self) -> None:
        self.context.close()


def test_two_people_meet_chat_record_and_the_admin_plays_the_recording(
    meet: Ovmeet, browser: Browser, egress: LiveKitStandIn, real_livekit: RoutedLiveKit
) -> None:
    made = MeetClient(meet, API_KEY).public(
        "POST", "/rooms", json={"expirationDate": 4_000_000_000_000}
    )
    assert made.status_code == 200, made.text
    room = made.json()
    mona, pablo = Person(browser, "Mona"), Person(browser, "Pablo")
    try:
        # 1. Each joins through their own link, and each sees the other's camera.
        mona.enter(room["moderatorRoomUrl"])
        pablo.enter(room["publisherRoomUrl"])
        mona.sees_video_of("Pablo")
        pablo.sees_video_of("Mona")
        mona.shot("1-call")
        pablo.shot("1-call")

        # 2. A chat message crosses.
        pablo.page.click("#chat-panel-btn")
        pablo.page.fill("#chat-input", "Hello from Pablo")
        pablo.page.click("#send-btn")
        mona.page.click("#chat-panel-btn")
        mona.page.get_by_text("Hello from Pablo").wait_for(timeout=WAIT_MS)
        mona.shot("2-chat")
        mona.page.click("#chat-panel-btn")
        pablo.page.click("#chat-panel-btn")

        # 3. After the token's lifetime, the moderator records from the front end's button:
        # the call made with the expired cookie is refused, the front end refreshes the token
        # (ovmeet issues a new one), retries, and stays in the call.
        mona.page.wait_for_timeout((TOKEN_SECONDS + 1) * 1000)
        mona.page.click("#more-options-btn")
        with mona.page.expect_response(
            lambda r: r.url.endswith("/meet/api/v1/recordings") and r.status == 200,
            timeout=WAIT_MS,
        ) as started:
            mona.page.click("#recording-btn")
        recording = started.value.json()
        refreshes = mona.calls("POST", "/participants/token/refresh")
        assert refreshes and set(refreshes) == {200}, refreshes
        for person in (mona, pablo):  # the state arrives through ovmeet's signals
            person.page.locator("#recording-tag").wait_for(timeout=WAIT_MS)
            person.shot("3-recording")
        assert mona.page.locator("#session-container").is_visible()

        # 4. The moderator stops it; both see it stop.
        mona.page.click("#more-options-btn")
        # The token may have expired again: then this PUT too is refused, refreshed, retried.
        with mona.page.expect_response(
            lambda r: r.request.method == "PUT" and "/recordings/" in r.url and r.status == 200,
            timeout=WAIT_MS,
        ):
            mona.page.click("#recording-btn")
        for person in (mona, pablo):
            person.page.locator("#recording-tag").wait_for(state="detached", timeout=WAIT_MS)
            person.shot("4-stopped")
        _until_complete(meet, recording["recordingId"])

        # 5. The admin plays it, and seeks.
        _plays_and_seeks(browser, meet, recording["recordingId"])
        assert pablo.page.locator("#session-container").is_visible()

        # 6. The meeting ends: the room is deleted (what the release's endMeeting command of
        # its web component does for a moderator), and the call ends for everyone in it.
        ended = MeetClient(meet, API_KEY).public("DELETE", f"/rooms/{room['roomName']}")
        assert ended.status_code == 204, ended.text
        # The call is over in LiveKit: the room is gone, with everyone in it. (This release's
        # page stays where it was, and what it then shows varies.)
        assert _room_is_gone(real_livekit, room["roomName"])
        for person in (pablo, mona):
            person.shot("6-ended")
    finally:
        mona.close()
        pablo.close()


def _room_is_gone(real_livekit: RoutedLiveKit, name: str) -> bool:
    """Whether LiveKit no longer has the room (nor anyone in it), within WAIT_MS."""

    async def gone() -> bool:
        async with api.LiveKitAPI(real_livekit.server.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
            for _ in range(WAIT_MS // 100):
                if not (await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))).rooms:
                    return True
                await asyncio.sleep(0.1)
        return False

    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's loop
        return thread.submit(lambda: asyncio.run(gone())).result()


def _until_complete(meet: Ovmeet, recording_id: str) -> None:
    deadline = time.monotonic() + 30
    status = ""
    while time.monotonic() < deadline:
        status = (
            MeetClient(meet, API_KEY).public("GET", f"/recordings/{recording_id}").json()["status"]
        )
        if status == "COMPLETE":
            return
        time.sleep(0.1)
    raise AssertionError(f"recording {recording_id} is still {status}")


def _plays_and_seeks(browser: Browser, meet: Ovmeet, recording_id: str) -> None:
    cookie = access_cookie(meet)["OvMeetAccessToken"]
    context = browser.new_context()
    context.add_cookies([{"name": "OvMeetAccessToken", "value": cookie, "url": meet.base_url}])
    page = context.new_page()
    try:
        stream = f"/meet/internal-api/v1/recordings/{recording_id}/stream"
        page.goto(f"{meet.base_url}/meet/health")  # any page of ovmeet's origin
        page.set_content(f'<video id="v" src="{meet.base_url}{stream}" muted></video>')
        page.wait_for_function("document.getElementById('v').readyState >= 1", timeout=WAIT_MS)
        duration = page.evaluate("document.getElementById('v').duration")
        assert duration > 0.5, duration
        page.evaluate(
            """(to) => new Promise(resolve => {
                const v = document.getElementById('v');
                v.addEventListener('seeked', resolve, {once: true});
                v.currentTime = to;
            })""",
            duration / 2,
        )
        state = json.loads(
            page.evaluate("JSON.stringify({t: document.getElementById('v').currentTime})")
        )
        assert abs(state["t"] - duration / 2) < 0.5, (state, duration)
        page.screenshot(path=str(ARTIFACTS / "5-admin-plays.png"))
    finally:
        context.close()
