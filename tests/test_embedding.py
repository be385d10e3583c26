"""Embedding, at the HTTP edge: the web component's script, who may frame the pages, cookies a
cross-site iframe keeps, and what stops another site from acting with them. (The whole flow in
Chromium: tests/test_embedding_browser.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import Servers
from tests.support.client import MeetClient
from tests.support.helpers import cookie_header, login, request_token, set_cookies, token_body
from tests.support.processes import ADMIN, Ovmeet, base_env, run_cli
from tests.support.shared import MATERIAL, needs_shared

API_KEY = "embedding-test-key-0123456789abcdef01"
KEY = {"x-api-key": API_KEY}
APP = "https://app.example.com"
OTHER_APP = "http://127.0.0.1:8089"
# Headers that would stop an embedded page from using what the iframe's `allow` grants.
BLOCKING = ("permissions-policy", "feature-policy", "cross-origin-embedder-policy")


@pytest.fixture(scope="module")
def embedded(servers: Servers) -> Iterator[Ovmeet]:
    server = servers.start(
        "local",
        MEET_API_KEY=API_KEY,
        MEET_EMBED_ORIGINS=f"{APP}, {OTHER_APP}",
        MEET_FRONTEND_DIR=str(MATERIAL["frontend"]),
        MEET_WEBCOMPONENT_FILE=str(MATERIAL["webcomponent"]),
    )
    yield server
    server.stop()


# ---- the script ----


@needs_shared("webcomponent")
@needs_shared("frontend")
def test_the_script_is_served_to_any_page_and_revalidated(embedded: Ovmeet) -> None:
    url = f"{embedded.base_url}/meet/v1/openvidu-meet.js"
    served = httpx.get(url, headers={"origin": "https://anyone.example"})
    assert served.status_code == 200
    assert served.content == MATERIAL["webcomponent"].read_bytes()
    assert served.headers["content-type"] == "text/javascript; charset=utf-8"
    assert served.headers["access-control-allow-origin"] == "*"
    assert served.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "set-cookie" not in served.headers
    again = httpx.get(url, headers={"if-none-match": served.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    since = httpx.get(url, headers={"if-modified-since": served.headers["last-modified"]})
    assert since.status_code == 304
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["etag"] == served.headers["etag"]


def test_without_the_setting_the_script_is_a_json_error_naming_it(servers: Servers) -> None:
    server = servers.get("local")
    answer = httpx.get(f"{server.base_url}/meet/v1/openvidu-meet.js")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"
    assert "MEET_WEBCOMPONENT_FILE" in answer.json()["message"]
    assert "embedding's script is not served" in server.log_path.read_text()


def test_a_missing_script_file_is_said_at_start_and_answered_404(
    servers: Servers, tmp_path: Any
) -> None:
    server = servers.start("local", MEET_WEBCOMPONENT_FILE=str(tmp_path / "gone.js"))
    try:
        answer = httpx.get(f"{server.base_url}/meet/v1/openvidu-meet.js")
        assert answer.status_code == 404
        assert "MEET_WEBCOMPONENT_FILE" in answer.json()["message"]
        assert "gone.js' is not a file" in server.log_path.read_text()
    finally:
        server.stop()


@needs_shared("frontend")
@pytest.mark.parametrize("path", ["/meet", "/meet/", "/meet/v1/other.js", "/meet/v2/x", "/meet/x"])
def test_no_path_under_meet_is_the_single_page_fallback(embedded: Ovmeet, path: str) -> None:
    answer = httpx.get(embedded.base_url + path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"


# ---- framing ----


@needs_shared("frontend")
def test_listed_origins_may_frame_the_pages_and_nothing_else_is_framed(embedded: Ovmeet) -> None:
    for page in ("/", "/room/any-room?secret=x", "/console"):
        answer = httpx.get(embedded.base_url + page)
        assert answer.status_code == 200 and "text/html" in answer.headers["content-type"]
        assert answer.headers["content-security-policy"] == f"frame-ancestors {APP} {OTHER_APP}"
        assert "x-frame-options" not in answer.headers
    for path in ("/meet/api/v1/rooms", "/meet/health", "/meet/v1/openvidu-meet.js"):
        answer = httpx.get(embedded.base_url + path, headers=KEY)
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"


@needs_shared("frontend")
def test_no_header_stops_camera_microphone_screen_or_fullscreen(embedded: Ovmeet) -> None:
    room = embedded.create_room("media")
    cookie = {
        "OvMeetParticipantToken": MeetClient(embedded).participant_token(room, "Mod", "moderator")
    }
    answers = [
        httpx.get(embedded.base_url + "/"),
        httpx.get(f"{embedded.base_url}/room/{room['roomName']}?secret=x"),
        httpx.get(f"{embedded.base_url}/meet/v1/openvidu-meet.js"),
        request_token(embedded, token_body(room, "Ana")),
        httpx.get(f"{embedded.base_url}/meet/api/v1/rooms/{room['roomName']}", headers=KEY),
        httpx.get(
            f"{embedded.base_url}/meet/api/v1/rooms/{room['roomName']}",
            headers=cookie_header(cookie),
        ),
        httpx.get(f"{embedded.base_url}/meet/api/v1/preferences/appearance", headers=KEY),
    ]
    for answer in answers:
        assert answer.status_code < 400, (answer.url, answer.text)
        assert not set(BLOCKING) & set(answer.headers), (answer.url, answer.headers)


def test_framing_is_refused_by_default(servers: Servers) -> None:
    server = servers.get("local")
    for path in ("/", "/meet/api/v1/rooms"):
        answer = httpx.get(server.base_url + path)
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["content-security-policy"] == "frame-ancestors 'none'"


@pytest.mark.parametrize(
    "entry",
    [
        "*",
        "https://*.example.com",
        "https://app.example.com/",
        "https://app.example.com/embed",
        "app.example.com",
        "https://user@app.example.com",
        "ftp://app.example.com",
        "https://app.example.com:99999",
        "https://app.example.com?x=1",
    ],
)
def test_an_entry_that_is_not_an_origin_stops_start_up(entry: str) -> None:
    env = {**base_env("http://127.0.0.1:1"), "MEET_EMBED_ORIGINS": f"{APP},{entry}"}
    result = run_cli(env, "serve", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "ovmeet: configuration error: MEET_EMBED_ORIGINS: "
    ), lines
    assert "is not an origin" in lines[0]


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [("http://meet.example.com", True), ("https://meet.example.com", False)],
)
def test_embedding_over_plain_http_is_warned_of_at_start(
    servers: Servers, base_url: str, warned: bool
) -> None:
    server = servers.start("local", MEET_EMBED_ORIGINS=APP, MEET_BASE_URL=base_url)
    server.stop()
    log = server.log_path.read_text()
    assert (
        "browsers keep the Secure cookies an embedded meeting needs only over HTTPS" in log
    ) == (warned)


# ---- cookies ----


def test_embedded_cookies_are_cross_site_secure_and_partitioned(embedded: Ovmeet) -> None:
    response = embedded.client.post(
        f"{embedded.api}/auth/login",
        json={"username": ADMIN[0], "password": ADMIN[1]},
        headers={"x-forwarded-for": "192.0.2.44"},
    )
    assert response.status_code == 200
    for name, cookie in set_cookies(response).items():
        assert (cookie["samesite"], cookie["secure"], cookie["httponly"]) == ("none", "", ""), name
    lines = response.headers.get_list("set-cookie")
    assert len(lines) == 2 and all(line.endswith("; Partitioned") for line in lines)
    room = embedded.create_room("cookies")
    token = request_token(embedded, token_body(room, "Ana"))
    assert token.headers["set-cookie"].endswith("; Partitioned")
    assert "SameSite=none; Secure" in token.headers["set-cookie"]
    cookies = {name: c["value"] for name, c in set_cookies(response).items()}
    logout = embedded.client.post(f"{embedded.api}/auth/logout", headers=cookie_header(cookies))
    cleared = logout.headers.get_list("set-cookie")  # the refresh cookie at both of its paths
    assert len(cleared) == 3
    assert all("Partitioned" in line and "Max-Age=0" in line for line in cleared)


# ---- what another site cannot do with them ----


def test_a_cross_site_page_cannot_act_with_the_cookies(embedded: Ovmeet) -> None:
    room = embedded.create_room("csrf")
    participant = {
        "OvMeetParticipantToken": MeetClient(embedded).participant_token(room, "Mod", "moderator")
    }
    delete_url = f"{embedded.base_url}/meet/api/v1/rooms/{room['roomName']}"
    for origin in ("https://evil.example", APP, "null"):
        headers = {**cookie_header(participant), "origin": origin}
        refused = httpx.delete(delete_url, headers=headers)
        assert refused.status_code == 403, (origin, refused.text)
        assert "Cross-site request refused" in refused.json()["message"]
        started = httpx.post(
            f"{embedded.base_url}/meet/api/v1/recordings",
            json={"roomId": room["roomName"]},
            headers=headers,
        )
        assert started.status_code == 403
    assert httpx.get(delete_url, headers=KEY).status_code == 200  # nothing was done
    session = login(embedded)
    logout = httpx.post(
        f"{embedded.api}/auth/logout", headers={**cookie_header(session), "origin": APP}
    )
    assert logout.status_code == 403
    profile = httpx.get(f"{embedded.api}/auth/profile", headers=cookie_header(session))
    assert profile.status_code == 200  # still logged in
    # A form of another site cannot send JSON at all: its body is refused before anything.
    form = httpx.post(
        f"{embedded.api}/participants/token",
        content=b"roomName=x&participantName=y",
        headers={**cookie_header(participant), "content-type": "application/x-www-form-urlencoded"},
    )
    assert form.status_code == 415
    # Without cookies (a server with the API key), or from ovmeet's own pages, it goes through.
    own = {**cookie_header(participant), "origin": embedded.base_url}
    assert httpx.delete(delete_url, headers=own).status_code == 204


def test_a_moderator_ends_its_own_meeting_and_no_other(embedded: Ovmeet) -> None:
    mine, other = embedded.create_room("mine"), embedded.create_room("other")
    moderator = cookie_header(
        {"OvMeetParticipantToken": MeetClient(embedded).participant_token(mine, "Mod", "moderator")}
    )
    publisher = cookie_header(
        {"OvMeetParticipantToken": MeetClient(embedded).participant_token(mine, "Mod", "publisher")}
    )
    public = f"{embedded.base_url}/meet/api/v1/rooms"
    assert httpx.delete(f"{public}/{other['roomName']}", headers=moderator).status_code == 403
    assert httpx.delete(f"{public}/{mine['roomName']}", headers=publisher).status_code == 403
    assert httpx.delete(f"{public}/{mine['roomName']}", headers=moderator).status_code == 204
    assert httpx.get(f"{public}/{other['roomName']}", headers=KEY).status_code == 200
