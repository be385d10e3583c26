"""POST /participants/token, /participants/token/refresh and DELETE /participants/{name}."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from livekit.api import AccessToken, TokenVerifier, VideoGrants

from tests.conftest import AppFactory, Servers
from tests.support.helpers import (
    Target,
    access_cookie,
    cookie_header,
    livekit_token,
    request_token,
    set_cookies,
    token_body,
)
from tests.support.livekit_standin import Fault, LiveKitStandIn
from tests.support.processes import ADMIN, LIVEKIT_KEY, LIVEKIT_SECRET, USER, Ovmeet, free_port

verifier = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET, leeway=timedelta(0))


@pytest.fixture
def local(servers: Servers) -> Ovmeet:
    return servers.get("local")


@pytest.fixture
def room(local: Ovmeet) -> dict[str, Any]:
    return local.create_room("meet")


def signed_claims(video: dict[str, Any], exp: Any = None) -> str:
    """A moderator token with these raw grants, signed with the LiveKit secret."""
    claims = {
        "sub": "Mod",
        "iss": LIVEKIT_KEY,
        "exp": exp if exp is not None else int(time.time()) + 60,
        "video": video,
        "metadata": '{"role": "moderator"}',
    }
    return jwt.encode(claims, LIVEKIT_SECRET, algorithm="HS256")


# ---- POST /participants/token ----


@pytest.mark.parametrize("role", ["moderator", "publisher"])
def test_token_is_a_livekit_token_with_the_contract_claims(
    server: Ovmeet, livekit: LiveKitStandIn, role: str
) -> None:
    room = server.create_room("claims")
    response = request_token(server, token_body(room, "Alice", role))
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert list(response.json()) == ["token"]

    cookie = set_cookies(response)["OvMeetParticipantToken"]
    assert cookie == {
        "value": token,
        "httponly": "",
        "max-age": str(6 * 3600 * 2),  # the token's 6 h, and as long again to refresh it
        "path": "/",
        "samesite": "strict",
    }

    claims = verifier.verify(token)  # HS256 with the LiveKit secret, iss = LIVEKIT_API_KEY
    raw = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert raw["iss"] == LIVEKIT_KEY
    assert raw["exp"] - raw["nbf"] == 6 * 3600
    assert claims.identity == "Alice" and claims.name == "Alice"
    metadata = json.loads(claims.metadata)
    moderator = role == "moderator"
    assert metadata == {
        "livekitUrl": server.env["LIVEKIT_URL"],
        "role": role,
        "permissions": {
            "canPublishScreen": True,
            "canRecord": moderator,
            "canChat": True,
            "canChangeVirtualBackground": True,
        },
    }
    video = raw["video"]
    expected = {
        "roomJoin": True,
        "room": room["roomName"],
        "canPublish": True,
        "canSubscribe": True,
        "canPublishData": True,
        "canUpdateOwnMetadata": True,
    }
    if moderator:
        expected |= {"roomAdmin": True}  # never roomRecord: LiveKit holds it to no room
    assert video == expected
    assert livekit.room_calls() == [("GetParticipant", room["roomName"], "Alice")]


def test_missing_room_is_a_room_error(local: Ovmeet, livekit: LiveKitStandIn) -> None:
    response = request_token(local, {"roomName": "no-room", "participantName": "a", "secret": "s"})
    assert response.status_code == 404
    assert response.json() == {"name": "Room Error", "message": "The room 'no-room' does not exist"}
    assert "set-cookie" not in response.headers
    assert livekit.room_calls() == []


@pytest.mark.parametrize("room_name", ["../rooms", "a--b", "x" * 300, "room/../../etc", "%2e%2e"])
def test_room_names_that_cannot_exist_are_not_found(local: Ovmeet, room_name: str) -> None:
    response = request_token(local, {"roomName": room_name, "participantName": "a", "secret": "s"})
    assert response.status_code == 404
    assert response.json()["name"] == "Room Error"


@pytest.mark.parametrize("wrong", ["nope", "x" * 5000, " "])
def test_a_wrong_secret_is_400(local: Ovmeet, room: dict[str, Any], wrong: str) -> None:
    body = {"roomName": room["roomName"], "participantName": "a", "secret": wrong}
    response = request_token(local, body)
    assert response.status_code == 400
    assert response.json() == {
        "name": "Room Error",
        "message": f"Invalid secret for room '{room['roomName']}'",
    }


def test_a_participant_already_in_the_room_is_a_conflict(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn
) -> None:
    livekit.add_participant(room["roomName"], "Bob")
    response = request_token(local, token_body(room, "Bob"))
    assert response.status_code == 409
    assert response.json() == {
        "name": "Participant Error",
        "message": f"Participant 'Bob' already exists in room '{room['roomName']}'",
    }
    assert "set-cookie" not in response.headers


def assert_livekit_failed(response: httpx.Response, method: str = "GetParticipant") -> None:
    """A 503 that names LiveKit and the call, and shows nothing of where LiveKit is."""
    assert response.status_code == 503
    assert response.json() == {
        "name": "LiveKit Error",
        "message": f"LiveKit is not available: {method} failed",
    }
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize(
    ("fault", "refresh"),
    [
        (Fault(status=500), False),
        (Fault(status=500), True),
        (Fault(status=503), False),
        (Fault(status=503), True),
        (Fault(delay=1.5), False),  # over MEET_LIVEKIT_TIMEOUT (1s)
        (Fault(delay=1.5), True),
    ],
)
def test_livekit_failures_never_issue_a_token(
    apps: AppFactory,
    livekit: LiveKitStandIn,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    refresh: bool,
) -> None:
    app = apps(MEET_LIVEKIT_TIMEOUT="1s")
    room = app.create_room("faults")
    livekit.fault = fault
    previous = {"OvMeetParticipantToken": livekit_token(room["roomName"], "Carol", ttl=-5)}
    response = request_token(app, token_body(room, "Carol"), previous, refresh=refresh)
    assert_livekit_failed(response)
    cause = "no answer within 1s" if fault.delay else f"{fault.status} internal: injected fault"
    assert f"LiveKit at {app.env['LIVEKIT_URL']} failed on GetParticipant ({cause})" in caplog.text


def test_unreachable_livekit_is_a_503_naming_it_and_the_log_says_where(
    servers: Servers,
) -> None:
    closed = f"ws://127.0.0.1:{free_port()}"
    server = servers.get("local", LIVEKIT_URL_PRIVATE=closed)
    room = server.create_room("offline")
    response = request_token(server, token_body(room, "Dave"))
    assert_livekit_failed(response)
    assert "127.0.0.1" not in response.text
    assert f"LiveKit at {closed} failed on GetParticipant" in server.log()


def test_livekit_refusing_our_credentials_is_a_503(
    apps: AppFactory, livekit: LiveKitStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    app = apps(LIVEKIT_API_SECRET="another-livekit-secret-0123456789abc")
    room = app.create_room("badkey")
    response = request_token(app, token_body(room, "Eve"))
    assert response.status_code == 503
    assert response.json() == {
        "name": "LiveKit Error",
        "message": "LiveKit is not available: GetParticipant failed: LiveKit refused ovmeet's "
        "credentials (LIVEKIT_API_KEY, LIVEKIT_API_SECRET)",
    }
    assert "401: LiveKit refused ovmeet's credentials" in caplog.text
    # LiveKit's plain-text 401 repeats the token it refused: never logged.
    assert "invalid token" not in caplog.text and "Bearer" not in caplog.text
    assert livekit.room_calls() == []  # the stand-in refused before looking anything up


# ---- auth modes ----

MODES = ["none", "moderators_only", "all_users"]
LOGINS: dict[str, tuple[str, str] | None] = {"anonymous": None, "user": USER, "admin": ADMIN}


def login_required(mode: str, role: str) -> bool:
    return mode == "all_users" or (mode == "moderators_only" and role == "moderator")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("role", ["moderator", "publisher"])
@pytest.mark.parametrize("who", list(LOGINS))
def test_auth_mode_by_role_and_login(
    apps: AppFactory, livekit: LiveKitStandIn, mode: str, role: str, who: str
) -> None:
    server = apps(MEET_AUTH_MODE=mode)
    room = server.create_room(mode)
    credentials = LOGINS[who]
    cookies = access_cookie(server, credentials) if credentials else None
    for refresh in (False, True):
        name = f"{who}-{role}-{refresh}"
        sent = dict(cookies or {})
        if refresh:
            livekit.add_participant(room["roomName"], name)
            expired = livekit_token(room["roomName"], name, moderator=role == "moderator", ttl=-5)
            sent["OvMeetParticipantToken"] = expired
        response = request_token(server, token_body(room, name, role), sent, refresh)
        if credentials is None and login_required(mode, role):
            assert response.status_code == 401, response.text
            assert "Log in" in response.json()["message"]
        else:
            assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "bad_cookie",
    [
        "garbage",
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJvdmFkbWluIiwiYXVkIjoib3ZtZWV0OmFjY2VzcyJ9.",
    ],
)
def test_an_invalid_access_cookie_counts_as_anonymous(
    apps: AppFactory, livekit: LiveKitStandIn, bad_cookie: str
) -> None:
    server = apps(MEET_AUTH_MODE="moderators_only")
    room = server.create_room("anon")
    cookies = {"OvMeetAccessToken": bad_cookie}
    assert request_token(server, token_body(room, "p", "publisher"), cookies).status_code == 200
    assert request_token(server, token_body(room, "m", "moderator"), cookies).status_code == 401


def test_the_stored_auth_mode_applies_at_run_time(
    apps: AppFactory, livekit: LiveKitStandIn
) -> None:
    server = apps(MEET_AUTH_MODE="none")
    room = server.create_room("runtime")
    assert request_token(server, token_body(room, "a", "moderator")).status_code == 200
    preferences = f"{server.env['MEET_DATA_DIR']}/openvidu-meet-preferences.json"
    with open(preferences) as file:
        stored = json.load(file)
    assert stored["securityPreferences"]["authentication"]["authMode"] == "none"
    stored["securityPreferences"]["authentication"]["authMode"] = "all_users"
    with open(preferences, "w") as file:
        json.dump(stored, file)
    time.sleep(1.05)  # the preferences are cached for at most one second
    assert request_token(server, token_body(room, "b", "publisher")).status_code == 401


def test_the_environment_only_seeds_the_stored_auth_mode(
    apps: AppFactory, livekit: LiveKitStandIn
) -> None:
    first = apps(MEET_AUTH_MODE="all_users")
    again = apps(MEET_AUTH_MODE="none", MEET_DATA_DIR=first.env["MEET_DATA_DIR"])
    room = again.create_room("seeded")
    assert request_token(again, token_body(room, "z")).status_code == 401  # stored value wins


# ---- POST /participants/token/refresh ----


def test_refresh_gives_a_new_token_to_a_participant_still_in_the_room(
    server: Ovmeet, livekit: LiveKitStandIn
) -> None:
    room = server.create_room("refresh")
    livekit.add_participant(room["roomName"], "Frank")
    expired = livekit_token(room["roomName"], "Frank", ttl=-10)
    response = request_token(
        server, token_body(room, "Frank"), {"OvMeetParticipantToken": expired}, refresh=True
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert verifier.verify(token).identity == "Frank"
    assert set_cookies(response)["OvMeetParticipantToken"]["value"] == token


def test_refresh_with_a_still_valid_token_is_a_conflict(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn
) -> None:
    livekit.add_participant(room["roomName"], "Gina")
    issued = livekit_token(room["roomName"], "Gina")
    response = request_token(
        local, token_body(room, "Gina"), {"OvMeetParticipantToken": issued}, refresh=True
    )
    assert response.status_code == 409
    assert response.json() == {
        "name": "Participant Error",
        "message": "Participant token is still valid",
    }


@pytest.mark.parametrize(
    ("previous", "status"),
    [
        ("none", 401),
        ("garbage", 401),
        ("other key", 401),
        ("expired beyond the window", 401),
        ("another room", 403),
        ("another identity", 403),
    ],
)
def test_refresh_needs_the_participants_own_previous_token(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn, previous: str, status: int
) -> None:
    """Only the secret and a name already in the room: no new token (it would let anyone with
    the publisher secret take over a moderator's identity)."""
    name = room["roomName"]
    livekit.add_participant(name, "Hank")
    token = {
        "none": None,
        "garbage": "not-a-token",
        "other key": jwt.encode({"sub": "Hank", "exp": time.time() - 5}, "k" * 32),
        "expired beyond the window": livekit_token(name, "Hank", ttl=-6 * 3600),
        "another room": livekit_token("another-room", "Hank", ttl=-5),
        "another identity": livekit_token(name, "Ian", ttl=-5),
    }[previous]
    cookies = {"OvMeetParticipantToken": token} if token else None
    response = request_token(local, token_body(room, "Hank", "moderator"), cookies, refresh=True)
    assert response.status_code == status, response.text
    assert "set-cookie" not in response.headers
    assert response.json()["name"] == "Authentication Error"
    assert ("GetParticipant", name, "Hank") not in livekit.calls


def test_refresh_within_the_window_reads_every_cookie_line(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn
) -> None:
    livekit.add_participant(room["roomName"], "Jo")
    expired = livekit_token(room["roomName"], "Jo", ttl=-(6 * 3600 - 60))
    response = local.client.post(
        f"{local.api}/participants/token/refresh",
        json=token_body(room, "Jo"),
        headers=[("cookie", "theme=dark"), ("cookie", f"OvMeetParticipantToken={expired}")],
    )
    assert response.status_code == 200, response.text


def test_refresh_for_someone_not_in_the_room_is_404(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn
) -> None:
    expired = livekit_token(room["roomName"], "Nobody", ttl=-5)
    response = request_token(
        local, token_body(room, "Nobody"), {"OvMeetParticipantToken": expired}, refresh=True
    )
    assert response.status_code == 404
    assert response.json() == {
        "name": "Participant Error",
        "message": f"Participant 'Nobody' not found in room '{room['roomName']}'",
    }


def test_refresh_checks_room_and_secret_first(local: Ovmeet, room: dict[str, Any]) -> None:
    missing = {"roomName": "gone-1", "participantName": "a", "secret": "s"}
    assert request_token(local, missing, refresh=True).json()["name"] == "Room Error"
    wrong = {"roomName": room["roomName"], "participantName": "a", "secret": "s"}
    assert request_token(local, wrong, refresh=True).status_code == 400
    assert request_token(local, {"roomName": "r"}, refresh=True).status_code == 400


# ---- DELETE /participants/{participantName} ----


def disconnect(server: Target, room: str, name: str, cookie: str | None) -> httpx.Response:
    cookies = {"OvMeetParticipantToken": cookie} if cookie else None
    return server.client.delete(
        f"{server.api}/participants/{name}",
        params={"roomName": room},
        headers=cookie_header(cookies),
    )


def test_a_moderator_disconnects_a_participant(server: Ovmeet, livekit: LiveKitStandIn) -> None:
    room = server.create_room("kick")
    name = room["roomName"]
    moderator = request_token(server, token_body(room, "Mod", "moderator")).json()["token"]
    livekit.add_participant(name, "Troll")
    response = disconnect(server, name, "Troll", moderator)
    assert response.status_code == 204
    assert response.content == b""
    assert "content-type" not in response.headers
    assert not livekit.has_participant(name, "Troll")
    assert ("RemoveParticipant", name, "Troll") in livekit.calls


def test_disconnecting_someone_absent_is_404(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn
) -> None:
    moderator = livekit_token(room["roomName"], "Mod", moderator=True)
    response = disconnect(local, room["roomName"], "Ghost", moderator)
    assert response.status_code == 404
    assert (
        response.json()["message"] == f"Participant 'Ghost' not found in room '{room['roomName']}'"
    )


@pytest.mark.parametrize(
    "token",
    [
        None,
        "garbage",
        "expired",
        "other-key",
        "alg-none",
        "access-token",
        "no-role",
        "roomAdmin as a string",
        "roomJoin as a string",
        "exp as a string",
    ],
)
def test_disconnect_without_a_valid_participant_token_is_401(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn, token: str | None
) -> None:
    name = room["roomName"]
    livekit.add_participant(name, "Target")
    cookie = {
        None: None,
        "garbage": "garbage",
        "expired": livekit_token(name, "Mod", moderator=True, ttl=-5),
        "other-key": AccessToken(LIVEKIT_KEY, "x" * 40)
        .with_identity("Mod")
        .with_metadata('{"role": "moderator"}')
        .with_grants(VideoGrants(room_join=True, room=name, room_admin=True))
        .to_jwt(),
        "alg-none": jwt.encode(
            {
                "sub": "Mod",
                "iss": LIVEKIT_KEY,
                "exp": time.time() + 60,
                "video": {"roomJoin": True, "room": name, "roomAdmin": True},
                "metadata": '{"role": "moderator"}',
            },
            None,
            algorithm="none",
        ),
        "access-token": access_cookie(local)["OvMeetAccessToken"],
        "no-role": AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
        .with_identity("Mod")
        .with_grants(VideoGrants(room_join=True, room=name, room_admin=True))
        .to_jwt(),
        # Signed with the real secret, but grants LiveKit would read otherwise than we would.
        "roomAdmin as a string": signed_claims(
            {"roomJoin": True, "room": name, "roomAdmin": "false"}
        ),
        "roomJoin as a string": signed_claims(
            {"roomJoin": "true", "room": name, "roomAdmin": True}
        ),
        "exp as a string": signed_claims(
            {"roomJoin": True, "room": name, "roomAdmin": True}, exp=str(int(time.time()) + 60)
        ),
    }[token]
    response = disconnect(local, name, "Target", cookie)
    assert response.status_code == 401
    assert livekit.has_participant(name, "Target")
    assert livekit.room_calls() == []


@pytest.mark.parametrize("who", ["publisher", "moderator-of-another-room"])
def test_disconnect_by_a_non_moderator_of_the_room_is_403(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn, who: str
) -> None:
    name = room["roomName"]
    livekit.add_participant(name, "Target")
    cookie = (
        livekit_token(name, "Pub")
        if who == "publisher"
        else livekit_token("other-room", "Mod", moderator=True)
    )
    response = disconnect(local, name, "Target", cookie)
    assert response.status_code == 403
    assert response.json()["name"] == "Authentication Error"
    assert response.json()["message"].startswith("Insufficient permissions")
    assert livekit.has_participant(name, "Target")


def test_disconnect_needs_the_room_name(local: Ovmeet, room: dict[str, Any]) -> None:
    cookie = livekit_token(room["roomName"], "Mod", moderator=True)
    response = local.client.delete(
        f"{local.api}/participants/x", headers=cookie_header({"OvMeetParticipantToken": cookie})
    )
    assert response.status_code == 400
    assert "roomName" in response.json()["message"]


def test_disconnect_when_livekit_fails_is_503(
    local: Ovmeet, room: dict[str, Any], livekit: LiveKitStandIn
) -> None:
    livekit.add_participant(room["roomName"], "Target")
    livekit.fault = Fault(status=500)
    cookie = livekit_token(room["roomName"], "Mod", moderator=True)
    assert_livekit_failed(
        disconnect(local, room["roomName"], "Target", cookie), "RemoveParticipant"
    )
