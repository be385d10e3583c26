"""Who may call what: the access table covers every operation, agrees with the specs, and holds
for every operation and every kind of caller (in process, against the real app)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ovmeet.auth.access import (
    RULES,
    Credential,
    Principal,
    anyone,
    authorize,
    in_force,
    only,
)
from ovmeet.auth.tokens import Participant, Session
from ovmeet.preferences.store import Preferences, initial_document
from ovmeet.support.config import Config, User
from ovmeet.support.errors import BadRequest, Forbidden, Unauthorized
from ovmeet.web.app import load_spec
from ovmeet.web.paths import SPECS
from tests.conftest import AppFactory, storage_env
from tests.support.helpers import (
    cookie_header,
    livekit_token,
    login,
    request_token,
    secret,
    token_body,
)
from tests.support.inprocess import App
from tests.support.livekit_standin import LiveKitStandIn
from tests.support.livekit_webhooks import egress_event, signed
from tests.support.media import make_mp4
from tests.support.processes import ADMIN, USER, SeaweedFS

API_KEY = "test-meet-api-key-5b1f0c"
ADMIN_KEY = {"x-api-key": API_KEY}


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
    "apiKeyInHeader": {Credential.API_KEY},
    "accessTokenCookie": {Credential.ADMIN, Credential.USER},
    "participantTokenCookie": {Credential.MODERATOR, Credential.PARTICIPANT},
}


@pytest.mark.parametrize("operation_id", sorted(RULES))
def test_each_rule_agrees_with_what_its_spec_declares(operation_id: str) -> None:
    _, operation = operations()[operation_id]
    rule = RULES[operation_id]
    security = operation.get("security", [])
    open_to_anyone = not security or {} in security
    # A rule that follows the room creation policy is open to anyone when the policy says so.
    assert (Credential.ANYONE in rule.accepts or rule.room_creation_policy) == open_to_anyone
    declared = set().union(
        *(SCHEME_CREDENTIALS.get(name, set()) for req in security for name in req)
    )
    if not open_to_anyone:
        assert rule.accepts <= declared | {Credential.API_KEY}
    assert (Credential.API_KEY in rule.accepts) == (Credential.API_KEY in declared)


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


@pytest.mark.parametrize(
    ("allow", "require_login", "added"),
    [(True, True, Credential.USER), (True, False, Credential.ANYONE), (False, True, None)],
)
def test_the_room_creation_policy_widens_only_the_rules_that_follow_it(
    allow: bool, require_login: bool, added: Credential | None
) -> None:
    document = initial_document(Config())
    document["securityPreferences"]["roomCreationPolicy"] = {
        "allowRoomCreation": allow,
        "requireAuthentication": require_login,
    }
    preferences = Preferences(document)
    follows = only(Credential.API_KEY, Credential.ADMIN, room_creation_policy=True)
    expected = follows.accepts | ({added} if added else set())
    assert in_force(follows, preferences).accepts == expected
    fixed = only(Credential.API_KEY, Credential.ADMIN)
    assert in_force(fixed, preferences) == fixed


def test_who_is_refused_is_told_what_would_do() -> None:
    with pytest.raises(Unauthorized) as refused:
        authorize(only(Credential.ADMIN, Credential.USER, Credential.API_KEY), Principal())
    assert refused.value.message == (
        "This operation needs an OvMeetAccessToken cookie of role ADMIN or USER"
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
API_KEY_OR_ADMIN: dict[str, int | str] = {
    **dict.fromkeys(CALLERS, 401),
    "admin": OK,
    "user": 403,
    "api key": OK,
}

MODERATOR_OF_THE_ROOM: dict[str, int | str] = {
    **dict.fromkeys(CALLERS, 401),
    "moderator": OK,
    "publisher": 403,
    "moderator of another room": 403,
}

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
    "getParticipantRole": dict.fromkeys(CALLERS, OK),
    # Without a valid refresh cookie: 400, never 401 (the front end would loop on refreshes).
    "refreshAccessToken": {**dict.fromkeys(CALLERS, 400), "refresh cookie": OK},
    "getProfile": {**dict.fromkeys(CALLERS, 401), "admin": OK, "user": OK},
    # The default room creation policy: a logged-in USER may create rooms too.
    "createRoom": {**API_KEY_OR_ADMIN, "user": OK},
    "getRooms": API_KEY_OR_ADMIN,
    "getRoom": {
        **API_KEY_OR_ADMIN,
        "moderator": OK,
        "publisher": 403,
        "moderator of another room": 403,
    },
    "updateRoom": API_KEY_OR_ADMIN,
    # Every caller deletes a room of its own making here: a moderator's is another room.
    # (A moderator deleting its own room: tests/test_embedding.py.)
    "deleteRoom": {
        **API_KEY_OR_ADMIN,
        "moderator": 403,
        "publisher": 403,
        "moderator of another room": 403,
    },
    "getSecurityPreferences": dict.fromkeys(CALLERS, OK),
    "updateSecurityPreferences": API_KEY_OR_ADMIN,
    "getWebhookPreferences": API_KEY_OR_ADMIN,
    "updateWebhookPreferences": API_KEY_OR_ADMIN,
    "getAppearancePreferences": API_KEY_OR_ADMIN,
    "updateAppearancePreferences": API_KEY_OR_ADMIN,
    # A moderator of the recording's room only (its participant cookie).
    "createRecording": MODERATOR_OF_THE_ROOM,
    "stopRecording": MODERATOR_OF_THE_ROOM,
    "getRecordings": API_KEY_OR_ADMIN,
    "getRecording": API_KEY_OR_ADMIN,
    "deleteRecording": API_KEY_OR_ADMIN,
    "bulkDeleteRecordings": API_KEY_OR_ADMIN,
}


@dataclass
class World:
    """An app with a room, a recording, a participant of each kind, and a logged-in user each."""

    app: App
    livekit: LiveKitStandIn
    room: dict[str, Any]
    recording_id: str
    headers: dict[str, dict[str, str]]
    clip: Path
    active: list[str] = field(default_factory=list)  # a recording started for stopRecording


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mp4(tmp_path_factory.mktemp("access") / "clip.mp4", seconds=1)


@pytest.fixture
def world(
    apps: AppFactory,
    livekit: LiveKitStandIn,
    clip: Path,
    backend: str,
    tmp_path: Path,
    seaweed_starting: Future[SeaweedFS],
) -> World:
    return make_world(apps, livekit, clip, storage_env(backend, tmp_path, seaweed_starting))


def make_world(apps: AppFactory, livekit: LiveKitStandIn, clip: Path, env: dict[str, str]) -> World:
    """An app with a room, a recording and every kind of caller's credentials."""
    app = apps(MEET_API_KEY=API_KEY, **env)
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
    return World(app, livekit, room, recording["recordingId"], headers, clip)


