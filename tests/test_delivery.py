"""Recordings at storage speed: a presigned S3 redirect, or nginx sending the bytes itself, after
ovmeet's access check (MEET_RECORDING_DELIVERY). Real SeaweedFS, real nginx, real ovmeet."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from tests.conftest import Servers
from tests.support.helpers import access_cookie, cookie_header, login
from tests.support.media import make_mp4
from tests.support.processes import REPO, Ovmeet, SeaweedFS, base_env, run_cli
from tests.support.proxy import Nginx
from tests.support.relay import Relay
from tests.test_browser import SLOW, play_and_seek

STREAM = "/meet/internal-api/v1/recordings/{}/stream"
EXAMPLES = REPO / "docs" / "nginx"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = make_mp4(tmp_path_factory.mktemp("delivery") / "clip.mp4", seconds=2)
    return path.read_bytes()


def _recording(server: Ovmeet, clip: bytes, tmp_path: Path, prefix: str) -> str:
    source = tmp_path / f"{prefix}.mp4"
    source.write_bytes(clip)
    room = server.create_room(prefix)["roomName"]
    return str(server.import_recording(source, room)["recordingId"])


@pytest.fixture(scope="module")
def redirecting(servers: Servers, seaweed: SeaweedFS) -> Ovmeet:
    # Browsers reach S3 as localhost, ovmeet as 127.0.0.1: the URL must name the former.
    public = f"http://localhost:{urlsplit(seaweed.endpoint).port}"
    return servers.start(
        "s3",
        MEET_RECORDING_DELIVERY="redirect",
        MEET_RECORDING_URL_TTL="2s",
        MEET_S3_PUBLIC_ENDPOINT=public,
    )


def _admin(server: Ovmeet) -> dict[str, str]:
    return cookie_header(access_cookie(server))


def test_redirect_sends_the_browser_to_a_presigned_url_of_the_public_endpoint(
    redirecting: Ovmeet, clip: bytes, tmp_path: Path
) -> None:
    recording_id = _recording(redirecting, clip, tmp_path, "redir")
    url = redirecting.base_url + STREAM.format(recording_id)
    answer = httpx.get(url, headers=_admin(redirecting))
    assert answer.status_code == 302, answer.text
    assert answer.headers["cache-control"] == "no-store"
    location = answer.headers["location"]
    assert urlsplit(location).hostname == "localhost" and "X-Amz-Signature=" in location
    whole = httpx.get(location)  # no cookie, no key: the URL is the credential
    assert whole.status_code == 200 and whole.content == clip
    assert whole.headers["content-type"] == "video/mp4"
    part = httpx.get(location, headers={"Range": "bytes=100-299"})
    assert part.status_code == 206 and part.content == clip[100:300]
    assert "X-Amz-Signature" not in redirecting.log()  # never in ovmeet's log


def test_a_presigned_url_expires_and_the_next_request_gets_a_fresh_one(
    redirecting: Ovmeet, clip: bytes, tmp_path: Path
) -> None:
    recording_id = _recording(redirecting, clip, tmp_path, "expiry")
    url = redirecting.base_url + STREAM.format(recording_id)
    first = httpx.get(url, headers=_admin(redirecting)).headers["location"]
    time.sleep(3.5)  # MEET_RECORDING_URL_TTL=2s, and S3's clock counts whole seconds
    assert httpx.get(first).status_code == 403
    fresh = httpx.get(url, headers=_admin(redirecting)).headers["location"]
    assert fresh != first and httpx.get(fresh).content == clip


def test_a_presigned_url_opens_its_own_recording_only(
    redirecting: Ovmeet, clip: bytes, tmp_path: Path
) -> None:
    mine = _recording(redirecting, clip, tmp_path, "mine")
    theirs = _recording(redirecting, clip[:-10] + b"0123456789", tmp_path, "theirs")
    location = httpx.get(
        redirecting.base_url + STREAM.format(mine), headers=_admin(redirecting)
    ).headers["location"]
    parts = urlsplit(location)
    room, other = mine.split("--")[0], theirs.split("--")[0]
    mine_file = f"{room}--{mine.split('--')[2]}.mp4"
    theirs_file = f"{other}--{theirs.split('--')[2]}.mp4"
    forged_path = parts.path.replace(room, other).replace(mine_file, theirs_file)
    assert forged_path != parts.path
    forged = httpx.get(urlunsplit(parts._replace(path=forged_path)))
    assert forged.status_code == 403
    assert b"SignatureDoesNotMatch" in forged.content


def test_refusals_and_range_errors_are_those_of_proxy_mode(
    servers: Servers, redirecting: Ovmeet, clip: bytes, tmp_path: Path
) -> None:
    proxy = servers.get("s3")
    cases = [
        ({}, None),  # no cookie
        (_admin(proxy), "bytes=5-1"),
        (_admin(proxy), "bytes=99999999-"),
        (_admin(proxy), "bytes=0-1,5-9"),
    ]
    for server in (proxy, redirecting):
        recording_id = _recording(server, clip, tmp_path, "same")
        answers = []
        for headers, range_header in cases:
            sent = dict(headers) if server is proxy else _admin(server) if headers else {}
            if range_header:
                sent["Range"] = range_header
            got = httpx.get(server.base_url + STREAM.format(recording_id), headers=sent)
            answers.append((got.status_code, got.json()["name"]))
        missing = httpx.get(server.base_url + STREAM.format("no--EG_x--y"), headers=_admin(server))
        answers.append((missing.status_code, missing.json()["message"]))
        if server is proxy:
            expected = answers
        else:
            assert answers == expected
    assert [status for status, _ in expected] == [401, 400, 416, 400, 404]


def test_head_is_proxied_in_redirect_mode(redirecting: Ovmeet, clip: bytes, tmp_path: Path) -> None:
    recording_id = _recording(redirecting, clip, tmp_path, "head")
    answer = httpx.head(
        redirecting.base_url + STREAM.format(recording_id), headers=_admin(redirecting)
    )
    assert answer.status_code == 200
    assert answer.headers["content-length"] == str(len(clip))
    assert "location" not in answer.headers


def _site(example: str, ovmeet_port: int, **values: str) -> str:
    """A docs/nginx example with its CHANGE values replaced by the test's."""
    text = (EXAMPLES / example).read_text()
    text = text.replace("listen 127.0.0.1:8080;", "listen 127.0.0.1:{port};")
    text = text.replace("http://127.0.0.1:6080", f"http://127.0.0.1:{ovmeet_port}")
    for old, new in values.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def accel_local(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Ovmeet, Nginx]]:
    data = tmp_path_factory.mktemp("accel-data")
    server = servers.start(
        "local",
        MEET_RECORDING_DELIVERY="accel",
        MEET_DATA_DIR=str(data),
        MEET_TRUSTED_PROXIES="127.0.0.1",
    )
    site = _site("accel-local.conf", server.port, **{"/srv/ovmeet/data/": f"{data}/"})
    nginx = Nginx(tmp_path_factory.mktemp("accel-nginx"), [], site=site).start()
    yield server, nginx
    nginx.stop()


