"""SIGTERM: no new connections; a stream in flight and a webhook in flight both finish; then the
process ends within MEET_SHUTDOWN_GRACE, and what it stored is whole."""

from __future__ import annotations

import hashlib
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Servers
from tests.support.helpers import access_cookie, cookie_header
from tests.support.livekit_webhooks import ovmeet_egress_event, signed
from tests.support.media import make_mp4, pad_mp4
from tests.support.stored import Stored

SIZE = 48 * 1024 * 1024


def http_head(path: str, port: int, headers: dict[str, str], length: int) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {length}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_sigterm_lets_a_stream_and_a_webhook_in_flight_finish(
    servers: Servers, backend: str, tmp_path: Path
) -> None:
    server = servers.start(backend, MEET_SHUTDOWN_GRACE="20s")
    room = server.create_room("bye")["roomName"]
    source = pad_mp4(make_mp4(tmp_path / "a.mp4", seconds=1), tmp_path / "big.mp4", SIZE)
    recording = server.import_recording(source, room)
    cookies = access_cookie(server)
    url = f"{server.api}/recordings/{recording['recordingId']}/stream"

    event = ovmeet_egress_event(server, "egress_started", room, "EG_bye", "u1", "EGRESS_ACTIVE")
    body, headers = signed(event)
    webhook = socket.create_connection(("127.0.0.1", server.port))
    webhook.sendall(http_head("/livekit/webhook", server.port, headers, len(body)))
    webhook.sendall(body[:10])  # the webhook is in flight: its body half sent

    assert server.process is not None
    digest, received = hashlib.sha256(), 0
    with (
        httpx.Client(timeout=30) as client,
        client.stream("GET", url, headers=cookie_header(cookies)) as stream,
    ):
        chunks = stream.iter_bytes(1024 * 1024)
        first = next(chunks)
        digest.update(first)
        received += len(first)
        server.process.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        time.sleep(1)
        with pytest.raises(httpx.ConnectError):  # no new connections
            httpx.get(f"{server.base_url}/meet/health", timeout=2)
        webhook.sendall(body[10:])
        answer = read_response(webhook)
        assert answer.startswith(b"HTTP/1.1 200") and b"is ACTIVE" in answer, answer
        for chunk in chunks:  # the rest of the stream, after the signal
            digest.update(chunk)
            received += len(chunk)
    webhook.close()
    assert received == SIZE
    assert digest.hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    server.process.wait(timeout=25)
    assert time.monotonic() - stopped_at < 25
    # uvicorn re-raises the SIGTERM once shut down, so that supervisors see a stop by signal.
    assert server.process.returncode == -signal.SIGTERM

    stored = Stored(server)
    metadata = [k for k in stored.keys("recordings/.metadata/") if "EG_bye" in k]
    assert len(metadata) == 1
    assert stored.read_json(metadata[0])["status"] == "ACTIVE"  # whole, and as the event said
    for key in stored.keys("recordings/.metadata/") + stored.keys("rooms/"):
        assert isinstance(stored.read_json(key), dict), key


def test_the_grace_period_bounds_a_stream_nobody_reads(servers: Servers, tmp_path: Path) -> None:
    server = servers.start("local", MEET_SHUTDOWN_GRACE="2s")
    room = server.create_room("bye")["roomName"]
    source = pad_mp4(make_mp4(tmp_path / "a.mp4", seconds=1), tmp_path / "big.mp4", SIZE)
    recording = server.import_recording(source, room)
    stalled = socket.create_connection(("127.0.0.1", server.port))
    cookie = cookie_header(access_cookie(server))["cookie"]
    path = f"/meet/internal-api/v1/recordings/{recording['recordingId']}/stream"
    stalled.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
    stalled.recv(1024)  # the stream has started; this client then reads nothing
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    server.process.wait(timeout=15)
    assert 1.5 < time.monotonic() - started < 10  # waited for it, then gave up at the grace
    stalled.close()
    log = server.log()
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in log
    stream_line = next(line for line in log.splitlines() if "getRecordingStream" in line)
    assert stream_line.endswith(" incomplete") or " incomplete [request" in stream_line
