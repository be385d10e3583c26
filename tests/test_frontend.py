"""The real client: OpenVidu Meet's own front end of the release (2025-03-31), served by ovmeet
and driven in headless Chromium. Every call it makes to ovmeet must be answered as it expects.

The room flows go past the pre-join screen into the call, on the real LiveKit server
(tests/test_frontend_call.py has the call itself). Screenshots go to test-artifacts/frontend/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response

from tests.conftest import Servers
from tests.support.helpers import CALL_FLAGS, chromium, participant_claims
from tests.support.livekit_server import RoutedLiveKit
from tests.support.processes import ADMIN, REPO, USER, Ovmeet, free_port
from tests.support.shared import MATERIAL, needs_shared

pytestmark = needs_shared("frontend")

API_KEY = "frontend-test-key-4e0a"
ARTIFACTS = REPO / "test-artifacts" / "frontend"

# The only refusals the front end asks for and handles: "am I logged in?" while logged out,
# and the refresh it then tries (400, never 401: a 401 there would make it loop).
EXPECTED_REFUSALS = {
    ("GET", "/meet/api/v1/auth/profile", 401),
    ("POST", "/meet/api/v1/auth/refresh", 400),
}


@dataclass
class Calls:
    """Every response of ovmeet's APIs that a page received."""

    seen: list[tuple[str, str, int]] = field(default_factory=list)
    bodies: dict[str, Any] = field(default_factory=dict)

    def record(self, response: Response) -> None:
        path = response.url.split("://", 1)[1].split("/", 1)[1]
        path = "/" + path.split("?", 1)[0]
        if path.startswith(("/meet/", "/livekit/")):
            self.seen.append((response.request.method, path, response.status))
            if path.endswith("/participants/token") and response.status == 200:
                self.bodies["token"] = response.json()

    def unexpected(self) -> list[tuple[str, str, int]]:
        return [call for call in self.seen if call[2] >= 400 and call not in EXPECTED_REFUSALS]

    def made(self, method: str, path_start: str) -> list[int]:
        return [s for m, p, s in self.seen if m == method and p.startswith(path_start)]


