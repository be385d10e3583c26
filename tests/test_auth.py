"""Login, refresh, logout, profile; and the token-type attacks on the access cookie."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import jwt
import pytest
from livekit.api import AccessToken, VideoGrants

from ovmeet.auth.revocations import REFRESH_SECONDS
from ovmeet.auth.tokens import SessionTokens
from ovmeet.support.config import Config
from tests.conftest import AppFactory, Servers
from tests.support.helpers import Target, cookie_header, login, set_cookies
from tests.support.inprocess import App
from tests.support.processes import ADMIN, LIVEKIT_KEY, LIVEKIT_SECRET, USER, Ovmeet

AUTH_PATH = "/meet/internal-api/v1/auth"
PUBLIC_AUTH_PATH = "/meet/api/v1/auth"  # where the release's front end logs in


@pytest.fixture
def local(app: App) -> App:
    """Most of these tests run in process; the throttle needs a server process."""
    return app


def post_login(server: Target, username: str, password: str, client: str) -> httpx.Response:
    """A login from `client` (the X-Forwarded-For address a server process trusts from us)."""
    return server.client.post(
        f"{server.api}/auth/login",
        json={"username": username, "password": password},
        headers={"x-forwarded-for": client},
    )


def profile(server: Target, access_token: str | None) -> httpx.Response:
    cookies = {"OvMeetAccessToken": access_token} if access_token is not None else None
    return server.client.get(f"{server.api}/auth/profile", headers=cookie_header(cookies))


@pytest.mark.parametrize(("credentials", "role"), [(ADMIN, "admin"), (USER, "user")])
def test_login_sets_both_cookies_with_their_attributes(
    local: App, credentials: tuple[str, str], role: str
) -> None:
    response = post_login(local, *credentials, client="198.51.100.1")
    assert response.status_code == 200
    assert credentials[0] in response.json()["message"]
    cookies = set_cookies(response)
    access, refresh = cookies["OvMeetAccessToken"], cookies["OvMeetRefreshToken"]
    assert {k: v for k, v in access.items() if k != "value"} == {
        "httponly": "",
        "max-age": "7200",
        "path": "/",
        "samesite": "strict",
    }
    assert {k: v for k, v in refresh.items() if k != "value"} == {
        "httponly": "",
        "max-age": "86400",
        "path": AUTH_PATH,
        "samesite": "strict",
    }
    assert profile(local, access["value"]).json() == {"username": credentials[0], "role": role}


def test_secure_cookies_when_configured(apps: AppFactory) -> None:
    server = apps(MEET_COOKIE_SECURE="true", MEET_ACCESS_TOKEN_EXPIRATION="30m")
    response = post_login(server, *ADMIN, client="198.51.100.2")
    cookies = set_cookies(response)
    assert (
        cookies["OvMeetAccessToken"]["secure"] == ""
        and cookies["OvMeetRefreshToken"]["secure"] == ""
    )
    assert cookies["OvMeetAccessToken"]["max-age"] == "1800"


@pytest.mark.parametrize(
    ("username", "password"),
    [(ADMIN[0], "wrong"), ("nobody", ADMIN[1]), (ADMIN[0], ADMIN[1] + " "), (USER[0], ADMIN[1])],
)
def test_wrong_credentials_are_401_and_set_nothing(
    local: App, username: str, password: str
) -> None:
    response = post_login(local, username, password, client=f"203.0.113.{len(password)}")
    assert response.status_code == 401
    assert response.json() == {
        "name": "Authentication Error",
        "message": "Invalid username or password",
    }
    assert "set-cookie" not in response.headers


def test_refresh_gives_a_new_access_cookie(local: App) -> None:
    refresh_token = login(local)["OvMeetRefreshToken"]
    response = local.client.post(
        f"{local.api}/auth/refresh", headers=cookie_header({"OvMeetRefreshToken": refresh_token})
    )
    assert response.status_code == 200
    cookies = set_cookies(response)
    assert list(cookies) == ["OvMeetAccessToken"]
    assert profile(local, cookies["OvMeetAccessToken"]["value"]).status_code == 200


@pytest.mark.parametrize("auth_path", [AUTH_PATH, PUBLIC_AUTH_PATH])
@pytest.mark.parametrize("cookie", [None, "garbage", "access"])
def test_refresh_without_a_refresh_token_is_400_never_401(
    local: App, cookie: str | None, auth_path: str
) -> None:
    # The release's front end answers a 401 with a refresh: a 401 here would loop for ever.
    value = login(local)["OvMeetAccessToken"] if cookie == "access" else cookie
    cookies = {"OvMeetRefreshToken": value} if value else None
    url = f"{local.base_url}{auth_path}/refresh"
    response = local.client.post(url, headers=cookie_header(cookies))
    assert response.status_code == 400
    assert "log in again" in response.json()["message"]
    assert "set-cookie" not in response.headers


def test_logout_clears_both_cookies_at_every_auth_path(local: App) -> None:
    response = local.client.post(f"{local.base_url}{PUBLIC_AUTH_PATH}/logout")
    assert response.status_code == 200
    cleared = []
    for line in response.headers.get_list("set-cookie"):
        attributes = dict(part.strip().partition("=")[::2] for part in line.split(";"))
        assert attributes["Max-Age"] == "0", line
        cleared.append((line.partition("=")[0], attributes["Path"]))
    assert sorted(cleared) == [
        ("OvMeetAccessToken", "/"),
        ("OvMeetRefreshToken", PUBLIC_AUTH_PATH),
        ("OvMeetRefreshToken", AUTH_PATH),
    ]


def test_the_front_ends_login_path_sets_the_refresh_cookie_for_its_own_path(local: App) -> None:
    response = local.client.post(
        f"{local.base_url}{PUBLIC_AUTH_PATH}/login",
        json={"username": USER[0], "password": USER[1]},
    )
    assert response.status_code == 200
    cookies = set_cookies(response)
    assert cookies["OvMeetRefreshToken"]["path"] == PUBLIC_AUTH_PATH
    refreshed = local.client.post(
        f"{local.base_url}{PUBLIC_AUTH_PATH}/refresh",
        headers=cookie_header({"OvMeetRefreshToken": cookies["OvMeetRefreshToken"]["value"]}),
    )
    assert refreshed.status_code == 200
    access = set_cookies(refreshed)["OvMeetAccessToken"]["value"]
    me = local.client.get(
        f"{local.base_url}{PUBLIC_AUTH_PATH}/profile",
        headers=cookie_header({"OvMeetAccessToken": access}),
    )
    assert me.json() == {"username": USER[0], "role": "user"}


def attack_tokens() -> dict[str, str]:
    """Access-cookie values an attacker could try; none of them may be accepted."""
    now = int(time.time())
    participant_named_admin = (
        AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
        .with_identity(ADMIN[0])
        .with_name(ADMIN[0])
        .with_metadata(json.dumps({"role": "moderator"}))
        .with_grants(VideoGrants(room_join=True, room="r-1", room_admin=True))
        .with_ttl(timedelta(hours=1))
        .to_jwt()
    )
    claims = {
        "sub": ADMIN[0],
        "role": "ADMIN",
        "aud": "ovmeet:access",
        "iss": "ovmeet",
        "iat": now,
        "exp": now + 600,
    }
    return {
        "participant token named like the admin": participant_named_admin,
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "signed with the LiveKit secret": jwt.encode(claims, LIVEKIT_SECRET, algorithm="HS256"),
        "signed with another key": jwt.encode(claims, "k" * 40, algorithm="HS256"),
        "empty": "",
        "garbage": "not.a.jwt",
    }


@pytest.mark.parametrize("name", list(attack_tokens()))
def test_forged_access_tokens_are_refused(local: App, name: str) -> None:
    token = attack_tokens()[name]
    assert profile(local, token).status_code == 401
    stream = local.client.get(
        f"{local.api}/recordings/r-1--EG_1--u1/stream",
        headers=cookie_header({"OvMeetAccessToken": token}),
    )
    assert stream.status_code == 401


REFUSALS = {
    "participant token named like the admin": "is not signed by this server",
    "alg none": "is not valid (The specified alg value is not allowed)",
    "signed with the LiveKit secret": "is not signed by this server",
    "signed with another key": "is not signed by this server",
    "garbage": "is not a token",
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_a_refused_cookie_is_named_with_the_reason(local: App, name: str) -> None:
    message = profile(local, attack_tokens()[name]).json()["message"]
    assert message.endswith(f"; the OvMeetAccessToken cookie {REFUSALS[name]}"), message


def test_a_refresh_token_is_not_an_access_token(local: App) -> None:
    refresh_token = login(local)["OvMeetRefreshToken"]
    refused = profile(local, refresh_token)
    assert refused.status_code == 401
    assert refused.json()["message"].endswith("the OvMeetAccessToken cookie is not an access token")


@pytest.mark.parametrize(("issued_ago", "accepted"), [(7200 - 30, True), (7200 + 1, False)])
def test_an_access_token_lasts_its_lifetime(local: App, issued_ago: int, accepted: bool) -> None:
    config = Config.from_env(local.env)
    tokens = SessionTokens.for_config(config, clock=lambda: time.time() - issued_ago)
    token = tokens.issue(config.users[0], "access")  # MEET_ACCESS_TOKEN_EXPIRATION: 2h
    answer = profile(local, token)
    assert answer.status_code == (200 if accepted else 401)
    if not accepted:
        assert answer.json()["message"].endswith("the OvMeetAccessToken cookie has expired")


def test_changing_a_password_ends_its_sessions(apps: AppFactory) -> None:
    token = login(apps())["OvMeetAccessToken"]
    assert profile(apps(), token).status_code == 200  # tokens outlive the process
    changed = apps(MEET_ADMIN_SECRET="a-new-admin-password")
    refused = profile(changed, token)
    assert refused.status_code == 401
    assert (
        "cookie is for a user who no longer exists or whose password changed"
        in (refused.json()["message"])
    )


@pytest.fixture
def throttled(servers: Servers) -> Iterator[Ovmeet]:
    """A server process of its own: uvicorn trusts X-Forwarded-For from us, so each test
    address is a client of its own."""
    server = servers.start("local")
    yield server
    server.stop()


def test_repeated_failures_are_throttled(throttled: Ovmeet) -> None:
    attacker, bystander = "192.0.2.66", "192.0.2.77"
    for _ in range(5):
        assert post_login(throttled, ADMIN[0], "guess", attacker).status_code == 401
    locked = post_login(throttled, ADMIN[0], "guess", attacker)
    assert locked.status_code == 429
    assert 25 <= int(locked.headers["retry-after"]) <= 30
    assert "try again in" in locked.json()["message"]
    # Even the right password waits: otherwise the lock would tell the attacker nothing.
    assert post_login(throttled, *ADMIN, client=attacker).status_code == 429
    # The account is locked for every client; other accounts are not.
    assert post_login(throttled, *ADMIN, client=bystander).status_code == 429
    assert post_login(throttled, *USER, client=bystander).status_code == 200


def test_a_known_password_does_not_reset_guesses_at_another_account(throttled: Ovmeet) -> None:
    """The attack: a USER login every fifth try used to clear the count of admin guesses."""
    answers = []
    for attempt in range(32):
        if attempt % 5 == 4:
            post_login(throttled, *USER, client="192.0.2.90")
        else:
            answers.append(post_login(throttled, ADMIN[0], f"g{attempt}", "192.0.2.90").status_code)
    assert answers.count(401) == 5  # then the admin account (and the client) stay locked
    assert set(answers[5:]) == {429}


def test_failures_spread_over_clients_still_lock_the_account(throttled: Ovmeet) -> None:
    statuses = [
        post_login(throttled, ADMIN[0], "guess", f"203.0.113.{n}").status_code for n in range(8)
    ]
    assert statuses == [401] * 5 + [429] * 3


# ---- logout revokes ----


def test_logout_revokes_both_tokens(local: App) -> None:
    cookies = login(local)
    both = cookie_header(cookies)
    assert local.client.post(f"{local.api}/auth/logout", headers=both).status_code == 200
    revoked = profile(local, cookies["OvMeetAccessToken"])
    assert revoked.status_code == 401
    assert revoked.json()["message"].endswith(
        "the OvMeetAccessToken cookie was revoked by a logout"
    )
    refresh = local.client.post(
        f"{local.api}/auth/refresh",
        headers=cookie_header({"OvMeetRefreshToken": cookies["OvMeetRefreshToken"]}),
    )
    assert refresh.status_code == 400
    assert profile(local, login(local)["OvMeetAccessToken"]).status_code == 200  # a new login


def test_a_logout_reaches_every_instance_within_a_second(servers: Servers) -> None:
    first = servers.get("s3")
    second = servers.start("s3", MEET_S3_SUBBUCKET=first.env["MEET_S3_SUBBUCKET"])
    try:
        cookies = login(first)
        assert profile(second, cookies["OvMeetAccessToken"]).status_code == 200
        first.client.post(f"{first.api}/auth/logout", headers=cookie_header(cookies))
        logged_out = time.monotonic()
        assert profile(first, cookies["OvMeetAccessToken"]).status_code == 401  # at once here
        while profile(second, cookies["OvMeetAccessToken"]).status_code == 200:
            assert time.monotonic() - logged_out < 3, "the other instance still accepts it"
            time.sleep(0.05)
        assert time.monotonic() - logged_out < REFRESH_SECONDS + 1
    finally:
        second.stop()


def test_every_cookie_line_is_read(local: App) -> None:
    token = login(local)["OvMeetAccessToken"]
    lines = [("cookie", "theme=dark; lang=en"), ("cookie", f"OvMeetAccessToken={token}")]
    response = local.client.get(f"{local.api}/auth/profile", headers=lines)
    assert response.status_code == 200, response.text


def test_guessing_the_api_key_is_throttled_per_client(servers: Servers) -> None:
    """1000 wrong keys from one client: after 5, 429 with Retry-After, even for the right key
    from that client, and 1000 fast guesses get nowhere; another client is not locked out."""
    key = "api-key-of-32-characters-or-more-0123"
    server = servers.start("local", MEET_API_KEY=key)
    try:
        rooms = f"{server.base_url}/meet/api/v1/rooms"
        attacker = {"X-Forwarded-For": "203.0.113.9"}
        statuses = [
            server.client.get(rooms, headers={**attacker, "X-API-KEY": f"guess-{n}"}).status_code
            for n in range(1000)
        ]
        assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
        locked = server.client.get(rooms, headers={**attacker, "X-API-KEY": key})
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert "Too many wrong API keys" in locked.json()["message"]
        other = {"X-Forwarded-For": "198.51.100.7", "X-API-KEY": key}
        assert server.client.get(rooms, headers=other).status_code == 200
    finally:
        server.stop()


def test_a_short_api_key_is_warned_of_at_start(servers: Servers) -> None:
    server = servers.start("local", MEET_API_KEY="short-key-0123")
    try:
        assert "MEET_API_KEY has 14 characters" in server.log().split("Uvicorn running")[0]
    finally:
        server.stop()
