"""Operating ovmeet: /metrics, /meet/ready, the access log with request ids, JSON logs."""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import Servers
from tests.support import log_scan
from tests.support.helpers import access_cookie, cookie_header, metric, request_token, token_body
from tests.support.livekit_webhooks import egress_event, signed
from tests.support.media import make_mp4, pad_mp4
from tests.support.processes import ADMIN, Ovmeet, SeaweedFS, free_port


def metrics(server: Ovmeet) -> str:
    response = server.client.get(f"{server.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def test_metrics_count_requests_livekit_and_storage_calls(servers: Servers, tmp_path: Path) -> None:
    server = servers.start("local")
    room = server.create_room("metrics")
    recording = server.import_recording(make_mp4(tmp_path / "a.mp4", seconds=1), room["roomName"])
    stream = server.client.get(
        f"{server.api}/recordings/{recording['recordingId']}/stream",
        headers={**cookie_header(access_cookie(server)), "Range": "bytes=100-1099"},
    )
    assert stream.status_code == 206 and len(stream.content) == 1000
    for name in ("A", "B", "C"):
        assert request_token(server, token_body(room, name)).status_code == 200
    assert request_token(server, token_body(room, "D") | {"secret": "wrong"}).status_code == 400
    text = metrics(server)
    operation = "generateParticipantToken"
    assert metric(text, "ovmeet_requests_total", operation=operation, status="200") == 3
    assert metric(text, "ovmeet_requests_total", operation=operation, status="400") == 1
    assert metric(text, "ovmeet_request_duration_seconds_count", operation=operation) == 4
    assert metric(text, "ovmeet_livekit_call_duration_seconds_count", method="GetParticipant") == 3
    assert metric(text, "ovmeet_livekit_call_errors_total", method="GetParticipant") == 0
    assert metric(text, "ovmeet_storage_call_duration_seconds_count", call="read_json") >= 1
    assert metric(text, "ovmeet_storage_call_duration_seconds_count", call="open_range") == 1
    assert metric(text, "ovmeet_streamed_bytes_total") == 1000
    assert metric(text, "ovmeet_open_streams") == 0


def test_invented_methods_do_not_make_new_series(servers: Servers) -> None:
    server = servers.start("local")
    for method in ("PROPFIND", "MKCOL", "SEARCH"):  # methods the HTTP parser lets through
        answer = server.client.request(method, f"{server.base_url}/meet/health")
        assert answer.status_code == 405
    text = metrics(server)
    assert 'method="PROPFIND"' not in text and 'method="MKCOL"' not in text
    assert metric(text, "ovmeet_requests_total", method="other", status="405") == 3


def test_metrics_count_livekit_failures(servers: Servers) -> None:
    dead = f"ws://127.0.0.1:{free_port()}"
    server = servers.start("local", LIVEKIT_URL=dead, MEET_LIVEKIT_TIMEOUT="1s")
    room = server.create_room("metrics")
    assert request_token(server, token_body(room, "A")).status_code == 503
    text = metrics(server)
    assert metric(text, "ovmeet_livekit_call_errors_total", method="GetParticipant") == 1


def test_metrics_add_up_every_worker(servers: Servers) -> None:
    server = servers.start("local", ("--workers", "2"))
    room = server.create_room("metrics")
    for n in range(20):  # a new connection each: the kernel spreads them over both workers
        with httpx.Client() as client:
            answer = client.post(f"{server.api}/participants/token", json=token_body(room, f"p{n}"))
            assert answer.status_code == 200
    for _ in range(6):  # whichever worker answers, it answers for both
        with httpx.Client() as client:
            text = client.get(f"{server.base_url}/metrics").text
        total = metric(
            text, "ovmeet_requests_total", operation="generateParticipantToken", status="200"
        )
        assert total == 20


def test_ready_when_storage_and_livekit_answer(server: Ovmeet) -> None:
    response = server.client.get(f"{server.base_url}/meet/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "UP", "storage": "UP", "livekit": "UP"}


def test_not_ready_names_livekit(servers: Servers) -> None:
    server = servers.start("local", LIVEKIT_URL=f"ws://127.0.0.1:{free_port()}")
    response = server.client.get(f"{server.base_url}/meet/ready")
    assert response.status_code == 503
    assert response.json() == {
        "message": "Not ready: livekit: LiveKit is not available: ListRooms failed",
        "storage": "UP",
        "livekit": "LiveKit is not available: ListRooms failed",
    }
    assert "failed on ListRooms (" in server.log()  # where and why: in the log only


def test_not_ready_names_the_storage(servers: Servers, tmp_path: Path) -> None:
    weed = SeaweedFS(tmp_path / "weed").start()
    try:
        server = servers.start(
            "s3", MEET_S3_SERVICE_ENDPOINT=weed.endpoint, MEET_S3_SUBBUCKET="ready"
        )
        assert server.client.get(f"{server.base_url}/meet/ready").status_code == 200
    finally:
        weed.stop()
    started = time.monotonic()
    response = server.client.get(f"{server.base_url}/meet/ready")
    assert time.monotonic() - started < 8  # bounded, even when the storage hangs
    assert response.status_code == 503
    assert response.json()["livekit"] == "UP"
    assert response.json()["storage"] == "Storage failed"
    assert response.json()["message"].startswith("Not ready: storage: ")
    errors = metric(metrics(server), "ovmeet_storage_call_errors_total", call="stat")
    assert errors >= 1


def access_lines(server: Ovmeet) -> list[str]:
    return [line for line in server.log().splitlines() if "ovmeet.access" in line]


def test_one_access_line_per_request_with_its_id(servers: Servers) -> None:
    server = servers.start("local")
    room = server.create_room("logs")
    given = request_token(server, token_body(room, "A"))
    chosen = server.client.get(f"{server.base_url}/meet/health", headers={"X-Request-Id": "abc-1"})
    hostile = server.client.get(
        f"{server.base_url}/meet/health", headers={"X-Request-Id": "a b;" + "x" * 200}
    )
    assert chosen.headers["x-request-id"] == "abc-1"
    assert re.fullmatch(r"[0-9a-f]{16}", given.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{16}", hostile.headers["x-request-id"])  # replaced
    time.sleep(0.2)
    lines = access_lines(server)
    for answer in (given, chosen, hostile):
        mine = [line for line in lines if f"[request {answer.headers['x-request-id']}]" in line]
        assert len(mine) == 1, lines
    token_line = next(line for line in lines if given.headers["x-request-id"] in line)
    assert '"POST /meet/internal-api/v1/participants/token" 200' in token_line
    assert "generateParticipantToken" in token_line
    assert any("[request abc-1]" in line for line in lines)


def test_secret_query_values_are_not_logged(servers: Servers) -> None:
    server = servers.start("local")
    room = server.create_room("logs")
    secret = room["moderatorRoomUrl"].split("secret=")[1]
    path = f"/meet/internal-api/v1/rooms/{room['roomName']}/participant-role"
    response = server.client.get(f"{server.base_url}{path}", params={"secret": secret})
    assert response.status_code == 200
    time.sleep(0.2)
    log = server.log()
    assert secret not in log
    assert f'{path}?secret=***"' in log


def test_json_logs_are_one_object_per_line(servers: Servers) -> None:
    server = servers.start("local", MEET_LOG_FORMAT="json")
    server.client.get(f"{server.base_url}/meet/health", headers={"X-Request-Id": "json-1"})
    time.sleep(0.2)
    records = [json.loads(line) for line in server.log().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    access = [r for r in records if r["logger"] == "ovmeet.access"]
    assert access[-1]["request_id"] == "json-1"
    assert (access[-1]["status"], access[-1]["path"], access[-1]["operation"]) == (
        200,
        "/meet/health",
        "health",
    )


@pytest.mark.parametrize("flag", [("--no-access-log",), ()])
def test_no_access_log_flag(servers: Servers, flag: tuple[str, ...]) -> None:
    server = servers.start("local", flag)
    server.client.get(f"{server.base_url}/meet/health")
    time.sleep(0.2)
    assert bool(access_lines(server)) is (flag == ())


def test_the_log_scan_finds_what_must_never_be_logged(tmp_path: Path) -> None:
    clean = tmp_path / "ovmeet-1.log"
    clean.write_text('INFO ovmeet.access: 127.0.0.1 "GET /room/r-1?secret=***" 200\n')
    assert log_scan.findings(tmp_path) == []
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ovmeet-2.log").write_text(
        f"cookie {token}\nGET /room/r-1?secret=Ab3dE5gH\npassword {ADMIN[1]}\n"
    )
    found = log_scan.findings(tmp_path)
    for log in tmp_path.rglob("*.log"):  # or the scan at the end of the run finds them too
        log.unlink()
    assert len(found) == 3, found
    assert token[:12] in " ".join(found)


def test_many_concurrent_s3_streams_log_one_line_each_and_nothing_else(
    servers: Servers, tmp_path: Path
) -> None:
    """Connexion used to log 'Skipping validation' for every stream, and urllib3 'Connection
    pool is full' once the streams outnumbered the pool."""
    server = servers.start("s3")
    room = server.create_room("many")["roomName"]
    source = pad_mp4(make_mp4(tmp_path / "a.mp4", seconds=1), tmp_path / "b.mp4", 8 * 2**20)
    recording = server.import_recording(source, room)
    cookie = cookie_header(access_cookie(server))
    url = f"{server.api}/recordings/{recording['recordingId']}/stream"
    before = len(server.log().splitlines())

    def stream(n: int) -> int:
        start = n * 100_000
        with httpx.Client(timeout=60) as client:
            answer = client.get(url, headers={**cookie, "Range": f"bytes={start}-"})
            return answer.status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        assert set(pool.map(stream, range(40))) == {206}
    for n in range(3):  # Connexion warned of the webhook's two content types each time
        body, headers = signed(
            egress_event("egress_updated", "not-ours", f"EG_{n}", "u", "EGRESS_ACTIVE")
        )
        answer = server.client.post(
            f"{server.base_url}/livekit/webhook", content=body, headers=headers
        )
        assert answer.status_code == 200
    time.sleep(0.3)
    new = server.log().splitlines()[before:]
    assert [line for line in new if "ovmeet.access" not in line] == []
    assert sum("getRecordingStream" in line for line in new) == 40
    assert sum("POST /livekit/webhook" in line for line in new) == 3
