"""People really meet through ovmeet: SDK clients join the real LiveKit server with ovmeet's
tokens, and everything ovmeet does with LiveKit is checked against what that server does.

Egress alone goes to the stand-in (through the router of tests/support/livekit_server.py): a real
Egress worker cannot run here. Each test fails if ovmeet is wrong about LiveKit.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from livekit import api, rtc

from tests.conftest import Servers
from tests.support.client import MeetClient
from tests.support.helpers import (
    cookie_header,
    participant_claims,
    request_token,
    set_cookies,
    token_body,
)
from tests.support.livekit_server import RoutedLiveKit
from tests.support.livekit_standin import LiveKitStandIn
from tests.support.meeting import Attendee, join, publish_tone
from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, Ovmeet

pytestmark = pytest.mark.anyio
API_KEY = "real-livekit-tests-api-key-0123456789abcdef"
# Through the router, on two cores shared with the rest of the suite: LiveKit may be slow.
LIVEKIT_TIMEOUT = "10s"
Reason = rtc.DisconnectReason


@dataclass
class AppHooks:
    """The application's webhook endpoint: what ovmeet told it."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [hook for hook in self.received if hook["event"] == name]


@pytest.fixture(scope="module")
def hooks() -> Iterator[AppHooks]:
    got = AppHooks()

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    got.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks"
    yield got
    httpd.shutdown()


def _start(servers: Servers, real: RoutedLiveKit, **env: str) -> Ovmeet:
    """An ovmeet whose clients join the real server and whose calls go through the router;
    the real server's webhooks reach it."""
    routed = {
        "LIVEKIT_URL": real.server.ws_url,
        "LIVEKIT_URL_PRIVATE": real.router_url,
        "MEET_API_KEY": API_KEY,
        "MEET_LIVEKIT_TIMEOUT": LIVEKIT_TIMEOUT,
    }
    server = servers.start("local", (), **routed, **env)
    real.router.targets.append(f"{server.base_url}/livekit/webhook")
    return server


@pytest.fixture(scope="module")
def meet(servers: Servers, real_livekit: RoutedLiveKit, hooks: AppHooks) -> Ovmeet:
    return _start(servers, real_livekit, MEET_WEBHOOK_ENABLED="true", MEET_WEBHOOK_URL=hooks.url)


@pytest.fixture
async def lkapi(real_livekit: RoutedLiveKit) -> AsyncIterator[api.LiveKitAPI]:
    """LiveKit's own server API, straight to the real server: what LiveKit really holds."""
    client = api.LiveKitAPI(real_livekit.server.url, LIVEKIT_KEY, LIVEKIT_SECRET)
    yield client
    await client.aclose()


@pytest.fixture
def egress(livekit: LiveKitStandIn, meet: Ovmeet, real_livekit: RoutedLiveKit) -> LiveKitStandIn:
    """The Egress stand-in beside the real server: it records rooms live there only, and
    signs its webhooks to ovmeet."""

    async def room_is_live(name: str) -> bool:
        async with api.LiveKitAPI(real_livekit.server.url, LIVEKIT_KEY, LIVEKIT_SECRET) as lk:
            rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[name]))
        return bool(rooms.rooms)

    livekit.room_is_live = room_is_live
    livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    return livekit


async def _room(server: Ovmeet, prefix: str, **options: Any) -> dict[str, Any]:
    return await asyncio.to_thread(server.create_room, prefix, **options)


async def _token(
    server: Ovmeet,
    room: dict[str, Any],
    name: str,
    role: str = "publisher",
    cookies: dict[str, str] | None = None,
) -> httpx.Response:
    return await asyncio.to_thread(request_token, server, token_body(room, name, role), cookies)


async def _enter(
    server: Ovmeet, room: dict[str, Any], name: str, role: str = "publisher"
) -> tuple[Attendee, dict[str, str]]:
    """Ask ovmeet for a token and join with it: the attendee, and the participant cookie."""
    response = await _token(server, room, name, role)
    assert response.status_code == 200, response.text
    cookie = {"OvMeetParticipantToken": set_cookies(response)["OvMeetParticipantToken"]["value"]}
    ws_url = json.loads(participant_claims(response.json()["token"]).metadata)["livekitUrl"]
    return await join(ws_url, response.json()["token"]), cookie


