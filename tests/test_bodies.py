"""Oversized bodies, in every spelling of their media type, to every operation that takes a body:
the server never holds them. 200 MB each, concurrently, declared (Content-Length) or not
(chunked); the answer is 413 or 415 and the server's memory stays within a small bound."""

from __future__ import annotations

import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ovmeet.web.app import load_spec
from ovmeet.web.paths import SPECS
from tests.conftest import Servers
from tests.support.helpers import access_cookie, cookie_header
from tests.support.processes import Ovmeet
from tests.support.stored import Stored

SIZE = 200 * 1024 * 1024
CHUNK = b"[" * (1024 * 1024)  # one MiB of JSON that never ends
MEDIA_TYPES = ["Application/JSON", "APPLICATION/JSON; charset=utf-8", "application/json", None]
RSS_BOUND_MIB = 60  # growth allowed while every attack runs (one 64 KiB body per request)


def body_operations() -> list[tuple[str, str]]:
    """(method, path) of every operation with a request body, path parameters filled in."""
    found = []
    for spec, bases in SPECS.items():
        base, document = bases[0], load_spec(spec)
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if isinstance(operation, dict) and "requestBody" in operation:
                    filled = path.replace("{", "").replace("}", "")
                    found.append((method.upper(), base + filled))
    return found


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def attack(server: Ovmeet, method: str, path: str, media_type: str | None, chunked: bool) -> int:
    """Send up to SIZE bytes, stopping when the server answers; its status code."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if media_type is not None:
        head += f"Content-Type: {media_type}\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {SIZE}\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall((head + "\r\n").encode())
        sent = 0
        while sent < SIZE:
            if select.select([sock], [], [], 0)[0]:
                break  # the server has answered
            piece = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n" if chunked else CHUNK
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(CHUNK)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 "), (method, path, media_type, answer[:200])
    assert b"application/json" in answer.split(b"\r\n\r\n")[0].lower(), answer[:300]
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def server(servers: Servers) -> Ovmeet:
    return servers.get("local")


def test_the_operations_with_a_body_are_all_attacked() -> None:
    operations = body_operations()
    assert ("POST", "/meet/internal-api/v1/participants/token") in operations
    assert ("PUT", "/meet/api/v1/preferences/appearance") in operations
    assert ("POST", "/livekit/webhook") in operations
    assert len(operations) >= 10, operations


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_no_body_beyond_the_limit_is_ever_held(server: Ovmeet, chunked: bool) -> None:
    assert server.process is not None
    pid = server.process.pid
    before, log_before = rss_mib(pid), len(server.log())
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, rss_mib(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    cases = [(m, p, t) for m, p in body_operations() for t in MEDIA_TYPES]
    try:
        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(lambda c: attack(server, c[0], c[1], c[2], chunked), cases))
    finally:
        done.set()
        sampler.join()
    for (method, path, media_type), status in zip(cases, statuses, strict=True):
        expected = {413, 415} if media_type is None else {413}  # 415: chunked, no type
        assert status in expected, (method, path, media_type, status)
    assert peak - before < RSS_BOUND_MIB, f"RSS grew {peak - before:.0f} MiB"
    time.sleep(0.2)
    assert "Traceback" not in server.log()[log_before:]


def test_a_json_body_without_its_media_type_is_415_and_does_nothing(server: Ovmeet) -> None:
    """A cross-origin "simple" request (a form's text/plain, or no type at all) cannot carry
    JSON to an operation: 415, and nothing is created."""
    room = server.create_room("typed")
    body = f'{{"roomName": "{room["roomName"]}", "participantName": "eve", "secret": "x"}}'
    for headers in ({}, {"Content-Type": "text/plain"}):
        answer = httpx.post(
            f"{server.api}/participants/token", content=body.encode(), headers=headers
        )
        assert answer.status_code == 415, (headers, answer.text)
        assert "content-type" in answer.json()["message"].lower()
        assert "set-cookie" not in answer.headers
    before = Stored(server).keys("rooms/")
    cookie = cookie_header(access_cookie(server))
    made = httpx.post(
        f"{server.base_url}/meet/api/v1/rooms", content=b'{"roomIdPrefix": "x"}', headers=cookie
    )
    assert made.status_code == 415, made.text
    assert Stored(server).keys("rooms/") == before


def nested(levels: int) -> str:
    """An appearance value whose objects nest `levels` deep."""
    return '{"a":' * (levels - 1) + "{}" + "}" * (levels - 1)


def test_one_depth_limit_for_every_json_body_tested_at_the_limit(server: Ovmeet) -> None:
    cookie = cookie_header(access_cookie(server))
    appearance = f"{server.base_url}/meet/api/v1/preferences/appearance"
    headers = {**cookie, "Content-Type": "application/json"}
    at_limit = httpx.put(appearance, content=nested(64), headers=headers)
    assert at_limit.status_code == 200, at_limit.text
    for levels in (65, 475, 5000):
        answer = httpx.put(appearance, content=nested(levels), headers=headers)
        assert answer.status_code == 400, (levels, answer.text)
        assert "deeper than 64 levels" in answer.json()["message"]
    token = httpx.post(
        f"{server.api}/participants/token",
        content="[" * 65 + "]" * 65,
        headers={"Content-Type": "application/json"},
    )
    assert token.status_code == 400 and "deeper than 64" in token.json()["message"]
    assert httpx.get(appearance, headers=cookie).status_code == 200
    assert "RecursionError" not in server.log()