@pytest.fixture(scope="module")
def accel_s3(
    servers: Servers, seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Ovmeet, Nginx]]:
    server = servers.start("s3", MEET_RECORDING_DELIVERY="accel", MEET_TRUSTED_PROXIES="127.0.0.1")
    s3 = urlsplit(seaweed.endpoint).netloc
    site = _site(
        "accel-s3.conf",
        server.port,
        **{"http://127.0.0.1:9000/": f"http://{s3}/", "Host 127.0.0.1:9000;": f"Host {s3};"},
    )
    nginx = Nginx(tmp_path_factory.mktemp("accel-s3-nginx"), [], site=site).start()
    yield server, nginx
    nginx.stop()


@pytest.fixture(params=["local", "s3"])
def accel(
    request: pytest.FixtureRequest,
    accel_local: tuple[Ovmeet, Nginx],
    accel_s3: tuple[Ovmeet, Nginx],
) -> tuple[Ovmeet, Nginx]:
    return accel_local if request.param == "local" else accel_s3


@dataclass(frozen=True)
class BehindNginx:
    """A recording of an ovmeet in accel mode, and its stream's URL through nginx."""

    server: Ovmeet
    nginx: Nginx
    recording_id: str
    url: str


@pytest.fixture
def behind_nginx(accel: tuple[Ovmeet, Nginx], clip: bytes, tmp_path: Path) -> BehindNginx:
    server, nginx = accel
    recording_id = _recording(server, clip, tmp_path, "nginx")
    return BehindNginx(server, nginx, recording_id, nginx.base_url + STREAM.format(recording_id))


