"""Attacks on the HTTP edge, over sockets: slow and idle connections, floods, host headers,
proxy headers; and the headers every response carries."""

from __future__ import annotations

import os
import socket
import time

import httpx
import pytest

from tests.conftest import AppFactory, Servers
from tests.support.processes import ADMIN, Ovmeet

HARDENING = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


@pytest.fixture(scope="module")
def strict(servers: Servers) -> Ovmeet:
    """Short timeouts, few connections, no trusted proxy."""
    return servers.get(
        "local",
        MEET_HTTP_HEAD_TIMEOUT="1s",
        MEET_HTTP_BODY_TIMEOUT="1s",
        MEET_HTTP_KEEPALIVE_TIMEOUT="1s",
        MEET_MAX_CONNECTIONS="40",
        MEET_TRUSTED_PROXIES="",
    )


def connect(server: Ovmeet) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_until_closed(sock: socket.socket, limit: float = 10) -> tuple[bytes, float]:
    """What the server sent before closing, and after how many seconds it closed."""
    started = time.monotonic()
    sock.settimeout(limit)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received, time.monotonic() - started


def open_fds(server: Ovmeet) -> int:
    assert server.process is not None
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


# ---- 2. idle, slow and too many connections ----


def test_a_connection_that_sends_nothing_is_closed(strict: Ovmeet) -> None:
    with connect(strict) as sock:
        received, after = read_until_closed(sock)
    assert received == b"" and after < 3


def test_a_head_sent_byte_by_byte_is_cut_off_at_the_head_timeout(strict: Ovmeet) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /meet/health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        sock.settimeout(0.1)
        answer = None
        for _ in range(40):  # a byte every 0.1 s: 4 s if nothing cut it off
            try:
                sock.sendall(b"X")
                answer = sock.recv(65536)
                break
            except TimeoutError:
                continue
        elapsed = time.monotonic() - started
    assert answer is not None and answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"The request head did not arrive within 1 s" in answer
    assert elapsed < 2.5


def test_a_body_that_never_comes_is_cut_off_at_the_body_timeout(strict: Ovmeet) -> None:
    with connect(strict) as sock:
        sock.sendall(
            b"POST /meet/internal-api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user'
        )
        answer, after = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"The request body did not arrive within 1 s" in answer
    assert after < 3


def test_an_idle_kept_alive_connection_is_closed(strict: Ovmeet) -> None:
    with connect(strict) as sock:
        sock.sendall(b"GET /meet/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer, after = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200 ") and after < 3


def test_a_flood_of_idle_connections_does_not_stop_the_server(strict: Ovmeet) -> None:
    flood = [connect(strict) for _ in range(200)]
    half = [connect(strict) for _ in range(100)]
    try:
        for sock in half:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: ")
        for _ in range(5):  # others are still served, at once
            started = time.monotonic()
            response = httpx.get(f"{strict.base_url}/meet/health", timeout=5)
            assert response.status_code == 200
            assert time.monotonic() - started < 1
        assert open_fds(strict) < 40 + 30  # at most MEET_MAX_CONNECTIONS sockets, plus files
    finally:
        for sock in flood + half:
            sock.close()


# ---- 7. host and proxy headers ----


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/meet/internal-api/v1/ui", "/meet/internal-api/v1/ui/"),
        ("/meet/api/v1/ui", "/meet/api/v1/ui/"),
    ],
)
def test_redirects_never_name_a_host_from_the_request(
    strict: Ovmeet, path: str, location: str
) -> None:
    headers = {"host": "evil.example", "x-forwarded-proto": "https", "x-forwarded-host": "e.x"}
    response = strict.client.get(strict.base_url + path, headers=headers)
    assert response.status_code == 307
    assert response.headers["location"] == location


def test_forwarded_for_counts_only_from_a_trusted_proxy(strict: Ovmeet) -> None:
    """Without MEET_TRUSTED_PROXIES, X-Forwarded-For cannot spread guesses over fake clients."""
    for n in range(6):
        response = strict.client.post(
            f"{strict.api}/auth/login",
            json={"username": ADMIN[0], "password": f"guess-{n}"},
            headers={"x-forwarded-for": f"198.51.100.{n}"},
        )
    assert response.status_code == 429


# ---- 10. browser hardening on every response ----


def test_every_response_carries_the_hardening_headers(strict: Ovmeet) -> None:
    answers = [
        strict.client.get(f"{strict.base_url}/meet/health"),
        strict.client.get(f"{strict.api}/ui/"),
        strict.client.get(f"{strict.api}/openapi.json"),
        strict.client.get(f"{strict.base_url}/nowhere"),
        strict.client.get(f"{strict.api}/auth/profile"),
        strict.client.post(f"{strict.api}/participants/token", content=b"{"),
    ]
    for response in answers:
        for name, value in HARDENING.items():
            assert response.headers.get(name) == value, (response.url, name)
        assert "server" not in response.headers
    with connect(strict) as sock:  # refused by the HTTP parser itself
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        raw, _ = read_until_closed(sock)
    assert raw.startswith(b"HTTP/1.1 400 ")
    for name, value in HARDENING.items():
        assert f"{name}: {value}".encode() in raw


def test_the_docs_can_be_switched_off(apps: AppFactory) -> None:
    app = apps(MEET_DOCS_ENABLED="false")
    assert app.client.get(f"{app.api}/ui/").status_code == 404
    assert app.client.get(f"{app.api}/openapi.json").status_code == 200
