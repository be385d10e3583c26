"""What ovmeet stores is laid out as the release lays it out (OpenVidu Meet at fb0bf4b1), so that
a folder or bucket moves between the two: made through the APIs, then listed as stored."""

from __future__ import annotations

import re
import time

from tests.conftest import Servers
from tests.support.helpers import cookie_header, login, request_token, token_body
from tests.support.livekit_standin import LiveKitStandIn
from tests.support.stored import Stored

API_KEY = "layout-test-key-6b1d"
KEY = {"x-api-key": API_KEY}
ROOM = r"(?P<room>[A-Za-z0-9_-]+)"
# The release's keys (under the sub-bucket prefix on S3).
RELEASE = {
    "preferences": re.compile(r"openvidu-meet-preferences\.json"),
    "room": re.compile(rf"rooms/{ROOM}/(?P=room)\.json"),
    "recording metadata": re.compile(rf"recordings/\.metadata/{ROOM}/EG_\w+/\w+\.json"),
    "recording media": re.compile(rf"recordings/{ROOM}/(?P=room)--\w+\.mp4"),
}
# ovmeet's additions, in places the release neither lists nor reads.
OURS = {
    "room index": re.compile(r"rooms/\.index/\d{13}--[\w-]+--(\d{13}|never)\.json"),
    "room index built": re.compile(r"rooms/\.index-built\.json"),
    "recording index": re.compile(r"recordings/\.index/(all|rooms/[\w-]+)/\d{13}--[\w-]+\.json"),
    "recording index built": re.compile(r"recordings/\.index/built\.json"),
    "recording lock": re.compile(r"recordings/\.locks/[\w-]+\.json"),
    "revoked session": re.compile(
        r"revoked-sessions/users/[0-9a-f]{32}/\d{10}-\d{10}-[\w-]+\.json"
    ),
}


def kind_of(key: str) -> str | None:
    for kind, pattern in (RELEASE | OURS).items():
        if pattern.fullmatch(key):
            return kind
    return None


def test_every_stored_key_is_in_the_release_layout_or_one_of_ours(
    servers: Servers, backend: str, livekit: LiveKitStandIn
) -> None:
    meet = servers.start(backend, MEET_API_KEY=API_KEY, MEET_RECORDING_STARTED_TIMEOUT="5s")
    livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    public = f"{meet.base_url}/meet/api/v1"
    week = int(time.time() * 1000) + 7 * 86_400_000
    body = {"roomNamePrefix": "layout", "expirationDate": week}
    room = meet.client.post(f"{public}/rooms", json=body, headers=KEY)
    assert room.status_code == 200, room.text
    token = request_token(meet, token_body(room.json(), "mod", "moderator"))
    moderator = cookie_header({"OvMeetParticipantToken": token.json()["token"]})
    started = meet.client.post(
        f"{public}/recordings", json={"roomId": room.json()["roomName"]}, headers=moderator
    )
    assert started.status_code == 200, started.text
    recording_id = started.json()["recordingId"]
    during = Stored(meet).keys()
    stopped = meet.client.put(f"{public}/recordings/{recording_id}", json={}, headers=moderator)
    assert stopped.status_code == 200, stopped.text
    deadline = time.monotonic() + 30
    while (
        meet.client.get(f"{public}/recordings/{recording_id}", headers=KEY).json()["status"]
        != "COMPLETE"
    ):
        assert time.monotonic() < deadline, "the recording never completed"
        time.sleep(0.1)
    cookies = login(meet)
    logout = meet.client.post(f"{meet.api}/auth/logout", headers=cookie_header(cookies))
    assert logout.status_code == 200, logout.text

    keys = sorted(set(during) | set(Stored(meet).keys()))
    assert [key for key in keys if kind_of(key) is None] == []
    assert {kind_of(key) for key in keys} == set(RELEASE) | set(OURS)
    room_name, uid = room.json()["roomName"], recording_id.split("--")[2]
    egress = recording_id.split("--")[1]
    assert f"rooms/{room_name}/{room_name}.json" in keys
    assert f"recordings/.metadata/{room_name}/{egress}/{uid}.json" in keys
    assert f"recordings/{room_name}/{room_name}--{uid}.mp4" in keys


def test_a_key_outside_the_layout_is_seen() -> None:
    assert kind_of("rooms/a/b.json") is None
    assert kind_of("recordings/r-1/r-2--u.mp4") is None
    assert kind_of("rooms/r-1/r-1.json") == "room"