Request = Callable[["World", dict[str, str]], httpx.Response]


def _public(world: World) -> str:
    return f"{world.app.base_url}/meet/api/v1"


def _new_participant_token(world: World, headers: dict[str, str]) -> httpx.Response:
    body = token_body(world.room, f"new-{len(world.livekit.calls)}")
    return world.app.client.post(f"{world.app.api}/participants/token", json=body, headers=headers)


def _refreshed_participant_token(world: World, headers: dict[str, str]) -> httpx.Response:
    name = world.room["roomName"]
    world.livekit.add_participant(name, "returning")
    # The participant's own expired token, on a Cookie line of its own after the caller's.
    previous = f"OvMeetParticipantToken={livekit_token(name, 'returning', ttl=-5)}"
    lines = [*headers.items(), ("cookie", previous)]
    body = token_body(world.room, "returning")
    return world.app.client.post(
        f"{world.app.api}/participants/token/refresh", json=body, headers=lines
    )


def _disconnected_participant(world: World, headers: dict[str, str]) -> httpx.Response:
    name = world.room["roomName"]
    world.livekit.add_participant(name, "target")
    url = f"{world.app.api}/participants/target"
    return world.app.client.delete(url, params={"roomName": name}, headers=headers)


def _stopped_recording(world: World, headers: dict[str, str]) -> httpx.Response:
    if not world.active:
        body = {"roomId": world.room["roomName"]}
        moderator = world.headers["moderator"]
        started = world.app.client.post(
            f"{_public(world)}/recordings", json=body, headers=moderator
        )
        assert started.status_code == 200, started.text
        world.active.append(started.json()["recordingId"])
    return world.app.client.put(f"{_public(world)}/recordings/{world.active[0]}", headers=headers)


