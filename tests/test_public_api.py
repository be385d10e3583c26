"""The public REST API v1 (rooms, preferences) and the participant-role lookup, on both
storage backends: what a console, a front end and an application get, and what bad input gets."""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import AppFactory, Servers, storage_env
from tests.support.helpers import (
    access_cookie,
    cookie_header,
    participant_claims,
    request_token,
    secret,
    token_body,
)
from tests.support.inprocess import App
from tests.support.livekit_standin import Fault, LiveKitStandIn
from tests.support.media import make_mp4
from tests.support.processes import USER, SeaweedFS

API_KEY = "public-api-test-key-91c2"
KEY = {"x-api-key": API_KEY}
FUTURE = 4_000_000_000_000  # ms: the year 2096


@pytest.fixture
def meet(
    apps: AppFactory, backend: str, tmp_path: Path, seaweed_starting: Future[SeaweedFS]
) -> App:
    return apps(MEET_API_KEY=API_KEY, **storage_env(backend, tmp_path, seaweed_starting))


def public(app: App) -> str:
    return f"{app.base_url}/meet/api/v1"


def create(app: App, body: dict[str, Any], headers: dict[str, str] = KEY) -> httpx.Response:
    return app.client.post(f"{public(app)}/rooms", json=body, headers=headers)


def room_names(app: App) -> list[str]:
    response = app.client.get(f"{public(app)}/rooms", headers=KEY)
    assert response.status_code == 200
    return [room["roomName"] for room in response.json()]


# ---- rooms ----


def test_create_room_answers_the_room_the_front_end_reads(meet: App) -> None:
    response = create(
        meet,
        {
            "expirationDate": FUTURE,
            "roomNamePrefix": "Team\tWeekly  sync!",
            "maxParticipants": 8,
            "preferences": {"chatPreferences": {"enabled": False}},
        },
    )
    assert response.status_code == 200, response.text
    room = response.json()
    assert room["roomNamePrefix"] == "Team-Weekly-sync"
    assert room["roomName"].startswith("Team-Weekly-sync-")
    assert room["expirationDate"] == FUTURE and room["maxParticipants"] == 8
    assert abs(room["creationDate"] - time.time() * 1000) < 60_000
    assert room["preferences"] == {
        "chatPreferences": {"enabled": False},
        "recordingPreferences": {"enabled": True},
        "virtualBackgroundPreferences": {"enabled": True},
    }
    base = meet.config().base_url
    for role in ("moderator", "publisher"):
        url = room[f"{role}RoomUrl"]
        assert url.startswith(f"{base}/room/{room['roomName']}?secret=")
    assert secret(room, "moderator") != secret(room, "publisher")
    assert room["roomName"] in room_names(meet)


@pytest.mark.parametrize(
    ("body", "details"),
    [
        (
            {"expirationDate": 1_600_000_000_000},  # 2020
            [("expirationDate", "Expiration date must be in the future")],
        ),
        (
            {"expirationDate": 1},
            [("expirationDate", "1 is less than the minimum of 1577836800000")],
        ),
        (
            {"expirationDate": "tomorrow", "roomNamePrefix": 7},
            [
                ("expirationDate", "'tomorrow' is not of type 'number'"),
                ("roomNamePrefix", "7 is not of type 'string'"),
            ],
        ),
        ({"roomNamePrefix": "x"}, [("expirationDate", "'expirationDate' is a required property")]),
        ({"expirationDate": FUTURE, "maxParticipants": 0}, [("maxParticipants", None)]),
        ({"expirationDate": FUTURE, "maxParticipants": 2.5}, [("maxParticipants", None)]),
        (
            {"expirationDate": FUTURE, "preferences": {"chatPreferences": {"enabled": "yes"}}},
            [("preferences.chatPreferences.enabled", "'yes' is not of type 'boolean'")],
        ),
        ([1, 2], [("", "[1, 2] is not of type 'object'")]),
    ],
)
def test_invalid_room_options_are_422_naming_each_field_and_create_nothing(
    meet: App, body: Any, details: list[tuple[str, str | None]]
) -> None:
    before = room_names(meet)
    response = create(meet, body)
    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "Unprocessable Entity"
    assert answer["message"] == "Invalid request body"
    got = [(d["field"], d["message"]) for d in answer["details"]]
    assert [field for field, _ in got] == [field for field, _ in details]
    for (_, message), (_, expected) in zip(got, details, strict=True):
        assert expected is None or message == expected
    assert room_names(meet) == before