@pytest.fixture(scope="module")
def meet(servers: Servers, real_livekit: RoutedLiveKit) -> Ovmeet:
    port = free_port(55000)
    return servers.start(
        "local",
        ("--port", str(port)),
        MEET_FRONTEND_DIR=str(MATERIAL["frontend"]),
        MEET_BASE_URL=f"http://127.0.0.1:{port}",  # the room links the browser opens
        MEET_API_KEY=API_KEY,
        LIVEKIT_URL=real_livekit.server.ws_url,
        LIVEKIT_URL_PRIVATE=real_livekit.router_url,
        MEET_LIVEKIT_TIMEOUT="10s",  # through the router, on two cores shared with the suite
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium(CALL_FLAGS) as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, Calls]]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    calls = Calls()
    opened = context.new_page()
    opened.on("response", calls.record)
    yield opened, calls
    context.close()


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def api_room(meet: Ovmeet, prefix: str) -> dict[str, Any]:
    response = httpx.post(
        f"{meet.base_url}/meet/api/v1/rooms",
        json={"expirationDate": 4_000_000_000_000, "roomNamePrefix": prefix},
        headers={"x-api-key": API_KEY},
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def enter_name_and_join(page: Page, calls: Calls, name: str, shots: str) -> None:
    """The name form, the pre-join screen with a token ovmeet issued, then the call, with
    one's own camera playing."""
    page.wait_for_selector("input[formcontrolname=name]", timeout=20_000)
    shot(page, f"{shots}-name-form")
    page.fill("input[formcontrolname=name]", name)
    with page.expect_response(lambda r: r.url.endswith("/participants/token")) as issued:
        page.click("button.full-width")
    assert issued.value.status == 200
    page.get_by_text("Join session").wait_for(timeout=20_000)
    shot(page, f"{shots}-prejoin")
    page.get_by_text("Join session").click()
    page.wait_for_selector("#session-container", timeout=30_000)
    page.wait_for_function(
        "[...document.querySelectorAll('video')].some(v => v.readyState >= 2 && !v.paused)",
        timeout=30_000,
    )
    shot(page, f"{shots}-call")


def test_console_login_rooms_list_and_delete(meet: Ovmeet, page: tuple[Page, Calls]) -> None:
    browser_page, calls = page
    listed, doomed = api_room(meet, "listed"), api_room(meet, "doomed")
    browser_page.goto(f"{meet.base_url}/console")
    browser_page.wait_for_url("**/console/login", timeout=20_000)
    shot(browser_page, "console-1-login")
    browser_page.fill("input[formcontrolname=username]", ADMIN[0])
    browser_page.fill("input[formcontrolname=password]", ADMIN[1])
    browser_page.click("button[type=submit]")
    browser_page.wait_for_url("**/console/overview", timeout=20_000)
    shot(browser_page, "console-2-overview")
    browser_page.goto(f"{meet.base_url}/console/rooms")
    browser_page.get_by_text(listed["roomName"]).wait_for(timeout=20_000)
    browser_page.get_by_text(doomed["roomName"]).wait_for()
    shot(browser_page, "console-3-rooms")
    row = browser_page.locator("mat-list-item", has_text=doomed["roomName"])
    with browser_page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        row.locator("button.delete-button").click()
    assert deleted.value.status == 204
    browser_page.get_by_text(doomed["roomName"]).wait_for(state="detached")
    shot(browser_page, "console-4-deleted")
    gone = httpx.get(
        f"{meet.base_url}/meet/api/v1/rooms/{doomed['roomName']}", headers={"x-api-key": API_KEY}
    )
    assert gone.status_code == 404
    browser_page.get_by_text("Create Room").click()
    browser_page.wait_for_url("**/console/rooms/new")  # the release's form is a placeholder
    assert calls.made("POST", "/meet/api/v1/auth/login") == [200]
    assert calls.made("GET", "/meet/api/v1/rooms") and all(
        status in (200, 307) for status in calls.made("GET", "/meet/api/v1/rooms")
    )
    assert calls.unexpected() == []


def test_a_user_creates_a_room_at_the_root_and_joins_its_call(
    meet: Ovmeet, page: tuple[Page, Calls]
) -> None:
    browser_page, calls = page
    browser_page.goto(f"{meet.base_url}/")
    browser_page.wait_for_url("**/login", timeout=20_000)  # the policy wants a logged-in USER
    shot(browser_page, "creator-1-login")
    browser_page.fill("#login-username input", USER[0])
    browser_page.fill("#login-password input", USER[1])
    browser_page.click("#join-btn")
    browser_page.wait_for_selector("#room-name-input", timeout=20_000)
    shot(browser_page, "creator-2-form")
    browser_page.fill("#room-name-input", "weekly sync")
    with browser_page.expect_response(lambda r: r.url.endswith("/meet/api/v1/rooms")) as created:
        browser_page.click("#join-btn")
    room = created.value.json()
    assert created.value.status == 200 and room["roomNamePrefix"] == "weekly-sync"
    enter_name_and_join(browser_page, calls, "Grace Hopper", "creator-3")
    token = participant_claims(calls.bodies["token"]["token"])
    assert token.video is not None and token.video.room == room["roomName"]
    assert json.loads(token.metadata)["role"] == "moderator"  # the creator's link
    assert calls.unexpected() == []


@pytest.mark.parametrize("role", ["moderator", "publisher"])
def test_room_links_lead_through_the_name_form_and_the_prejoin_into_the_call(
    meet: Ovmeet, page: tuple[Page, Calls], role: str
) -> None:
    browser_page, calls = page
    room = api_room(meet, f"link-{role}")
    link = room[f"{role}RoomUrl"]
    browser_page.goto(link)
    enter_name_and_join(browser_page, calls, f"Ada {role}", f"link-{role}")
    token = participant_claims(calls.bodies["token"]["token"])
    assert token.video is not None and token.video.room == room["roomName"]
    assert token.identity == f"Ada {role}"
    assert json.loads(token.metadata)["role"] == role
    assert calls.made("GET", f"/meet/internal-api/v1/rooms/{room['roomName']}/participant-role")
    if role == "moderator":
        # The front end reads the room's links with the moderator's cookie, then shows the
        # publisher's link in the address bar (so that it can be shared).
        assert calls.made("GET", f"/meet/api/v1/rooms/{room['roomName']}") == [200]
        browser_page.wait_for_url(f"**secret={room['publisherRoomUrl'].split('secret=')[1]}*")
    assert calls.unexpected() == []
