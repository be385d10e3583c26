"""GET /recordings/{recordingId}/stream on both backends; `ovmeet recordings import`."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from ovmeet.storage import MAX_CHUNK
from tests.conftest import BACKENDS, Servers
from tests.support.helpers import access_cookie, cookie_header
from tests.support.livekit_webhooks import ovmeet_egress_event, signed
from tests.support.media import make_mp4, pad_mp4
from tests.support.processes import USER, Ovmeet, SeaweedFS
from tests.support.relay import Relay
from tests.support.stored import Stored

LARGE = 96 * 1024 * 1024
# What may be read after a client leaves: the chunk in flight, the one read ahead, and what
# the kernel's socket buffers (and the relay's) hold on loopback. Never the whole file.
READ_AFTER_LEAVING = 2 * MAX_CHUNK + 16 * 1024 * 1024


@dataclass
class Library:
    """A server with a room and two imported recordings, and an admin cookie."""

    backend: str
    server: Ovmeet
    room: str
    small_id: str
    small: bytes
    large_id: str
    admin: dict[str, str]

    def url(self, recording_id: str) -> str:
        return f"{self.server.api}/recordings/{recording_id}/stream"

    def get(self, recording_id: str, **headers: str) -> httpx.Response:
        sent = {name.replace("_", "-"): value for name, value in headers.items()}
        return httpx.get(
            self.url(recording_id), headers={**cookie_header(self.admin), **sent}, timeout=60
        )


def import_with_cli(server: Ovmeet, file: Path, room: str, *extra: str) -> dict[str, Any]:
    result = server.cli("recordings", "import", str(file), "--room", room, *extra)
    assert result.returncode == 0, result.stderr
    recording: dict[str, Any] = json.loads(result.stdout)
    return recording


@pytest.fixture(scope="module", params=BACKENDS)
def library(
    request: pytest.FixtureRequest, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Library:
    server = servers.get(request.param)
    return stock(server, tmp_path_factory.mktemp("recordings"), seconds=2)


def stock(server: Ovmeet, workdir: Path, seconds: float = 1) -> Library:
    """A room on `server` with a small and a LARGE recording, and an admin cookie."""
    room = server.create_room("rec")["roomName"]
    small_file = make_mp4(workdir / "small.mp4", seconds=seconds)
    small = server.import_recording(small_file, room)
    large = server.import_recording(pad_mp4(small_file, workdir / "large.mp4", LARGE), room)
    return Library(
        server.env["MEET_STORAGE"],
        server,
        room,
        str(small["recordingId"]),
        small_file.read_bytes(),
        str(large["recordingId"]),
        access_cookie(server),
    )


# ---- whole files and ranges ----


def test_without_range_the_whole_file_is_sent(library: Library) -> None:
    response = library.get(library.small_id)
    assert response.status_code == 200
    assert response.content == library.small
    headers = response.headers
    assert headers["content-type"] == "video/mp4"
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(len(library.small))
    assert headers["cache-control"] == "private"
    assert headers["etag"].startswith('"') and len(headers["etag"]) > 2
    assert parsedate_to_datetime(headers["last-modified"]).tzinfo is not None
    assert "content-range" not in headers


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-1023", 0, 1023),
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", -500, None),
        ("bytes=0-99999999999", 0, None),
        ("bytes=-99999999", 0, None),
        ("Bytes=5-9", 5, 9),
        ("bytes=005-009", 5, 9),
    ],
)
def test_ranges_are_exact(library: Library, header: str, first: int, last: int | None) -> None:
    size = len(library.small)
    start = first % size if first < 0 else first
    end = size - 1 if last is None else last
    response = library.get(library.small_id, range=header)
    assert response.status_code == 206
    assert response.content == library.small[start : end + 1]
    assert response.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-type"] == "video/mp4"


def test_the_last_byte_of_a_large_file(library: Library) -> None:
    response = library.get(library.large_id, range=f"bytes={LARGE - 10}-{LARGE + 10}")
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {LARGE - 10}-{LARGE - 1}/{LARGE}"
    assert len(response.content) == 10


@pytest.mark.parametrize(
    "header",
    [
        "bytes=9-5",
        "bytes=a-b",
        "bytes=1-b",
        "0-100",
        "=0-100",
        "bytes=-5-10",
        "bytes=--5",
        "bytes=-",
        "bytes=",
        "bytes=0-1,5-9",
        "bytes=0-1, 5-9",
        "bytes=1" + "0" * 20 + "-",
        "bytes=0-" + "9" * 21,
        "bytes=0x10-20",
        "bytes=+5-9",
    ],
)
def test_malformed_ranges_are_400(library: Library, header: str) -> None:
    response = library.get(library.small_id, range=header)
    assert response.status_code == 400
    assert response.json() == {"name": "Request Error", "message": "Invalid Range header"}


@pytest.mark.parametrize("header", ["items=0-5", "pages=1", "x-unit=0-1,2-3"])
def test_ranges_of_another_unit_are_ignored(library: Library, header: str) -> None:
    response = library.get(library.small_id, range=header)
    assert response.status_code == 200  # RFC 9110 section 14.2: MUST ignore
    assert response.content == library.small
    assert "content-range" not in response.headers


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{bigger}", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(library: Library, header: str) -> None:
    size = len(library.small)
    response = library.get(library.small_id, range=header.format(size=size, bigger=size + 5))
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.json()["message"] == "Requested range not satisfiable"


def test_if_range_keeps_the_range_only_while_the_file_is_unchanged(library: Library) -> None:
    full = library.get(library.small_id)
    etag, modified = full.headers["etag"], full.headers["last-modified"]
    assert library.get(library.small_id, range="bytes=0-9", if_range=etag).status_code == 206
    assert library.get(library.small_id, range="bytes=0-9", if_range=modified).status_code == 206
    for stale in [
        '"not-the-etag"',
        f"W/{etag}",
        format_datetime(parsedate_to_datetime(modified).replace(year=2001), usegmt=True),
        "garbage",
    ]:
        response = library.get(library.small_id, range="bytes=0-9", if_range=stale)
        assert response.status_code == 200, stale
        assert response.content == library.small


# ---- who may watch, and which ids exist ----


def test_users_who_are_not_admins_get_403(library: Library) -> None:
    response = httpx.get(
        library.url(library.small_id), headers=cookie_header(access_cookie(library.server, USER))
    )
    assert response.status_code == 403
    assert response.json() == {
        "name": "Authentication Error",
        "message": "Insufficient permissions to access this resource",
    }


def test_no_cookie_is_401(library: Library) -> None:
    response = httpx.get(library.url(library.small_id))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"


def raw_get(server: Ovmeet, path: str, cookies: dict[str, str]) -> tuple[int, bytes]:
    """A GET sent byte for byte (clients would normalise `..` and encodings away)."""
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


@pytest.mark.parametrize(
    "recording_id",
    [
        "nope",
        "a--b",
        "a--b--c--d",
        "--b--c",
        "a----c",
        "a--b--",
        "a--b--c.mp4",
        "a%20b--c--d",
        "..",
        "..--..--..",
        "%2e%2e--%2e%2e--x",
        "..%2F..%2Fetc--x--y",
        "a%2Fb--c--d",
        "a%00--b--c",
        "a--b--c%00",
        "r%C3%A9c--b--c",
        "x" * 600,
    ],
)
def test_impossible_ids_are_not_found(library: Library, recording_id: str) -> None:
    status, body = raw_get(
        library.server, f"/meet/internal-api/v1/recordings/{recording_id}/stream", library.admin
    )
    assert status == 404
    assert json.loads(body) == {"name": "Recording Error", "message": "Recording not found"}


def test_an_unknown_recording_is_not_found(library: Library) -> None:
    response = library.get(f"{library.room}--EG_unknown--u1")
    assert response.status_code == 404
    assert response.json() == {"name": "Recording Error", "message": "Recording not found"}


def post_webhook(server: Ovmeet, event: object) -> httpx.Response:
    body, headers = signed(event)  # type: ignore[arg-type]
    return httpx.post(f"{server.base_url}/livekit/webhook", content=body, headers=headers)


@pytest.mark.parametrize(
    "status",
    [
        "EGRESS_STARTING",
        "EGRESS_ACTIVE",
        "EGRESS_ENDING",
        "EGRESS_FAILED",
        "EGRESS_ABORTED",
        "EGRESS_LIMIT_REACHED",
    ],
)
def test_recordings_that_are_not_complete_cannot_be_played(library: Library, status: str) -> None:
    uid = f"st{status[7:].replace('_', '')}"
    event = (
        "egress_ended"
        if status in ("EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED")
        else "egress_updated"
    )
    assert (
        post_webhook(
            library.server,
            ovmeet_egress_event(library.server, event, library.room, "EG_state", uid, status),
        ).status_code
        == 200
    )
    response = library.get(f"{library.room}--EG_state--{uid}")
    assert response.status_code == 404
    recording_id = f"{library.room}--EG_state--{uid}"
    expected = status.removeprefix("EGRESS_")
    assert response.json() == {
        "name": "Recording Error",
        "message": f"Recording '{recording_id}' cannot be played: its status is {expected}",
    }


def test_a_complete_recording_without_its_file_is_not_found(library: Library) -> None:
    event = ovmeet_egress_event(
        library.server,
        "egress_ended",
        library.room,
        "EG_nofile",
        "gone",
        "EGRESS_COMPLETE",
        size=10,
    )
    assert post_webhook(library.server, event).status_code == 200
    response = library.get(f"{library.room}--EG_nofile--gone")
    assert response.status_code == 404
    assert response.json()["message"].endswith("has no media file in storage")


# ---- streaming behaviour ----


def leave_after_the_first_bytes(library: Library) -> None:
    """Ask for the large recording, read the first bytes, and hang up."""
    cookie = "; ".join(f"{k}={v}" for k, v in library.admin.items())
    path = f"/meet/internal-api/v1/recordings/{library.large_id}/stream"
    with socket.create_connection(("127.0.0.1", library.server.port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


def bytes_read_by(server: Ovmeet) -> int:
    assert server.process is not None
    for line in Path(f"/proc/{server.process.pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/<pid>/io")


def settled(measure: Callable[[], int], interval: float = 0.25, limit: float = 5.0) -> int:
    """`measure()` once it has stopped changing for `interval` seconds (at most `limit`)."""
    last = measure()
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(interval)
        now = measure()
        if now == last:
            return now
        last = now
    return last


def test_a_client_that_leaves_stops_the_upstream_read(library: Library) -> None:
    before = bytes_read_by(library.server)
    leave_after_the_first_bytes(library)
    read = settled(lambda: bytes_read_by(library.server)) - before
    assert read < READ_AFTER_LEAVING, f"{read} bytes read after the client left"
    assert library.get(library.small_id).status_code == 200


@pytest.mark.parametrize("range_header", [None, "bytes=1000-"])
def test_head_answers_the_headers_without_reading_the_file(
    library: Library, range_header: str | None
) -> None:
    headers = {**cookie_header(library.admin), **({"range": range_header} if range_header else {})}
    get = library.server.client.get(
        library.url(library.large_id), headers={**headers, "range": "bytes=0-0"}
    )
    before = bytes_read_by(library.server)
    head = library.server.client.head(library.url(library.large_id), headers=headers)
    read = bytes_read_by(library.server) - before
    assert head.status_code == (206 if range_header else 200)
    assert head.content == b""
    length = LARGE - 1000 if range_header else LARGE
    assert head.headers["content-length"] == str(length)
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-type"] == "video/mp4"
    assert read < 1024 * 1024, f"HEAD read {read} bytes"


def test_streams_whose_clients_do_not_read_are_read_only_so_far(library: Library) -> None:
    """100 clients that ask for the large recording and read nothing: what ovmeet reads for
    them (from disk or S3) is bounded per stream by the send buffer cap and a chunk or two,
    not by the 4 MB or more the kernel would otherwise buffer for each."""
    cookie = "; ".join(f"{k}={v}" for k, v in library.admin.items())
    path = f"/meet/internal-api/v1/recordings/{library.large_id}/stream"
    before = bytes_read_by(library.server)
    stalled = []
    try:
        for _ in range(100):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", library.server.port))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
            stalled.append(sock)
        read = settled(lambda: bytes_read_by(library.server)) - before
        assert read / len(stalled) < 2 * 1024 * 1024, f"{read / len(stalled):.0f} bytes per stream"
        assert library.get(library.small_id).content == library.small  # others are served
    finally:
        for sock in stalled:
            sock.close()


# ---- storage failures ----


@pytest.fixture(scope="module")
def local_library(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Library:
    """A local server of its own, whose files these tests damage."""
    return stock(servers.start("local"), tmp_path_factory.mktemp("damaged"))


def local_path(library: Library, recording_id: str, kind: str) -> Path:
    room, egress, uid = recording_id.split("--")
    data = Path(library.server.env["MEET_DATA_DIR"])
    if kind == "metadata":
        return data / "recordings" / ".metadata" / room / egress / f"{uid}.json"
    return data / "recordings" / room / f"{room}--{uid}.mp4"


def test_unreadable_local_metadata_is_a_503_naming_the_storage(
    local_library: Library, tmp_path: Path
) -> None:
    copy = local_library.server.import_recording(
        make_mp4(tmp_path / "c.mp4", seconds=1), local_library.room
    )
    local_path(local_library, str(copy["recordingId"]), "metadata").write_text("{not json")
    response = local_library.get(str(copy["recordingId"]))
    assert response.status_code == 503
    assert response.json() == {
        "name": "Storage Error",
        "message": "Storage failed",
    }  # where and why: in the log only
    assert "local storage (" in local_library.server.log()
    assert f"{copy['recordingId'].split('--')[2]}.json is not valid JSON" in (
        local_library.server.log()
    )


def test_a_local_read_failing_on_the_first_chunk_is_still_a_json_500(
    local_library: Library, tmp_path: Path
) -> None:
    copy = local_library.server.import_recording(
        make_mp4(tmp_path / "d.mp4", seconds=1), local_library.room
    )
    media = local_path(local_library, str(copy["recordingId"]), "media")
    media.unlink()
    media.mkdir()  # stat works, reading fails
    response = local_library.get(str(copy["recordingId"]))
    assert response.status_code == 503
    assert response.json() == {"name": "Storage Error", "message": "Storage failed"}
    assert "Is a directory" in local_library.server.log()


def test_a_local_file_cut_short_mid_stream_closes_the_connection(local_library: Library) -> None:
    media = local_path(local_library, local_library.large_id, "media")

    def truncate() -> None:
        with media.open("r+b") as file:
            file.truncate(4 * 1024 * 1024)

    assert 0 < stream_broken_after_first_chunk(local_library, truncate) < LARGE


def stream_broken_after_first_chunk(library: Library, break_storage: Callable[[], None]) -> int:
    """Stream the large recording, breaking its storage once the first bytes are in; the
    bytes received before the server closed the connection (which it must do)."""
    received = 0
    headers = cookie_header(library.admin)
    with httpx.stream("GET", library.url(library.large_id), headers=headers) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_bytes():
                if received == 0:
                    break_storage()
                received += len(chunk)
    return received


@pytest.fixture(scope="module")
def s3_relay(
    servers: Servers, seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Library, Relay]]:
    """An S3 server of its own, reaching SeaweedFS through a relay the tests can cut."""
    relay = Relay(seaweed.s3_port)
    server = servers.start("s3", MEET_S3_SERVICE_ENDPOINT=relay.endpoint)
    library = stock(server, tmp_path_factory.mktemp("relayed"))
    yield library, relay
    server.stop()
    relay.close()


def test_an_s3_stream_left_by_its_client_stops_and_releases_its_connection(
    s3_relay: tuple[Library, Relay],
) -> None:
    library, relay = s3_relay
    relay.accepting = True
    before = {id(c): c.bytes_down for c in relay.connections}
    leave_after_the_first_bytes(library)
    settled(lambda: sum(c.bytes_down for c in relay.connections))
    carried = max(relay.connections, key=lambda c: c.bytes_down - before.get(id(c), 0))
    read = carried.bytes_down - before.get(id(carried), 0)
    assert 0 < read < READ_AFTER_LEAVING, f"{read} bytes pulled from S3 after the client left"
    assert carried.closed, "the S3 connection of the abandoned read is still open"
    assert library.get(library.small_id).content == library.small


def test_s3_failing_mid_stream_closes_the_connection(s3_relay: tuple[Library, Relay]) -> None:
    library, relay = s3_relay
    relay.accepting = True
    received = stream_broken_after_first_chunk(library, lambda: relay.cut(refuse_new=False))
    assert 0 < received < LARGE
    assert library.get(library.small_id).content == library.small  # and it recovers


def test_s3_down_before_the_first_byte_is_a_503_naming_it(s3_relay: tuple[Library, Relay]) -> None:
    library, relay = s3_relay
    relay.cut(refuse_new=True)
    try:
        response = library.get(library.small_id)
    finally:
        relay.accepting = True
    assert response.status_code == 503
    assert response.json() == {"name": "Storage Error", "message": "Storage failed"}
    assert f"S3 storage ({relay.endpoint}, bucket " in library.server.log()
    assert "unreachable" in library.server.log()


# ---- ovmeet recordings import ----


def test_import_prints_complete_metadata(library: Library, tmp_path: Path) -> None:
    clip = make_mp4(tmp_path / "three.mp4", seconds=3)
    metadata = import_with_cli(library.server, clip, library.room, "--egress-id", "EG_imported")
    recording_id = str(metadata["recordingId"])
    room, egress, uid = recording_id.split("--")
    assert (room, egress) == (library.room, "EG_imported")
    assert metadata["roomId"] == library.room
    assert metadata["status"] == "COMPLETE"
    assert metadata["filename"] == f"{room}--{uid}.mp4"
    assert metadata["size"] == clip.stat().st_size
    assert abs(metadata["duration"] - 3.0) < 0.1
    assert metadata["endDate"] - metadata["startDate"] == int(metadata["duration"] * 1000)
    assert library.get(recording_id).content == clip.read_bytes()


@pytest.mark.parametrize(
    "content", [b"", b"not a video at all", b"\x00\x00\x00\x18ftypisom" + b"\x00" * 16]
)
def test_import_refuses_what_is_not_an_mp4_and_writes_nothing(
    library: Library, tmp_path: Path, content: bytes
) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(content)
    stored = Stored(library.server)
    before = stored.keys("recordings/")
    result = library.server.cli("recordings", "import", str(fake), "--room", library.room)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "is not an MP4 file" in result.stderr
    assert stored.keys("recordings/") == before


def test_import_into_a_missing_room_fails(library: Library, tmp_path: Path) -> None:
    result = library.server.cli(
        "recordings", "import", str(make_mp4(tmp_path / "x.mp4", seconds=1)), "--room", "no-room"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "ovmeet: The room 'no-room' does not exist"


# ---- what is reused between seeks ----


def media_key(recording_id: str) -> str:
    room, _, uid = recording_id.split("--")
    return f"recordings/{room}/{room}--{uid}.mp4"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_seek_after_the_file_was_replaced_gets_the_new_bytes(
    servers: Servers, backend: str, tmp_path: Path
) -> None:
    library = stock(servers.start(backend), tmp_path)
    assert library.get(library.small_id, range="bytes=0-99").status_code == 206  # now known
    replacement = tmp_path / "other.mp4"
    replacement.write_bytes(b"\x00" * 50 + library.small[50:] + b"tail")
    time.sleep(1.1)  # a local file's version includes its modification time (seconds)
    Stored(library.server).put_file(media_key(library.small_id), replacement)
    answer = library.get(library.small_id, range="bytes=0-99")
    assert answer.status_code == 206
    assert answer.content == replacement.read_bytes()[:100]
    assert answer.headers["content-range"].endswith(f"/{len(library.small) + 4}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_seek_after_the_file_was_deleted_is_404(
    servers: Servers, backend: str, tmp_path: Path
) -> None:
    library = stock(servers.start(backend), tmp_path)
    assert library.get(library.small_id, range="bytes=0-99").status_code == 206
    assert (
        httpx.head(library.url(library.small_id), headers=cookie_header(library.admin)).status_code
        == 200
    )
    Stored(library.server).delete(media_key(library.small_id))
    for answer in (
        library.get(library.small_id, range="bytes=0-99"),
        httpx.head(library.url(library.small_id), headers=cookie_header(library.admin)),
    ):
        assert answer.status_code == 404