def test_through_nginx_ranges_are_byte_exact(behind_nginx: BehindNginx, clip: bytes) -> None:
    url, admin = behind_nginx.url, _admin(behind_nginx.server)
    whole = httpx.get(url, headers=admin)
    assert whole.status_code == 200 and whole.content == clip
    assert whole.headers["content-type"] == "video/mp4"
    assert "x-accel-redirect" not in whole.headers
    size = len(clip)
    head = httpx.head(url, headers=admin)  # answered by ovmeet itself, as in proxy mode
    assert head.status_code == 200 and head.headers["content-length"] == str(size)
    for range_header, expected in [
        ("bytes=0-0", clip[:1]),
        ("bytes=100-199", clip[100:200]),
        (f"bytes={size - 50}-", clip[-50:]),
        ("bytes=-50", clip[-50:]),
        (f"bytes=10-{size * 2}", clip[10:]),
    ]:
        part = httpx.get(url, headers={**admin, "Range": range_header})
        assert part.status_code == 206, (range_header, part.text)
        assert part.content == expected, range_header
    past = httpx.get(url, headers={**admin, "Range": f"bytes={size}-"})
    assert past.status_code == 416  # ovmeet's own check, before nginx is handed anything
    etag = whole.headers["etag"]
    kept = httpx.get(url, headers={**admin, "Range": "bytes=0-9", "If-Range": etag})
    assert kept.status_code == 206 and kept.content == clip[:10]
    stale = httpx.get(url, headers={**admin, "Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == clip


def test_through_nginx_the_access_check_is_ovmeets(behind_nginx: BehindNginx) -> None:
    nginx, recording_id = behind_nginx.nginx, behind_nginx.recording_id
    assert httpx.get(behind_nginx.url).status_code == 401
    assert httpx.get(nginx.base_url + "/_ovmeet_media/recordings/x.mp4").status_code == 404
    key = f"recordings/{recording_id.split('--')[0]}/"
    assert httpx.get(f"{nginx.base_url}/_ovmeet_media/{key}").status_code == 404


def test_a_client_that_goes_away_through_nginx_leaves_it_serving(
    behind_nginx: BehindNginx, clip: bytes
) -> None:
    admin = _admin(behind_nginx.server)
    path = STREAM.format(behind_nginx.recording_id)
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", behind_nginx.nginx.port)) as sock:
            head = f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {admin['cookie']}"
            sock.sendall(head.encode() + b"\r\n\r\n")
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
    again = httpx.get(behind_nginx.url, headers=admin)
    assert again.status_code == 200 and again.content == clip


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MEET_RECORDING_DELIVERY": "redirect"}, "MEET_RECORDING_DELIVERY"),
        ({"MEET_RECORDING_DELIVERY": "sendfile"}, "MEET_RECORDING_DELIVERY"),
        ({"MEET_ACCEL_PREFIX": "media"}, "MEET_ACCEL_PREFIX"),
        ({"MEET_RECORDING_URL_TTL": "8d"}, "MEET_RECORDING_URL_TTL"),
        ({"MEET_S3_PUBLIC_ENDPOINT": "http://s3.example/bucket"}, "MEET_S3_PUBLIC_ENDPOINT"),
    ],
)
def test_a_delivery_setting_that_cannot_work_is_one_line(
    env: dict[str, str], variable: str, tmp_path: Path
) -> None:
    full = {**base_env("http://127.0.0.1:1"), "MEET_DATA_DIR": str(tmp_path), **env}
    result = run_cli(full, "serve", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ovmeet: configuration error: {variable}: ")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s of noise (30 MB): at 4 MB/s a seek to the middle must fetch a new range."""
    folder = tmp_path_factory.mktemp("delivery-browser")
    return make_mp4(folder / "clip.mp4", seconds=8, size="640x360", noise=True)


def test_chromium_plays_and_seeks_through_a_presigned_redirect(
    servers: Servers, seaweed: SeaweedFS, long_clip: Path, tmp_path: Path
) -> None:
    with Relay(seaweed.s3_port, bytes_per_second=SLOW) as slow:  # S3 as browsers reach it
        server = servers.start(
            "s3", MEET_RECORDING_DELIVERY="redirect", MEET_S3_PUBLIC_ENDPOINT=slow.endpoint
        )
        room = server.create_room("play")["roomName"]
        recording_id = server.import_recording(long_clip, room)["recordingId"]
        stream_url = server.base_url + STREAM.format(recording_id)
        seen = play_and_seek(stream_url, login(server)["OvMeetAccessToken"], tmp_path)
    seen.assert_played_and_seeked()
    assert 302 in seen.statuses[stream_url], seen.statuses
    from_s3 = [s for url, ss in seen.statuses.items() if url.startswith(slow.endpoint) for s in ss]
    assert 206 in from_s3, seen.statuses


def test_chromium_plays_and_seeks_through_nginx(
    accel_local: tuple[Ovmeet, Nginx], long_clip: Path, tmp_path: Path
) -> None:
    server, nginx = accel_local
    room = server.create_room("play")["roomName"]
    recording_id = server.import_recording(long_clip, room)["recordingId"]
    with Relay(nginx.port, bytes_per_second=SLOW) as slow:
        stream_url = f"{slow.endpoint}{STREAM.format(recording_id)}"
        seen = play_and_seek(stream_url, login(server)["OvMeetAccessToken"], tmp_path)
    seen.assert_played_and_seeked()
    assert 206 in seen.statuses[stream_url], seen.statuses