def test_a_body_that_is_not_json_is_400(meet: App) -> None:
    response = meet.client.post(
        f"{public(meet)}/rooms",
        content=b'{"expirationDate": ',
        headers={**KEY, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("The body is not valid JSON")


def test_rooms_list_is_an_array_filtered_by_fields_and_pages_on_request(meet: App) -> None:
    names = [meet.create_room(f"list{i}", created_at=1_000 + i)["roomName"] for i in range(5)]
    assert room_names(meet) == names  # oldest first
    filtered = meet.client.get(
        f"{public(meet)}/rooms", params={"fields": "roomName,nope"}, headers=KEY
    )
    assert filtered.json() == [{"roomName": name} for name in names]
    assert "x-total-count" not in filtered.headers
    page = meet.client.get(f"{public(meet)}/rooms", params={"page": 2, "limit": 2}, headers=KEY)
    assert [room["roomName"] for room in page.json()] == names[2:4]
    assert (page.headers["x-total-count"], page.headers["x-total-pages"]) == ("5", "3")
    assert page.headers["x-current-page"] == "2"
    beyond = meet.client.get(f"{public(meet)}/rooms", params={"page": 9}, headers=KEY)
    assert beyond.json() == [] and beyond.headers["x-total-pages"] == "1"


def test_a_trailing_slash_is_answered_directly_as_the_release_did(meet: App) -> None:
    room = meet.create_room("slash")
    listed = meet.client.get(f"{public(meet)}/rooms/", headers=KEY)  # what the front end calls
    assert listed.status_code == 200, listed.text
    assert room["roomName"] in [r["roomName"] for r in listed.json()]
    made = create(meet, {"expirationDate": FUTURE, "roomNamePrefix": "slashed"})
    assert made.status_code == 200
    again = meet.client.post(f"{public(meet)}/rooms/", json={"expirationDate": FUTURE}, headers=KEY)
    assert again.status_code == 200, again.text
    one = meet.client.get(f"{public(meet)}/rooms/{room['roomName']}/", headers=KEY)
    assert one.status_code == 200 and one.json()["roomName"] == room["roomName"]
    recordings = meet.client.get(f"{public(meet)}/recordings/", headers=KEY)
    assert recordings.status_code == 200 and "recordings" in recordings.json()
    docs = meet.client.get(f"{public(meet)}/ui", follow_redirects=False)  # its own rule
    assert docs.status_code == 307 and docs.headers["location"] == "/meet/api/v1/ui/"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page": "two"}, "page"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"x": 1}, "x"),
    ],
)
def test_bad_list_parameters_are_422(meet: App, params: dict[str, Any], field: str) -> None:
    response = meet.client.get(f"{public(meet)}/rooms", params=params, headers=KEY)
    assert response.status_code == 422
    assert response.json()["message"] == "Invalid request parameters"
    assert [d["field"] for d in response.json()["details"]] == [field]


def test_get_room_with_fields_and_unknown_rooms(meet: App) -> None:
    room = meet.create_room("get")
    url = f"{public(meet)}/rooms/{room['roomName']}"
    assert meet.client.get(url, headers=KEY).json() == room
    wanted = meet.client.get(
        url, params={"fields": "moderatorRoomUrl,publisherRoomUrl"}, headers=KEY
    ).json()
    assert wanted == {k: room[k] for k in ("moderatorRoomUrl", "publisherRoomUrl")}
    for name in ("missing-room", "..%2F..%2Fetc", "a" * 300):
        response = meet.client.get(f"{public(meet)}/rooms/{name}", headers=KEY)
        assert response.status_code == 404, name
        assert response.json()["name"] in ("Room Error", "Request Error"), name