def _deleted_recording(world: World, headers: dict[str, str]) -> httpx.Response:
    doomed = world.app.import_recording(world.clip, world.room["roomName"])["recordingId"]
    return world.app.client.delete(f"{_public(world)}/recordings/{doomed}", headers=headers)


def _deleted_recordings(world: World, headers: dict[str, str]) -> httpx.Response:
    doomed = world.app.import_recording(world.clip, world.room["roomName"])["recordingId"]
    url = f"{_public(world)}/recordings?recordingIds={doomed}"
    return world.app.client.delete(url, headers=headers)


def _updated_preferences(section: str) -> Request:
    def update(world: World, headers: dict[str, str]) -> httpx.Response:
        url = f"{_public(world)}/preferences/{section}"
        current = world.app.client.get(url, headers=ADMIN_KEY).json()
        return world.app.client.put(url, json=current, headers=headers)

    return update


def _received_webhook(world: World, headers: dict[str, str]) -> httpx.Response:
    event = egress_event(
        "egress_started", world.room["roomName"], "EG_access", "u1", "EGRESS_STARTING"
    )
    content, signature = signed(event)
    url = f"{world.app.base_url}/livekit/webhook"
    return world.app.client.post(url, content=content, headers={**headers, **signature})


def _plain(
    method: str,
    api: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    with_secret: bool = False,
    follow_redirects: bool = True,
) -> Request:
    """A request with no set-up to `api` ("internal" or "public"); `path` may name {room} and
    {recording}; `with_secret`: the publisher's secret as the query."""

    def send(world: World, headers: dict[str, str]) -> httpx.Response:
        base = world.app.api if api == "internal" else _public(world)
        url = base + path.format(room=world.room["roomName"], recording=world.recording_id)
        params = {"secret": secret(world.room, "publisher")} if with_secret else None
        return world.app.client.request(
            method,
            url,
            headers=headers,
            json=body,
            params=params,
            follow_redirects=follow_redirects,
        )

    return send


def _started_recording(world: World, headers: dict[str, str]) -> httpx.Response:
    body = {"roomId": world.room["roomName"]}
    return world.app.client.post(f"{_public(world)}/recordings", json=body, headers=headers)


def _deleted_room(world: World, headers: dict[str, str]) -> httpx.Response:
    doomed = world.app.create_room("doomed")["roomName"]  # a room of its own each time
    return world.app.client.delete(f"{_public(world)}/rooms/{doomed}", headers=headers)