async def _people(lkapi: api.LiveKitAPI, room: str) -> list[api.ParticipantInfo]:
    try:
        answer = await lkapi.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError as error:
        assert error.code == "not_found", error
        return []
    return list(answer.participants)


async def _until_gone(lkapi: api.LiveKitAPI, room: str, identity: str) -> None:
    deadline = time.monotonic() + 20
    while any(p.identity == identity for p in await _people(lkapi, room)):
        assert time.monotonic() < deadline, f"LiveKit still lists {identity} in {room}"
        await asyncio.sleep(0.1)


async def _start_recording(
    server: Ovmeet, room: dict[str, Any], moderator: dict[str, str]
) -> httpx.Response:
    """POST /recordings for the room, with a moderator's participant cookie."""
    body = {"roomId": room["roomName"]}
    return await asyncio.to_thread(
        MeetClient(server, API_KEY).public,
        "POST",
        "/recordings",
        json=body,
        headers=cookie_header(moderator),
    )


# ---- 1. a call ----


async def test_a_token_from_ovmeet_joins_and_the_two_see_and_hear_each_other(
    meet: Ovmeet, lkapi: api.LiveKitAPI
) -> None:
    room = await _room(meet, "call")
    ana, _ = await _enter(meet, room, "Ana", "moderator")
    ben, _ = await _enter(meet, room, "Ben")
    try:
        assert ana.room.local_participant.identity == "Ana"
        assert ana.room.local_participant.name == "Ana"
        metadata = json.loads(ana.room.local_participant.metadata)
        assert metadata["role"] == "moderator"
        assert metadata["permissions"]["canRecord"] is True
        assert json.loads(ben.room.local_participant.metadata)["role"] == "publisher"
        await ana.sees("Ben")
        await ben.sees("Ana")
        await publish_tone(ben)
        await ana.receives_track_of("Ben")
        people = {p.identity: p for p in await _people(lkapi, room["roomName"])}
        assert set(people) == {"Ana", "Ben"}
        for person in people.values():  # the grants LiveKit took from ovmeet's tokens
            grant = person.permission
            assert (grant.can_publish, grant.can_subscribe, grant.can_publish_data) == (
                True,
                True,
                True,
            )
            assert grant.can_update_metadata is True
            assert not grant.hidden and not grant.recorder
        assert json.loads(people["Ben"].metadata)["permissions"]["canRecord"] is False
    finally:
        await ana.leave()
        await ben.leave()


# ---- 2. a name in use, and the same person coming back ----


async def test_a_name_in_use_is_refused_until_livekit_drops_it(
    meet: Ovmeet, lkapi: api.LiveKitAPI
) -> None:
    room = await _room(meet, "names")
    ana, _ = await _enter(meet, room, "Ana")
    ben, ben_cookie = await _enter(meet, room, "Ben")
    try:
        taken = await _token(meet, room, "Ana")
        assert taken.status_code == 409, taken.text
        assert taken.json()["name"] == "Participant Error"
        # Another participant's cookie does not make anyone Ana.
        assert (await _token(meet, room, "Ana", cookies=ben_cookie)).status_code == 409
        await ana.leave()
        await _until_gone(lkapi, room["roomName"], "Ana")
        assert (await _token(meet, room, "Ana")).status_code == 200
    finally:
        await ben.leave()


async def test_the_same_person_reloading_gets_back_in_and_the_stale_connection_ends(
    meet: Ovmeet, lkapi: api.LiveKitAPI
) -> None:
    room = await _room(meet, "reload")
    before, cookie = await _enter(meet, room, "Ana", "moderator")
    # A reload: the browser still holds Ana's participant cookie; LiveKit still lists Ana.
    again = await _token(meet, room, "Ana", "moderator", cookies=cookie)
    assert again.status_code == 200, again.text
    after = await join(meet.env["LIVEKIT_URL"], again.json()["token"])
    try:
        assert await before.disconnected() == Reason.DUPLICATE_IDENTITY
        assert [p.identity for p in await _people(lkapi, room["roomName"])] == ["Ana"]
        assert after.room.isconnected()
    finally:
        await after.leave()


# ---- 3. a moderator disconnects someone ----