def test_an_expired_room_is_not_found(meet: App) -> None:
    gone = meet.create_room("old", created_at=1_000, expires_in=60)["roomName"]
    assert meet.client.get(f"{public(meet)}/rooms/{gone}", headers=KEY).status_code == 404
    assert gone not in room_names(meet)


def test_update_room_replaces_the_preferences_given_and_tokens_follow(meet: App) -> None:
    room = meet.create_room("upd")
    url = f"{public(meet)}/rooms/{room['roomName']}"
    change = {"chatPreferences": {"enabled": False}, "recordingPreferences": {"enabled": False}}
    updated = meet.client.put(url, json=change, headers=KEY)
    assert updated.status_code == 200
    assert updated.json()["preferences"] == {
        **change,
        "virtualBackgroundPreferences": {"enabled": True},
    }
    assert meet.client.get(url, headers=KEY).json() == updated.json()
    token = request_token(meet, token_body(room, "after", "moderator")).json()["token"]
    claims = json.loads(participant_claims(token).metadata)
    assert claims["permissions"]["canChat"] is False
    assert claims["permissions"]["canRecord"] is False
    empty = meet.client.put(url, json={}, headers=KEY)
    assert empty.status_code == 422
    missing = meet.client.put(f"{public(meet)}/rooms/nope-room", json=change, headers=KEY)
    assert missing.status_code == 404


def test_delete_room_closes_it_in_livekit_and_keeps_its_recordings(
    meet: App, livekit: LiveKitStandIn, tmp_path: Path
) -> None:
    room = meet.create_room("del")["roomName"]
    recording = meet.import_recording(make_mp4(tmp_path / "clip.mp4", seconds=1), room)
    livekit.add_participant(room, "still-here")
    response = meet.client.delete(f"{public(meet)}/rooms/{room}", headers=KEY)
    assert response.status_code == 204 and response.content == b""
    assert ("DeleteRoom", room, "") in livekit.calls
    assert not livekit.has_participant(room, "still-here")
    assert meet.client.get(f"{public(meet)}/rooms/{room}", headers=KEY).status_code == 404
    stream = meet.client.get(
        f"{meet.api}/recordings/{recording['recordingId']}/stream",
        headers=cookie_header(access_cookie(meet)),
    )
    assert stream.status_code == 200
    again = meet.client.delete(f"{public(meet)}/rooms/{room}", headers=KEY)
    assert again.status_code == 404


def test_a_room_not_live_in_livekit_is_deleted_too(meet: App, livekit: LiveKitStandIn) -> None:
    room = meet.create_room("quiet")["roomName"]
    assert meet.client.delete(f"{public(meet)}/rooms/{room}", headers=KEY).status_code == 204
    assert ("DeleteRoom", room, "") in livekit.calls


def test_when_livekit_fails_the_room_is_kept(meet: App, livekit: LiveKitStandIn) -> None:
    room = meet.create_room("kept")["roomName"]
    livekit.fault = Fault(status=500)
    response = meet.client.delete(f"{public(meet)}/rooms/{room}", headers=KEY)
    assert response.status_code == 503
    assert response.json()["message"] == "LiveKit is not available: DeleteRoom failed"
    livekit.fault = Fault()
    assert room in room_names(meet)


def test_a_moderator_cookie_reads_its_own_room_only(meet: App) -> None:
    room, other = meet.create_room("mine"), meet.create_room("theirs")
    token = request_token(meet, token_body(room, "mod", "moderator")).json()["token"]
    cookie = cookie_header({"OvMeetParticipantToken": token})
    fields = {"fields": "moderatorRoomUrl,publisherRoomUrl"}
    own = meet.client.get(f"{public(meet)}/rooms/{room['roomName']}", params=fields, headers=cookie)
    assert own.status_code == 200 and own.json()["moderatorRoomUrl"] == room["moderatorRoomUrl"]
    elsewhere = meet.client.get(f"{public(meet)}/rooms/{other['roomName']}", headers=cookie)
    assert elsewhere.status_code == 403
    assert meet.client.get(f"{public(meet)}/rooms", headers=cookie).status_code == 401