# One well-formed request to each operation, as a legitimate caller would make it.
REQUESTS: dict[str, Request] = {
    "generateParticipantToken": _new_participant_token,
    "refreshParticipantToken": _refreshed_participant_token,
    "disconnectParticipant": _disconnected_participant,
    "getRecordingStream": _plain(
        "GET", "internal", "/recordings/{recording}/stream", follow_redirects=False
    ),
    "login": _plain(
        "POST", "internal", "/auth/login", body={"username": USER[0], "password": USER[1]}
    ),
    "logout": _plain("POST", "internal", "/auth/logout"),
    "refreshAccessToken": _plain("POST", "internal", "/auth/refresh"),
    "getProfile": _plain("GET", "internal", "/auth/profile"),
    "getParticipantRole": _plain(
        "GET", "internal", "/rooms/{room}/participant-role", with_secret=True
    ),
    "createRoom": _plain(
        "POST",
        "public",
        "/rooms",
        body={"expirationDate": 4_000_000_000_000, "roomNamePrefix": "made"},
    ),
    "getRooms": _plain("GET", "public", "/rooms"),
    "getRoom": _plain("GET", "public", "/rooms/{room}"),
    "updateRoom": _plain(
        "PUT", "public", "/rooms/{room}", body={"chatPreferences": {"enabled": True}}
    ),
    "deleteRoom": _deleted_room,
    "createRecording": _started_recording,
    "stopRecording": _stopped_recording,
    "getRecordings": _plain("GET", "public", "/recordings"),
    "getRecording": _plain("GET", "public", "/recordings/{recording}"),
    "deleteRecording": _deleted_recording,
    "bulkDeleteRecordings": _deleted_recordings,
    "getSecurityPreferences": _plain("GET", "public", "/preferences/security"),
    "updateSecurityPreferences": _updated_preferences("security"),
    "getWebhookPreferences": _plain("GET", "public", "/preferences/webhooks"),
    "updateWebhookPreferences": _updated_preferences("webhooks"),
    "getAppearancePreferences": _plain("GET", "public", "/preferences/appearance"),
    "updateAppearancePreferences": _updated_preferences("appearance"),
    "receiveWebhook": _received_webhook,
}


def call(world: World, operation_id: str, headers: dict[str, str]) -> httpx.Response:
    """One well-formed request to `operation_id`, as a legitimate caller would make it."""
    return REQUESTS[operation_id](world, headers)


def test_the_expectations_and_requests_cover_every_operation() -> None:
    assert set(EXPECTED) == set(REQUESTS) == set(RULES)


@pytest.mark.parametrize("operation_id", sorted(EXPECTED))
def test_every_caller_of_every_operation(world: World, operation_id: str) -> None:
    check_every_caller(world, operation_id)


@pytest.mark.parametrize(
    ("backend", "delivery", "handed_over"),
    [("s3", "redirect", 302), ("local", "accel", 200), ("s3", "accel", 200)],
)
def test_every_caller_of_the_stream_in_every_delivery_mode(
    apps: AppFactory,
    livekit: LiveKitStandIn,
    clip: Path,
    backend: str,
    delivery: str,
    handed_over: int,
    tmp_path: Path,
    seaweed_starting: Future[SeaweedFS],
) -> None:
    """Who may play a recording does not depend on how its bytes leave."""
    env = storage_env(backend, tmp_path, seaweed_starting)
    world = make_world(apps, livekit, clip, {**env, "MEET_RECORDING_DELIVERY": delivery})
    check_every_caller(world, "getRecordingStream")
    admitted = call(world, "getRecordingStream", world.headers["admin"])
    assert admitted.status_code == handed_over, admitted.text
    assert admitted.content == b""
    handed = admitted.headers.get("location") or admitted.headers.get("x-accel-redirect")
    assert handed and world.recording_id.split("--")[0] in handed


def check_every_caller(world: World, operation_id: str) -> None:
    """Each kind of caller gets what EXPECTED says for `operation_id`."""
    for caller, expected in EXPECTED[operation_id].items():
        response = call(world, operation_id, world.headers[caller])
        if expected == OK:
            assert response.status_code < 400, (caller, response.status_code, response.text)
        elif expected not in (401, 403):  # the operation's own refusal
            assert response.status_code == expected, (caller, response.text)
        else:
            assert response.status_code == expected, (caller, response.text)
            assert response.json()["name"] == "Authentication Error", response.text
            assert "set-cookie" not in response.headers