async def test_a_moderator_disconnects_a_participant_who_is_removed_by_livekit(
    meet: Ovmeet,
) -> None:
    room = await _room(meet, "kick")
    ana, moderator = await _enter(meet, room, "Ana", "moderator")
    ben, _ = await _enter(meet, room, "Ben")
    url = f"{meet.api}/participants/Ben?roomName={room['roomName']}"
    try:
        removed = meet.client.delete(url, headers=cookie_header(moderator))
        assert removed.status_code == 204, removed.text
        assert await ben.disconnected() == Reason.PARTICIPANT_REMOVED
        again = meet.client.delete(url, headers=cookie_header(moderator))
        assert again.status_code == 404
        assert again.json()["name"] == "Participant Error"
        assert ana.room.isconnected()
    finally:
        await ana.leave()


# ---- 4. refresh in the call ----


async def test_a_token_is_refreshed_after_it_expires_and_the_call_goes_on(
    servers: Servers, real_livekit: RoutedLiveKit
) -> None:
    short = _start(servers, real_livekit, MEET_PARTICIPANT_TOKEN_EXPIRATION="3s")
    room = await _room(short, "refresh")
    ana, ana_cookie = await _enter(short, room, "Ana")
    ben, _ = await _enter(short, room, "Ben")
    try:
        still_valid = await asyncio.to_thread(
            request_token, short, token_body(room, "Ana"), ana_cookie, True
        )
        assert still_valid.status_code == 409, still_valid.text
        await asyncio.sleep(3.5)
        renewed = await asyncio.to_thread(
            request_token, short, token_body(room, "Ana"), ana_cookie, True
        )
        assert renewed.status_code == 200, renewed.text
        assert participant_claims(renewed.json()["token"]).identity == "Ana"
        # The call went on: Ana is still connected, and what she sends still arrives.
        assert ana.room.isconnected()
        await ana.room.local_participant.publish_data(b'{"message": "hi"}', topic="chat")
        assert (await ben.message("chat")).payload == {"message": "hi"}
    finally:
        await ana.leave()
        await ben.leave()
        short.stop()


# ---- 5. deleting a room ends its call ----


async def test_deleting_a_room_through_the_api_or_the_cli_ends_the_call(
    meet: Ovmeet, lkapi: api.LiveKitAPI
) -> None:
    by_api, by_cli = await _room(meet, "del-api"), await _room(meet, "del-cli")
    ana, _ = await _enter(meet, by_api, "Ana")
    ben, _ = await _enter(meet, by_cli, "Ben")
    deleted = await asyncio.to_thread(
        MeetClient(meet, API_KEY).public, "DELETE", f"/rooms/{by_api['roomName']}"
    )
    assert deleted.status_code == 204, deleted.text
    cli = await asyncio.to_thread(meet.cli, "rooms", "delete", by_cli["roomName"])
    assert cli.returncode == 0, cli.stderr
    assert await ana.disconnected() == Reason.ROOM_DELETED
    assert await ben.disconnected() == Reason.ROOM_DELETED
    names = [by_api["roomName"], by_cli["roomName"]]
    assert not (await lkapi.room.list_rooms(api.ListRoomsRequest(names=names))).rooms


# ---- 6. the real server's webhooks ----


async def test_the_real_servers_webhooks_are_accepted_and_a_forged_or_replayed_one_is_not(
    meet: Ovmeet, real_livekit: RoutedLiveKit, hooks: AppHooks
) -> None:
    router = real_livekit.router
    room = await _room(meet, "hooks")
    name = room["roomName"]
    ana, _ = await _enter(meet, room, "Ana")
    await ana.leave()
    finished = await asyncio.to_thread(router.wait_for, name, "room_finished")
    webhook = f"{meet.base_url}/livekit/webhook"
    for event in ("room_started", "participant_joined", "participant_left", "room_finished"):
        delivery = await asyncio.to_thread(router.wait_for, name, event)
        assert delivery.headers["content-type"] == "application/webhook+json"
        assert not delivery.headers["authorization"].startswith("Bearer")  # a bare JWT
        assert delivery.answers[webhook][0] == 200, (event, delivery.answers)
    claims = participant_claims(finished.headers["authorization"])
    assert claims.sha256 == base64.b64encode(hashlib.sha256(finished.body).digest()).decode()
    # Acted on as the README says: the application is told the room finished.
    deadline = time.monotonic() + 15
    while not [h for h in hooks.events("roomFinished") if h["data"]["roomName"] == name]:
        assert time.monotonic() < deadline, f"no roomFinished for {name}: {hooks.received}"
        await asyncio.sleep(0.1)
    replayed = meet.client.post(webhook, content=finished.body, headers=finished.headers)
    assert replayed.status_code == 200 and "already handled" in replayed.text, replayed.text
    forged_token = (
        api.AccessToken(LIVEKIT_KEY, "another-secret-0123456789abcdef-0123")
        .with_sha256(claims.sha256)
        .to_jwt()
    )
    forged = meet.client.post(
        webhook, content=finished.body, headers={**finished.headers, "authorization": forged_token}
    )
    assert forged.status_code == 401
    altered = meet.client.post(
        webhook, content=finished.body.replace(b"hooks", b"hookz"), headers=finished.headers
    )
    assert altered.status_code == 401
    await asyncio.sleep(0.5)
    assert len([h for h in hooks.events("roomFinished") if h["data"]["roomName"] == name]) == 1


