"""A newcomer's wrong turns, made as they would make them: through `ovmeet` and its server."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ovmeet.storage.keys import room_key
from tests.conftest import Servers
from tests.support.helpers import request_token, secret, token_body
from tests.support.processes import REPO, Ovmeet, base_env, free_port, run_cli
from tests.support.stored import Stored

API_KEY = "first-hour-api-key-0123456789abcdef"
KEY = {"x-api-key": API_KEY}


def s3_env(endpoint: str, **more: str) -> dict[str, str]:
    return {
        **base_env("http://127.0.0.1:1"),
        "MEET_STORAGE": "s3",
        "MEET_S3_SERVICE_ENDPOINT": endpoint,
        "MEET_S3_ACCESS_KEY": "someone",
        "MEET_S3_SECRET_KEY": "something",
        **more,
    }


@pytest.mark.parametrize(
    ("endpoint", "more", "said"),
    [
        ("http://127.0.0.1:{closed}", {}, "is unreachable: connection refused"),
        ("http://s3.nowhere.invalid:9000", {}, "the host name s3.nowhere.invalid does not resolve"),
        (
            "http://127.0.0.1:{closed}",
            {"MEET_S3_WITH_PATH_STYLE_ACCESS": "false"},
            "set MEET_S3_WITH_PATH_STYLE_ACCESS=true",
        ),
    ],
    ids=["refused", "unresolved", "virtual-host-style"],
)
@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("rooms", "list")])
def test_an_unreachable_s3_is_one_line_within_seconds(
    endpoint: str, more: dict[str, str], said: str, command: tuple[str, ...]
) -> None:
    began = time.monotonic()
    result = run_cli(s3_env(endpoint.format(closed=free_port()), **more), *command)
    took = time.monotonic() - began
    assert result.returncode == 1
    failure = [line for line in result.stderr.splitlines() if line.startswith("ovmeet: ")]
    assert len(failure) == 1 and said in failure[0], result.stderr
    assert "Retrying" not in result.stderr and "urllib3" not in result.stderr
    assert "Traceback" not in result.stderr
    assert took < 15, took


def test_a_path_in_the_s3_endpoint_is_refused() -> None:
    result = run_cli(s3_env("http://127.0.0.1:9000/openvidu"), "rooms", "list")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ovmeet: configuration error: MEET_S3_SERVICE_ENDPOINT: 'http://127.0.0.1:9000/openvidu' "
        "has a path; an S3 endpoint is scheme://host[:port]: name the bucket in MEET_S3_BUCKET "
        "and a folder in it in MEET_S3_SUBBUCKET"
    ]


def _served_room(server: Ovmeet, name: str) -> dict[str, str]:
    answer = server.client.get(f"{server.base_url}/meet/api/v1/rooms/{name}", headers=KEY)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def test_links_lead_to_the_port_ovmeet_listens_on(servers: Servers) -> None:
    server = servers.starting("local", MEET_API_KEY=API_KEY).result()  # --port 0, no base URL
    made = server.client.post(
        f"{server.base_url}/meet/api/v1/rooms",
        json={"roomNamePrefix": "port", "expirationDate": 4_000_000_000_000},
        headers=KEY,
    )
    assert made.status_code == 200, made.text
    link = made.json()["moderatorRoomUrl"]
    assert link.startswith(f"http://localhost:{server.port}/room/"), link
    assert _served_room(server, made.json()["roomName"])["moderatorRoomUrl"] == link


def test_links_follow_the_base_url_of_today_not_that_of_the_rooms_creation(
    servers: Servers,
) -> None:
    server = servers.start("local", MEET_API_KEY=API_KEY, MEET_BASE_URL="https://meet.example")
    # A room made when the base URL was another (the CLI with its own MEET_BASE_URL).
    made = run_cli({**server.env, "MEET_BASE_URL": "http://old.example:6080"}, "rooms", "create")
    assert made.returncode == 0, made.stderr
    room = json.loads(made.stdout)
    assert room["publisherRoomUrl"].startswith("http://old.example:6080/room/")
    served = _served_room(server, room["roomName"])
    for link in ("moderatorRoomUrl", "publisherRoomUrl"):
        assert served[link] == room[link].replace("http://old.example:6080", "https://meet.example")
    listed = server.client.get(f"{server.base_url}/meet/api/v1/rooms", headers=KEY).json()
    assert [r["publisherRoomUrl"] for r in listed] == [served["publisherRoomUrl"]]
    # The stored document keeps the links it was made with: the release reads the same bucket.
    stored = Stored(server).read_json(room_key(room["roomName"]))
    assert stored["publisherRoomUrl"] == room["publisherRoomUrl"]
    # and the links still open the room with their role.
    body = token_body(served, "Ana", "moderator")
    assert body["secret"] == secret(room, "moderator")
    assert request_token(server, body).status_code == 200


def test_without_livekit_the_start_says_so_tokens_are_503_and_rooms_can_be_deleted(
    servers: Servers,
) -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    server = servers.start(
        "local", MEET_API_KEY=API_KEY, LIVEKIT_URL=dead, MEET_LIVEKIT_TIMEOUT="1s"
    )
    said = [line for line in server.log().splitlines() if "tokens cannot be issued" in line]
    assert len(said) == 1 and dead in said[0], server.log()
    room = server.create_room("nolk")
    token = request_token(server, token_body(room, "Ana", "moderator"))
    assert token.status_code == 503
    assert token.json() == {
        "name": "LiveKit Error",
        "message": "LiveKit is not available: GetParticipant failed",
    }
    gone = server.client.delete(
        f"{server.base_url}/meet/api/v1/rooms/{room['roomName']}", headers=KEY
    )
    assert gone.status_code == 204, gone.text
    assert f"room '{room['roomName']}' deleted without closing it in LiveKit" in server.log()
    assert (
        server.client.get(
            f"{server.base_url}/meet/api/v1/rooms/{room['roomName']}", headers=KEY
        ).status_code
        == 404
    )
    # The CLI too.
    other = server.create_room("nolk")
    deleted = run_cli(server.env, "rooms", "delete", other["roomName"])
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"deleted": other["roomName"]}


def test_cli_errors_carry_no_field_placeholder(tmp_path: Path) -> None:
    env = {**base_env("http://127.0.0.1:1"), "MEET_DATA_DIR": str(tmp_path)}
    result = run_cli(env, "preferences", "set", "webhooks", "{not json")
    assert result.returncode == 1
    assert result.stderr.startswith("ovmeet: Invalid preferences; not JSON: "), result.stderr
    assert "body:" not in result.stderr


def test_the_help_says_what_a_room_lifetime_defaults_to() -> None:
    result = run_cli(base_env("http://127.0.0.1:1"), "rooms", "create", "--help")
    assert "default: the room never expires" in " ".join(result.stdout.split())


def test_a_webhook_url_error_states_the_rule_not_a_regular_expression(servers: Servers) -> None:
    server = servers.starting("local", MEET_API_KEY=API_KEY).result()
    answer = server.client.put(
        f"{server.base_url}/meet/api/v1/preferences/webhooks",
        json={"enabled": True, "url": "ftp://hooks.example"},
        headers=KEY,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"] == [
        {
            "field": "url",
            "message": "must be an http or https URL, without spaces or control characters",
        }
    ]


@pytest.mark.parametrize("body", [{}, {"unknown": 1}])
def test_a_room_update_that_names_no_preference_is_refused_by_the_schema_it_serves(
    servers: Servers, body: dict[str, object]
) -> None:
    server = servers.starting("local", MEET_API_KEY=API_KEY).result()
    room = server.create_room("upd")
    answer = server.client.put(
        f"{server.base_url}/meet/api/v1/rooms/{room['roomName']}", json=body, headers=KEY
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["details"][0]["message"].startswith("must name at least one of")
    spec = httpx.get(f"{server.base_url}/meet/api/v1/openapi.json").json()
    schema = spec["paths"]["/rooms/{roomName}"]["put"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    assert schema["minProperties"] == 1


def test_make_run_stops_everything_on_sigterm_and_says_so(tmp_path: Path) -> None:
    port = free_port(60000)
    env = {
        **base_env(f"ws://127.0.0.1:{free_port()}"),  # "use that LiveKit": none is started
        "SERVER_PORT": str(port),
        "MEET_DATA_DIR": str(tmp_path / "data"),
    }
    run = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "run_local.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert run.stdout is not None
    said = []
    for line in run.stdout:
        said.append(line)
        if "Ctrl-C stops everything" in line or len(said) > 200:
            break
    links = [line for line in said if "moderator: http://localhost:" in line]
    assert links and f"localhost:{port}/room/" in links[0], "".join(said)
    run.send_signal(signal.SIGTERM)
    rest, _ = run.communicate(timeout=30)
    assert run.returncode == 0, rest
    assert "make run: stopping" in rest and "Traceback" not in rest, rest
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/meet/health")


def test_a_wrong_secret_is_the_same_error_wherever_it_is_given(servers: Servers) -> None:
    server = servers.starting("local", MEET_API_KEY=API_KEY).result()
    room = server.create_room("secret")
    role = server.client.get(
        f"{server.api}/rooms/{room['roomName']}/participant-role", params={"secret": "wrong"}
    )
    token = request_token(server, {**token_body(room, "Ana"), "secret": "wrong"})
    assert role.status_code == token.status_code == 400
    assert (
        role.json()
        == token.json()
        == {
            "name": "Room Error",
            "message": f"Invalid secret for room '{room['roomName']}'",
        }
    )


def test_make_clean_removes_what_the_build_leaves() -> None:
    dry_run = subprocess.run(
        ["make", "-n", "clean"], cwd=REPO, capture_output=True, text=True, check=True
    )
    removed = dry_run.stdout.split()
    assert {"build", "dist", ".venv"} <= set(removed), dry_run.stdout
