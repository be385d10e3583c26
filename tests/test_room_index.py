"""Rooms piling up: a page of rooms reads that page's rooms (the room index), the clean-up finds
expired rooms without reading every room, and rooms cannot be created without end by those whom
only the room creation policy lets in."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from ovmeet.auth.quotas import ROOMS_PER_HOUR
from ovmeet.rooms.store import RoomOptions, new_room
from ovmeet.shared.change_markers import CACHE_SECONDS
from ovmeet.storage.keys import room_index_key, room_key
from ovmeet.support.config import Config
from tests.conftest import Servers
from tests.support.helpers import cookie_header, login
from tests.support.processes import USER, Ovmeet
from tests.support.stored import Stored

API_KEY = "room-index-test-key-0123456789abcdef"
KEY = {"x-api-key": API_KEY}
FUTURE = 4_000_000_000_000  # ms: the year 2096


def page(server: Ovmeet, limit: int, number: int = 1) -> httpx.Response:
    return server.client.get(
        f"{server.base_url}/meet/api/v1/rooms",
        params={"limit": limit, "page": number},
        headers=KEY,
    )


def create(server: Ovmeet, headers: dict[str, str], prefix: str = "q") -> httpx.Response:
    body = {"roomNamePrefix": prefix, "expirationDate": FUTURE}
    return server.client.post(f"{server.base_url}/meet/api/v1/rooms", json=body, headers=headers)


def store_as_another_host(stored: Stored, prefix: str) -> dict[str, Any]:
    """A room as another ovmeet host sharing the storage stores it (this host is not told)."""
    room = new_room(Config(), RoomOptions(prefix, expiration_date=FUTURE))
    key = room_index_key(room.room_name, room.creation_date, room.expiration_date)
    stored.write_json(key, {})
    stored.write_json(room_key(room.room_name), room.to_json())
    return room.to_json()


def test_a_page_reads_only_its_own_rooms(servers: Servers, backend: str) -> None:
    server = servers.start(backend, MEET_API_KEY=API_KEY)
    try:
        first, second, third = (server.create_room(f"p{n}") for n in range(3))
        # A room nobody could read: the whole list would fail on it, the first page must not.
        Stored(server).write_json(room_key(third["roomName"]), {"not": "a room"})
        response = page(server, limit=1)
        assert response.status_code == 200, response.text
        assert [room["roomName"] for room in response.json()] == [first["roomName"]]
        assert response.headers["x-total-count"] == "3"
        assert [r["roomName"] for r in page(server, 1, 2).json()] == [second["roomName"]]
    finally:
        server.stop()


def test_the_clean_up_is_not_stopped_by_a_room_it_cannot_read(
    servers: Servers, backend: str
) -> None:
    server = servers.start(backend, MEET_API_KEY=API_KEY)
    try:
        unreadable = server.create_room("broken")
        Stored(server).write_json(room_key(unreadable["roomName"]), {"not": "a room"})
        expires_at = time.time() + 1.5
        doomed = server.create_room("doomed", expiration_date=int(expires_at * 1000))
        time.sleep(max(0.0, expires_at - time.time()) + 0.05)
        ran = server.cli("gc")
        assert ran.returncode == 0, ran.stderr
        assert doomed["roomName"] in ran.stdout
        assert not Stored(server).keys(f"rooms/{doomed['roomName']}/")
        assert Stored(server).keys(f"rooms/{unreadable['roomName']}/")  # not expired: it stays
        deleted = server.client.delete(
            f"{server.base_url}/meet/api/v1/rooms/{unreadable['roomName']}", headers=KEY
        )
        assert deleted.status_code == 204, deleted.text  # an admin can still remove it
        assert page(server, 10).headers["x-total-count"] == "0"
    finally:
        server.stop()


def test_rooms_stored_before_the_index_are_listed(servers: Servers, backend: str) -> None:
    """Rooms of OpenVidu Meet itself, or of an earlier ovmeet, have no index entry."""
    first = servers.start(backend, MEET_API_KEY=API_KEY)
    first.stop()
    stored = Stored(first)
    room = new_room(first.config(), RoomOptions("legacy", expiration_date=FUTURE))
    stored.write_json(room_key(room.room_name), room.to_json())
    stored.delete("rooms/.index-built.json")
    same_storage = "MEET_DATA_DIR" if backend == "local" else "MEET_S3_SUBBUCKET"
    server = servers.start(
        backend, (), MEET_API_KEY=API_KEY, **{same_storage: first.env[same_storage]}
    )
    try:
        assert [r["roomName"] for r in page(server, 100).json()] == [room.room_name]
    finally:
        server.stop()


def test_rooms_of_another_host_are_listed_and_unlisted_within_the_bound(
    servers: Servers, backend: str
) -> None:
    server = servers.start(backend, MEET_API_KEY=API_KEY)
    try:
        assert page(server, 10).json() == []
        stored = Stored(server)
        room = store_as_another_host(stored, "elsewhere")
        stored_at = time.monotonic()
        while [r["roomName"] for r in page(server, 10).json()] != [room["roomName"]]:
            assert time.monotonic() - stored_at < CACHE_SECONDS + 1, "not listed in time"
            time.sleep(0.05)
        stored.delete(room_key(room["roomName"]))  # deleted by the other host
        deleted_at = time.monotonic()
        while page(server, 10).json():
            assert time.monotonic() - deleted_at < CACHE_SECONDS + 1, "still listed"
            time.sleep(0.05)
        # Its entry went with it: the count is right again.
        assert page(server, 10).headers["x-total-count"] == "0"
    finally:
        server.stop()


@pytest.mark.parametrize("creator", ["user", "anyone"])
def test_rooms_cannot_be_created_without_end_by_the_creation_policy(
    servers: Servers, creator: str
) -> None:
    server = servers.start("local", MEET_API_KEY=API_KEY)
    try:
        policy = {"allowRoomCreation": True, "requireAuthentication": creator == "user"}
        response = server.client.put(
            f"{server.base_url}/meet/api/v1/preferences/security",
            json={"roomCreationPolicy": policy},
            headers=KEY,
        )
        assert response.status_code == 200, response.text
        headers = {"x-forwarded-for": "203.0.113.77"}
        if creator == "user":
            headers |= cookie_header(
                {"OvMeetAccessToken": login(server, USER)["OvMeetAccessToken"]}
            )
        statuses = [create(server, headers).status_code for _ in range(ROOMS_PER_HOUR + 5)]
        assert statuses == [200] * ROOMS_PER_HOUR + [429] * 5
        refused = create(server, headers)
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many rooms created by this" in refused.json()["message"]
        if creator == "anyone":  # another address has its own budget
            assert create(server, {"x-forwarded-for": "203.0.113.78"}).status_code == 200
        assert create(server, KEY).status_code == 200  # an API key is not bounded
        stored_rooms = [k for k in Stored(server).keys("rooms/") if not k.startswith("rooms/.")]
        assert len(stored_rooms) == ROOMS_PER_HOUR + 1 + (creator == "anyone")
    finally:
        server.stop()