# ---- 7. a room's size ----


async def test_a_room_never_holds_more_than_its_max_participants(
    meet: Ovmeet, lkapi: api.LiveKitAPI
) -> None:
    room = await _room(meet, "small", max_participants=2)
    names = [f"P{i}" for i in range(6)]
    tokens = await asyncio.gather(*(_token(meet, room, n) for n in names))
    assert all(t.status_code == 200 for t in tokens), [t.text for t in tokens]
    url = meet.env["LIVEKIT_URL"]
    joined = await asyncio.gather(
        *(join(url, t.json()["token"]) for t in tokens), return_exceptions=True
    )
    inside = [a for a in joined if isinstance(a, Attendee)]
    refused = [e for e in joined if isinstance(e, BaseException)]
    try:
        assert len(inside) == 2, joined
        assert all(isinstance(e, rtc.ConnectError) for e in refused), refused
        assert len(await _people(lkapi, room["roomName"])) == 2
        full = await _token(meet, room, "Late")
        assert full.status_code == 406, full.text
        assert full.json()["name"] == "Room Error"
        assert full.json()["message"] == (
            f"The room '{room['roomName']}' is full: it allows 2 participants at a time"
        )
    finally:
        for attendee in inside:
            await attendee.leave()


# ---- 8. recording signals in the call ----


async def test_participants_are_told_of_the_recording_as_the_release_told_them(
    meet: Ovmeet, egress: LiveKitStandIn
) -> None:
    room = await _room(meet, "signals")
    name = room["roomName"]
    ana, moderator = await _enter(meet, room, "Ana", "moderator")
    ben, _ = await _enter(meet, room, "Ben")
    carol = None
    try:
        start = await _start_recording(meet, room, moderator)
        assert start.status_code == 200, start.text
        recording_id = start.json()["recordingId"]
        started = await ben.message("recordingStarted")
        assert (await ben.message("recordingStarting")).payload["status"] == "STARTING"
        assert started.from_server
        assert started.payload["status"] == "STARTED"
        assert started.payload["id"] == recording_id
        assert started.payload["roomId"] == name
        assert set(started.payload) == {
            "id",
            "roomName",
            "roomId",
            "status",
            "filename",
            "startedAt",
            "endedAt",
            "duration",
            "size",
        }
        # Someone who joins now is told the room is being recorded, and nobody else is.
        carol, _ = await _enter(meet, room, "Carol")
        status = await carol.message("roomStatus")
        assert status.payload == {"isRecordingStarted": True}
        assert "roomStatus" not in ana.topics() + ben.topics()
        stop = await asyncio.to_thread(
            MeetClient(meet, API_KEY).public,
            "PUT",
            f"/recordings/{recording_id}",
            headers=cookie_header(moderator),
        )
        assert stop.status_code == 200, stop.text
        assert (await ana.message("recordingStopping")).payload["status"] == "STOPPING"
        stopped = await ana.message("recordingStopped")
        assert stopped.payload["status"] == "READY" and stopped.payload["size"] > 0
        deleted = await asyncio.to_thread(
            MeetClient(meet, API_KEY).public, "DELETE", f"/recordings/{recording_id}"
        )
        assert deleted.status_code == 204, deleted.text
        assert (await carol.message("recordingDeleted")).payload["id"] == recording_id
        await ben.message("recordingDeleted")
        expected = [
            "recordingStarting",
            "recordingStarted",
            "recordingStopping",
            "recordingStopped",
            "recordingDeleted",
        ]
        assert [t for t in ben.topics() if t in expected] == expected
        # A recording that fails is told too.
        egress.egress_faults.fails_when_active = True
        failing = await _start_recording(meet, room, moderator)
        # It fails 0.2 s after it became ACTIVE: the start sees it ACTIVE, or already failed.
        assert failing.status_code in (200, 503), failing.text
        assert (await ben.message("recordingFailed")).payload["status"] == "FAILED"
    finally:
        for attendee in (ana, ben, carol):
            if attendee is not None:
                await attendee.leave()


