"""Who may call what: the access table covers every operation, agrees with the specs, and holds
for every operation and every kind of caller (in process, against the real app)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ovmeet.access import (
    RULES,
    Credential,
    Principal,
    anyone,
    authorize,
    only,
)
from ovmeet.app import load_spec
from ovmeet.config import User
from ovmeet.errors import BadRequest, Forbidden, Unauthorized
from ovmeet.tokens import Participant, Session
from ovmeet.web.paths import SPECS
from tests.conftest import AppFactory
from tests.helpers import cookie_header, livekit_token, login, request_token, token_body
from tests.inprocess import App
from tests.livekit_standin import LiveKitStandIn
from tests.livekit_webhooks import egress_event, signed
from tests.media import make_mp4
from tests.processes import ADMIN, USER

API_KEY = "test-meet-api-key-5b1f0c"


def operations() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every operation of every served spec: operationId -> (spec, operation)."""
    found = {}
    for spec in SPECS:
        for path in load_spec(spec)["paths"].values():
            for operation in path.values():
                found[operation["operationId"]] = (spec, operation)
    return found


def test_every_operation_has_a_rule_and_every_rule_an_operation() -> None:
    assert set(operations()) == set(RULES)


# Each cookie scheme of the specs and the credentials of the table that it carries.
SCHEME_CREDENTIALS = {
    "accessTokenCookie": {Credential.ADMIN, Credential.USER},
    "refreshTokenCookie": {Credential.REFRESH},
    "participantTokenCookie": {Credential.MODERATOR},
}


@pytest.mark.parametrize("operation_id", sorted(RULES))
def test_each_rule_agrees_with_what_its_spec_declares(operation_id: str) -> None:
    _, operation = operations()[operation_id]
    rule = RULES[operation_id]
    security = operation.get("security", [])
    open_to_anyone = not security or {} in security
    assert (Credential.ANYONE in rule.accepts) == open_to_anyone
    if not open_to_anyone:
        declared = set().union(*(SCHEME_CREDENTIALS[name] for req in security for name in req))
        assert rule.accepts <= declared | {Credential.API_KEY}


# ---- authorize(), without HTTP ----

ADMIN_SESSION = Session(User("a", "pw", "ADMIN"), "token-of-admin-1", 2_000_000_000)
USER_SESSION = Session(User("u", "pw", "USER"), "token-of-user-001", 2_000_000_000)


def moderator_of(room: str) -> Participant:
    return Participant("m", room, "moderator")


@pytest.mark.parametrize(
    ("principal", "outcome"),
    [
        (Principal(), Unauthorized),
        (Principal(api_key=True), None),
        (Principal(access=ADMIN_SESSION), None),
        (Principal(access=USER_SESSION), Forbidden),
        (Principal(refresh=ADMIN_SESSION), Unauthorized),
        (Principal(participant=moderator_of("r")), Unauthorized),
    ],
)
def test_api_key_or_admin(principal: Principal, outcome: type[Exception] | None) -> None:
    rule = only(Credential.API_KEY, Credential.ADMIN)
    if outcome is None:
        authorize(rule, principal)
    else:
        with pytest.raises(outcome):
            authorize(rule, principal)


def test_moderator_rules_need_the_room_they_name() -> None:
    rule = only(Credential.MODERATOR, room_parameter="roomName")
    authorize(rule, Principal(participant=moderator_of("r")), "r")
    with pytest.raises(Forbidden, match="only a moderator of room 'other'"):
        authorize(rule, Principal(participant=moderator_of("r")), "other")
    with pytest.raises(Forbidden):
        authorize(rule, Principal(participant=Participant("p", "r", "publisher")), "r")
    with pytest.raises(BadRequest, match="'roomName' parameter is required"):
        authorize(rule, Principal(participant=moderator_of("r")), None)
    with pytest.raises(Unauthorized, match="OvMeetParticipantToken"):
        authorize(rule, Principal(access=ADMIN_SESSION), "r")


def test_a_moderator_rule_must_name_its_room_parameter() -> None:
    with pytest.raises(ValueError, match="room parameter"):
        only(Credential.MODERATOR)
    with pytest.raises(ValueError, match="room parameter"):
        only(Credential.ADMIN, room_parameter="roomName")


def test_who_is_refused_is_told_what_would_do() -> None:
    with pytest.raises(Unauthorized) as refused:
        authorize(only(Credential.ADMIN, Credential.USER, Credential.API_KEY), Principal())
    assert refused.value.message == (
        "Unauthorized: this operation needs an OvMeetAccessToken cookie of role ADMIN or USER"
        " or the X-API-KEY header"
    )
    authorize(anyone(), Principal())


# ---- every operation x every kind of caller, through the app ----

CALLERS = [
    "nobody",
    "admin",
    "user",
    "refresh cookie",
    "moderator",
    "publisher",
    "moderator of another room",
    "api key",
    "wrong api key",
]
OK = "passes"  # the operation's own answer: anything but the access check's 401 or 403