# ---- participant role ----


def test_participant_role_is_the_role_the_secret_opens(meet: App) -> None:
    room = meet.create_room("role")
    url = f"{meet.api}/rooms/{room['roomName']}/participant-role"
    for role in ("moderator", "publisher"):
        response = meet.client.get(url, params={"secret": secret(room, role)})
        assert response.status_code == 200 and response.json() == role
    wrong = meet.client.get(url, params={"secret": "not-the-secret"})
    assert wrong.status_code == 400 and "Invalid secret" in wrong.json()["message"]
    assert meet.client.get(url).status_code == 400
    unknown = meet.client.get(
        f"{meet.api}/rooms/no-such-room/participant-role", params={"secret": "x"}
    )
    assert unknown.status_code == 404


# ---- preferences ----


def test_security_preferences_are_public_and_partially_updated(meet: App) -> None:
    url = f"{public(meet)}/preferences/security"
    default = {
        "authentication": {"authMode": "none", "method": {"type": "single-user"}},
        "roomCreationPolicy": {"allowRoomCreation": True, "requireAuthentication": True},
    }
    assert meet.client.get(url).json() == default
    policy = {"allowRoomCreation": False, "requireAuthentication": True}
    updated = meet.client.put(url, json={"roomCreationPolicy": policy}, headers=KEY)
    assert updated.status_code == 200, updated.text
    assert meet.client.get(url).json() == {**default, "roomCreationPolicy": policy}
    stored = json.loads(_stored_preferences(meet))
    assert stored["securityPreferences"]["roomCreationPolicy"] == policy


def _stored_preferences(app: App) -> str:
    env = app.env
    if env["MEET_STORAGE"] == "local":
        return (Path(env["MEET_DATA_DIR"]) / "openvidu-meet-preferences.json").read_text()
    import asyncio

    from ovmeet.storage import open_storage

    async def read() -> str:
        storage = open_storage(app.config())
        try:
            return json.dumps(await storage.read_json("openvidu-meet-preferences.json"))
        finally:
            await storage.aclose()

    return asyncio.run(read())


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"authmode": "none"},
        {"authentication": {"authMode": "everyone", "method": {"type": "single-user"}}},
        {"authentication": {"authMode": "none"}},
        {"roomCreationPolicy": {"allowRoomCreation": True}},
    ],
)
def test_bad_security_preferences_are_422_and_change_nothing(meet: App, body: Any) -> None:
    url = f"{public(meet)}/preferences/security"
    before = meet.client.get(url).json()
    response = meet.client.put(url, json=body, headers=KEY)
    assert response.status_code == 422, response.text
    assert response.json()["details"]
    assert meet.client.get(url).json() == before


def test_the_room_creation_policy_decides_who_else_creates_rooms(meet: App) -> None:
    url = f"{public(meet)}/preferences/security"
    user = cookie_header(access_cookie(meet, USER))
    body = {"expirationDate": FUTURE}
    assert create(meet, body, headers=user).status_code == 200  # default: a logged-in USER
    assert create(meet, body, headers={}).status_code == 401
    open_policy = {
        "roomCreationPolicy": {"allowRoomCreation": True, "requireAuthentication": False}
    }
    assert meet.client.put(url, json=open_policy, headers=KEY).status_code == 200
    assert create(meet, body, headers={}).status_code == 200  # anyone, at once
    closed = {"roomCreationPolicy": {"allowRoomCreation": False, "requireAuthentication": False}}
    assert meet.client.put(url, json=closed, headers=KEY).status_code == 200
    assert create(meet, body, headers={}).status_code == 401
    assert create(meet, body, headers=user).status_code == 403
    assert create(meet, body, headers=cookie_header(access_cookie(meet))).status_code == 200
    assert create(meet, body).status_code == 200  # the API key


def test_the_auth_mode_applies_from_the_next_request(meet: App) -> None:
    room = meet.create_room("mode")
    mode = {"authentication": {"authMode": "moderators_only", "method": {"type": "single-user"}}}
    url = f"{public(meet)}/preferences/security"
    assert meet.client.put(url, json=mode, headers=KEY).status_code == 200
    assert request_token(meet, token_body(room, "m1", "moderator")).status_code == 401
    assert request_token(meet, token_body(room, "p1", "publisher")).status_code == 200