async def test_a_recording_of_a_room_nobody_has_joined_is_a_clear_409(
    meet: Ovmeet, egress: LiveKitStandIn
) -> None:
    room = await _room(meet, "empty")
    moderator = await _token(meet, room, "Ana", "moderator")  # a token, but nobody joins
    cookie = {"OvMeetParticipantToken": set_cookies(moderator)["OvMeetParticipantToken"]["value"]}
    start = await _start_recording(meet, room, cookie)
    assert start.status_code == 409, start.text
    assert "nobody in it" in start.json()["message"]
    again = await _start_recording(meet, room, cookie)
    assert again.status_code == 409 and "nobody in it" in again.json()["message"]  # room free


# ---- 9. a LiveKit that refuses ovmeet, and one without Egress ----


async def test_a_wrong_livekit_secret_is_named_and_the_server_is_not_ready(
    servers: Servers, real_livekit: RoutedLiveKit
) -> None:
    wrong = servers.start(
        "local",
        LIVEKIT_URL=real_livekit.server.ws_url,
        LIVEKIT_API_SECRET="not-the-livekit-secret-0123456789abcdef",
    )
    try:
        room = await _room(wrong, "wrong")
        refused = await _token(wrong, room, "Ana")
        assert refused.status_code == 503, refused.text
        assert refused.json()["name"] == "LiveKit Error"
        assert "refused ovmeet's credentials" in refused.json()["message"]
        ready = wrong.client.get(f"{wrong.base_url}/meet/ready")
        assert ready.status_code == 503
        assert "refused ovmeet's credentials" in ready.json()["livekit"]
        start_up = wrong.log().split("Uvicorn running")[0]
        assert "refused ovmeet's credentials" in start_up
        assert "not-the-livekit-secret" not in wrong.log()
    finally:
        wrong.stop()


async def test_a_livekit_without_egress_is_named_when_a_recording_starts(
    servers: Servers, real_livekit: RoutedLiveKit
) -> None:
    direct = servers.start("local", LIVEKIT_URL=real_livekit.server.ws_url, MEET_API_KEY=API_KEY)
    try:
        room = await _room(direct, "noegress")
        ana, cookie = await _enter(direct, room, "Ana", "moderator")
        start = await _start_recording(direct, room, cookie)
        await ana.leave()
        assert start.status_code == 503, start.text
        assert "no Egress service" in start.json()["message"]
    finally:
        direct.stop()


# ---- a participant token reaches no further than its room ----


async def test_a_moderators_token_cannot_call_livekits_egress(
    meet: Ovmeet, real_livekit: RoutedLiveKit
) -> None:
    """LiveKit checks roomRecord for every room at once: a moderator's own token, sent to the
    real server's Egress API, lists, stops and starts nothing; ovmeet's own grant gets past."""
    room = await _room(meet, "egressgrant")
    answer = await _token(meet, room, "Mallory", "moderator")
    assert answer.status_code == 200, answer.text
    token = answer.json()["token"]
    assert not participant_claims(token).video.room_record  # type: ignore[union-attr]
    egress_api = f"{real_livekit.server.url}/twirp/livekit.Egress"
    attempts = {"ListEgress": {}, "StopEgress": {"egressId": "EG_someone"}}
    attempts["StartRoomCompositeEgress"] = {"roomName": "another-room"}
    async with httpx.AsyncClient(timeout=10) as client:
        for method, body in attempts.items():
            refused = await client.post(
                f"{egress_api}/{method}", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert refused.status_code == 401, (method, refused.text)
            assert refused.json()["msg"] == "permissions denied", (method, refused.text)
        server_token = (
            api.AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
            .with_grants(api.VideoGrants(room_record=True))
            .to_jwt()
        )
        past = await client.post(
            f"{egress_api}/ListEgress", json={}, headers={"Authorization": f"Bearer {server_token}"}
        )
        assert past.json().get("msg") != "permissions denied", past.text