# What each caller gets, written out by hand (not derived from the table under test).
EXPECTED: dict[str, dict[str, int | str]] = {
    "generateParticipantToken": dict.fromkeys(CALLERS, OK),
    "refreshParticipantToken": dict.fromkeys(CALLERS, OK),
    "login": dict.fromkeys(CALLERS, OK),
    "logout": dict.fromkeys(CALLERS, OK),
    "receiveWebhook": dict.fromkeys(CALLERS, OK),
    "disconnectParticipant": {
        **dict.fromkeys(CALLERS, 401),
        "moderator": OK,
        "publisher": 403,
        "moderator of another room": 403,
    },
    "getRecordingStream": {**dict.fromkeys(CALLERS, 401), "admin": OK, "user": 403},
    "refreshAccessToken": {**dict.fromkeys(CALLERS, 401), "refresh cookie": OK},
    "getProfile": {**dict.fromkeys(CALLERS, 401), "admin": OK, "user": OK},
}


@dataclass
class World:
    """An app with a room, a recording, a participant of each kind, and a logged-in user each."""

    app: App
    livekit: LiveKitStandIn
    room: dict[str, Any]
    recording_id: str
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp4(tmp_path_factory.mktemp("access") / "clip.mp4", seconds=1)


@pytest.fixture
def world(apps: AppFactory, livekit: LiveKitStandIn, clip: Path) -> World:
    app = apps(MEET_API_KEY=API_KEY)
    room = app.create_room("access")
    other = app.create_room("elsewhere")
    recording = app.import_recording(clip, room["roomName"])

    def participant(of: dict[str, Any], name: str, role: str) -> dict[str, str]:
        response = request_token(app, token_body(of, name, role))
        assert response.status_code == 200, response.text
        return {"OvMeetParticipantToken": response.json()["token"]}

    admin, user = login(app, ADMIN), login(app, USER)
    cookies: dict[str, dict[str, str] | None] = {
        "nobody": None,
        "admin": {"OvMeetAccessToken": admin["OvMeetAccessToken"]},
        "user": {"OvMeetAccessToken": user["OvMeetAccessToken"]},
        "refresh cookie": {"OvMeetRefreshToken": admin["OvMeetRefreshToken"]},
        "moderator": participant(room, "caller-mod", "moderator"),
        "publisher": participant(room, "caller-pub", "publisher"),
        "moderator of another room": participant(other, "caller-mod", "moderator"),
        "api key": None,
        "wrong api key": None,
    }
    headers = {caller: cookie_header(value) for caller, value in cookies.items()}
    headers["api key"]["x-api-key"] = API_KEY
    headers["wrong api key"]["x-api-key"] = API_KEY + "x"
    livekit.calls.clear()
    return World(app, livekit, room, recording["recordingId"], headers)


def call(world: World, operation_id: str, headers: dict[str, str]) -> httpx.Response:
    """One well-formed request to `operation_id`, as a legitimate caller would make it."""
    client, api, room = world.app.client, world.app.api, world.room
    name = room["roomName"]
    if operation_id == "generateParticipantToken":
        body = token_body(room, f"new-{len(world.livekit.calls)}")
        return client.post(f"{api}/participants/token", json=body, headers=headers)
    if operation_id == "refreshParticipantToken":
        world.livekit.add_participant(name, "returning")
        body = token_body(room, "returning")
        # The participant's own expired token, on a Cookie line of its own after the caller's.
        previous = f"OvMeetParticipantToken={livekit_token(name, 'returning', ttl=-5)}"
        lines = [*headers.items(), ("cookie", previous)]
        return client.post(f"{api}/participants/token/refresh", json=body, headers=lines)
    if operation_id == "disconnectParticipant":
        world.livekit.add_participant(name, "target")
        url = f"{api}/participants/target"
        return client.delete(url, params={"roomName": name}, headers=headers)
    if operation_id == "getRecordingStream":
        return client.get(f"{api}/recordings/{world.recording_id}/stream", headers=headers)
    if operation_id == "login":
        credentials = {"username": USER[0], "password": USER[1]}
        return client.post(f"{api}/auth/login", json=credentials, headers=headers)
    if operation_id in ("logout", "refreshAccessToken"):
        path = "logout" if operation_id == "logout" else "refresh"
        return client.post(f"{api}/auth/{path}", headers=headers)
    if operation_id == "getProfile":
        return client.get(f"{api}/auth/profile", headers=headers)
    assert operation_id == "receiveWebhook", operation_id
    event = egress_event("egress_started", name, "EG_access", "u1", "EGRESS_STARTING")
    content, signature = signed(event)
    return client.post(
        f"{world.app.base_url}/livekit/webhook", content=content, headers={**headers, **signature}
    )


def test_the_expectations_cover_every_operation() -> None:
    assert set(EXPECTED) == set(RULES)


@pytest.mark.parametrize("operation_id", sorted(EXPECTED))
def test_every_caller_of_every_operation(world: World, operation_id: str) -> None:
    for caller, expected in EXPECTED[operation_id].items():
        response = call(world, operation_id, world.headers[caller])
        if expected == OK:
            assert response.status_code < 400, (caller, response.status_code, response.text)
        else:
            assert response.status_code == expected, (caller, response.text)
            assert response.json()["message"].startswith(
                "Unauthorized" if expected == 401 else "Insufficient permissions"
            )
            assert "set-cookie" not in response.headers