def test_webhook_and_appearance_preferences_round_trip(meet: App) -> None:
    url = f"{public(meet)}/preferences/webhooks"
    assert meet.client.get(url, headers=KEY).json() == {
        "enabled": False,
        "url": "http://localhost:5080/webhook",
    }
    hook = {"enabled": True, "url": "https://app.example.com/hooks/meet"}
    assert meet.client.put(url, json=hook, headers=KEY).status_code == 200
    assert meet.client.get(url, headers=KEY).json() == hook
    for bad in (
        {"enabled": True},
        {"enabled": True, "url": "ftp://x"},
        {"enabled": 1, "url": hook["url"]},
    ):
        assert meet.client.put(url, json=bad, headers=KEY).status_code == 422, bad
    assert meet.client.get(url, headers=KEY).json() == hook
    look = f"{public(meet)}/preferences/appearance"
    assert meet.client.get(look, headers=KEY).json() == {}
    theme = {"theme": "dark", "colors": {"primary": "#0089ab"}}
    assert meet.client.put(look, json=theme, headers=KEY).status_code == 200
    assert meet.client.get(look, headers=KEY).json() == theme
    assert meet.client.get(look).status_code == 401


def test_initial_webhook_preferences_come_from_the_environment(apps: AppFactory) -> None:
    app = apps(MEET_API_KEY=API_KEY, MEET_WEBHOOK_ENABLED="true", MEET_WEBHOOK_URL="http://h:1/x")
    url = f"{public(app)}/preferences/webhooks"
    assert app.client.get(url, headers=KEY).json() == {"enabled": True, "url": "http://h:1/x"}


def test_every_worker_honours_a_change_on_the_next_request(servers: Servers) -> None:
    server = servers.start("local", ("--workers", "2"), MEET_API_KEY=API_KEY)
    url = f"{server.base_url}/meet/api/v1/preferences/security"

    def modes() -> set[str]:  # a new connection each time, so both workers answer
        return {httpx.get(url).json()["authentication"]["authMode"] for _ in range(30)}

    assert modes() == {"none"}  # both workers now hold "none" in their cache
    for mode in ("all_users", "moderators_only", "none"):
        change = {"authentication": {"authMode": mode, "method": {"type": "single-user"}}}
        assert httpx.put(url, json=change, headers=KEY).status_code == 200
        assert modes() == {mode}


# ---- the same preferences from the command line ----


def test_cli_shows_and_sets_preferences_through_the_api_schema(servers: Servers) -> None:
    server = servers.start("local")  # its own: the auth mode changes here
    shown = server.cli("preferences", "show")
    assert shown.returncode == 0, shown.stderr
    assert set(json.loads(shown.stdout)) == {"security", "webhooks", "appearance"}
    change = {"authentication": {"authMode": "all_users", "method": {"type": "single-user"}}}
    done = server.cli("preferences", "set", "security", json.dumps(change))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["authentication"]["authMode"] == "all_users"
    # The running server honours it on its next request (same host: at once).
    url = f"{server.base_url}/meet/api/v1/preferences/security"
    assert server.client.get(url).json()["authentication"]["authMode"] == "all_users"
    bad = server.cli("preferences", "set", "webhooks", '{"enabled": true, "url": "nope"}')
    assert bad.returncode == 1
    assert bad.stderr.startswith("ovmeet: Invalid preferences; url: 'nope' does not match")
    not_json = server.cli("preferences", "set", "appearance", "{")
    assert not_json.returncode == 1 and "not JSON" in not_json.stderr
    assert json.loads(server.cli("preferences", "show", "webhooks").stdout)["url"] != "nope"


@pytest.mark.parametrize("given", ["", " ", "anything", API_KEY])
def test_without_a_configured_key_no_key_opens_anything(app: App, given: str) -> None:
    response = app.client.get(f"{public(app)}/rooms", headers={"x-api-key": given})
    assert response.status_code == 401
