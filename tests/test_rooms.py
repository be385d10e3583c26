"""Rooms: names, secrets, expiry, and the `ovmeet rooms` commands on both backends."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ovmeet.rooms.index import page_of
from ovmeet.rooms.store import Room, RoomOptions, new_room, role_for_secret, sanitize_prefix
from ovmeet.support.config import Config
from ovmeet.support.ids import is_id
from tests.support.livekit_standin import Fault, LiveKitStandIn
from tests.support.processes import Ovmeet


def secret_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["secret"][0]


@pytest.mark.parametrize(
    ("prefix", "clean"),
    [
        ("team", "team"),
        ("My Room!", "My-Room"),
        ("a--b---c", "a-b-c"),
        ("--edge--", "edge"),
        ("../../etc", "etc"),
        ("ünïcode_ok", "ncode_ok"),
        ("%2F%00", "2F00"),
        ("", "room"),
        ("!!!", "room"),
        ("x" * 200, "x" * 64),
    ],
)
def test_prefixes_are_sanitized(prefix: str, clean: str) -> None:
    assert sanitize_prefix(prefix) == clean


def test_a_new_room_has_a_safe_name_and_two_strong_different_secrets() -> None:
    config = Config.from_env({"MEET_BASE_URL": "https://meet.example.com"})
    room = new_room(config, RoomOptions("a--b-", expires_in=3600, max_participants=5))
    assert room.room_name.startswith("a-b-") and "--" not in room.room_name
    assert is_id(room.room_name)
    assert room.room_name_prefix == "a-b"
    moderator, publisher = secret_of(room.moderator_room_url), secret_of(room.publisher_room_url)
    assert moderator != publisher
    for secret in (moderator, publisher):
        assert len(secret) >= 22  # 16 random bytes, URL-safe base64
        assert set(secret) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )
    assert room.moderator_room_url == (
        f"https://meet.example.com/room/{room.room_name}?secret={moderator}"
    )
    assert room.expiration_date == room.creation_date + 3_600_000
    assert room.max_participants == 5
    assert Room.from_json(json.loads(json.dumps(room.to_json()))) == room


def test_secrets_differ_between_rooms() -> None:
    config = Config.from_env({})
    secrets = {secret_of(new_room(config, RoomOptions("r")).moderator_room_url) for _ in range(200)}
    assert len(secrets) == 200


def test_role_for_secret() -> None:
    room = new_room(Config.from_env({}), RoomOptions("r"))
    assert role_for_secret(room, secret_of(room.moderator_room_url)) == "moderator"
    assert role_for_secret(room, secret_of(room.publisher_room_url)) == "publisher"
    for wrong in [
        "",
        "x",
        secret_of(room.moderator_room_url)[:-1],
        secret_of(room.moderator_room_url) + "x",
    ]:
        assert role_for_secret(room, wrong) is None


def test_cli_creates_shows_lists_and_deletes_rooms(server: Ovmeet) -> None:
    result = server.cli(
        "rooms", "create", "--prefix", "cli team", "--expires-in", "1d", "--max-participants", "3"
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    name = created["roomName"]
    assert name.startswith("cli-team-")
    assert created["roomNamePrefix"] == "cli-team"
    assert created["maxParticipants"] == 3
    assert created["expirationDate"] - created["creationDate"] == 86_400_000
    assert created["preferences"] == {
        "chatPreferences": {"enabled": True},
        "recordingPreferences": {"enabled": True},
        "virtualBackgroundPreferences": {"enabled": True},
    }
    for verb in ("get", "show"):
        shown = server.cli("rooms", verb, name)
        assert shown.returncode == 0 and json.loads(shown.stdout) == created
    listed = server.cli("rooms", "list")
    assert name in [room["roomName"] for room in json.loads(listed.stdout)]
    deleted = server.cli("rooms", "delete", name)
    assert deleted.returncode == 0
    missing = server.cli("rooms", "get", name)
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.strip() == f"ovmeet: The room '{name}' does not exist"


def test_cli_create_prints_only_the_room_on_stdout(server: Ovmeet) -> None:
    result = server.cli("rooms", "create", "--prefix", "quiet")
    assert result.returncode == 0
    assert json.loads(result.stdout)["roomName"].startswith("quiet-")


@pytest.mark.parametrize(
    "args",
    [
        ["rooms", "create", "--expires-in", "soon"],
        ["rooms", "create", "--max-participants", "0"],
        ["rooms", "delete", "no-such-room"],
        ["rooms", "show", "../../etc/passwd"],
    ],
)
def test_cli_errors_go_to_stderr_with_a_nonzero_code(server: Ovmeet, args: list[str]) -> None:
    result = server.cli(*args)
    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.strip()


def test_an_expired_room_does_not_exist(server: Ovmeet) -> None:
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    room = server.create_room("brief", expires_in=60, created_at=an_hour_ago)
    body = {
        "roomName": room["roomName"],
        "participantName": "late",
        "secret": secret_of(room["publisherRoomUrl"]),
    }
    response = server.client.post(f"{server.api}/participants/token", json=body)
    assert response.status_code == 404
    assert response.json()["name"] == "Room Error"
    assert server.cli("rooms", "show", room["roomName"]).returncode == 1


def test_cli_delete_closes_a_live_room_in_livekit(server: Ovmeet, livekit: LiveKitStandIn) -> None:
    name = server.create_room("live")["roomName"]
    livekit.add_participant(name, "inside")
    deleted = server.cli("rooms", "delete", name)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"deleted": name}
    assert not livekit.has_participant(name, "inside")


def test_cli_delete_keeps_the_room_when_livekit_fails(
    server: Ovmeet, livekit: LiveKitStandIn
) -> None:
    name = server.create_room("kept")["roomName"]
    livekit.fault = Fault(status=503)
    deleted = server.cli("rooms", "delete", name)
    assert deleted.returncode == 1
    assert "failed on DeleteRoom" in deleted.stderr
    livekit.fault = Fault()
    assert server.cli("rooms", "get", name).returncode == 0


@pytest.mark.parametrize(
    ("number", "size", "items", "pages"),
    [
        (None, 2, [0, 1], 3),
        (3, 2, [4], 3),
        (4, 2, [], 3),
        (2, None, [], 1),
        (1, 10, [0, 1, 2, 3, 4], 1),
    ],
)
def test_pages_of_a_list(
    number: int | None, size: int | None, items: list[int], pages: int
) -> None:
    page = page_of([0, 1, 2, 3, 4], number, size)
    assert (page.items, page.total_items, page.total_pages) == (items, 5, pages)
    assert page.number == (number or 1)


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_cli_output_read_in_part_is_no_error(server: Ovmeet, reader: str) -> None:
    """`ovmeet rooms create | head -1`: the reader closes the pipe early (`true` at once)."""
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", f"{sys.executable} -m ovmeet rooms create | {reader}"],
        env=server.env,
        capture_output=True,
        text=True,
    )
    assert (piped.returncode, piped.stderr) == (0, "")
    assert piped.stdout == ("{\n" if reader == "head -1" else "")
