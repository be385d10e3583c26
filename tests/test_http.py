"""The HTTP edge: every error is JSON {name?, message}; hostile requests change nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from connexion.lifecycle import ConnexionRequest
from connexion.middleware import ConnexionMiddleware

from ovmeet.support.config import Config
from ovmeet.web.app import create_app, middlewares
from ovmeet.web.errors import on_unexpected
from ovmeet.web.operations import parameter_cannot_fail
from tests.conftest import Servers
from tests.support.helpers import access_cookie, cookie_header, token_body
from tests.support.processes import ADMIN, Ovmeet


@pytest.fixture(scope="module")
def local(servers: Servers) -> Ovmeet:
    return servers.get("local")


def assert_json_error(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) <= {"name", "message"} and body["message"], body
    return body  # type: ignore[no-any-return]


def test_health(local: Ovmeet) -> None:
    response = httpx.get(f"{local.base_url}/meet/health")
    assert response.status_code == 200 and response.json() == {"status": "UP"}


@pytest.mark.parametrize(
    "path", ["/nope", "/meet/internal-api/v1/nope", "/meet/internal-api/v1/auth/nope", "/livekit/x"]
)
def test_unknown_paths_are_json_404(local: Ovmeet, path: str) -> None:
    body = assert_json_error(httpx.get(local.base_url + path), 404)
    assert body == {"name": "Request Error", "message": f"GET {path} is not part of this API"}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/meet/internal-api/v1/participants/token", "POST"),
        ("PUT", "/meet/internal-api/v1/participants/token/refresh", "POST"),
        ("POST", "/meet/internal-api/v1/recordings/a--b--c/stream", "GET"),
        ("POST", "/meet/health", "GET"),
    ],
)
def test_wrong_methods_are_json_405_with_allow(
    local: Ovmeet, method: str, path: str, allow: str
) -> None:
    response = httpx.request(method, local.base_url + path)
    assert_json_error(response, 405)
    assert allow in response.headers["allow"]


@pytest.mark.parametrize(
    ("content", "content_type", "status", "fragment"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (b"\xff\xfe\x00{}", "application/json", 400, "not valid utf-8"),
        (b'{"roomName": "r"}', "application/json", 400, "'participantName' is a required property"),
        (
            b'{"roomName": "", "participantName": "a", "secret": "s"}',
            "application/json",
            400,
            "non-empty",
        ),
        (
            b'{"roomName": 1, "participantName": "a", "secret": "s"}',
            "application/json",
            400,
            "is not of type 'string'",
        ),
        (b"[]", "application/json", 400, "is not of type 'object'"),
        (b"", "application/json", 400, "RequestBody is required"),
        (b"roomName=r", "application/x-www-form-urlencoded", 415, "Invalid Content-type"),
        (b"hello", "text/plain", 415, "Invalid Content-type"),
        (b"{" + b" " * 70_000 + b"}", "application/json", 413, "exceeds 65536 bytes"),
    ],
)
def test_malformed_bodies_get_a_clear_json_error(
    local: Ovmeet, content: bytes, content_type: str, status: int, fragment: str
) -> None:
    response = httpx.post(
        f"{local.api}/participants/token", content=content, headers={"content-type": content_type}
    )
    assert fragment in assert_json_error(response, status)["message"]


HOSTILE_JSON = {
    "nested 30000 deep": b"[" * 30_000,
    "nested objects 12000 deep": b'{"a":' * 12_000,
    "a lone surrogate in a field": b'{"roomName": "\\ud800", "participantName": "a", '
    b'"secret": "s"}',
    "a lone surrogate in a key": b'{"\\udfff": 1}',
}


@pytest.mark.parametrize("attack", list(HOSTILE_JSON))
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/meet/internal-api/v1/participants/token", "application/json"),
        ("/meet/internal-api/v1/auth/login", "application/json"),
        ("/livekit/webhook", "application/webhook+json"),  # unauthenticated
    ],
)
def test_hostile_json_is_a_400_without_a_traceback(
    local: Ovmeet, attack: str, path: str, content_type: str
) -> None:
    response = local.client.post(
        local.base_url + path, content=HOSTILE_JSON[attack], headers={"content-type": content_type}
    )
    body = assert_json_error(response, 400)
    assert body["name"] == "Request Error"
    assert "Traceback" not in local.log()


def test_a_long_participant_name_is_refused(local: Ovmeet) -> None:
    body = {"roomName": "r-1", "participantName": "n" * 129, "secret": "s"}
    response = httpx.post(f"{local.api}/participants/token", json=body)
    assert "is too long" in assert_json_error(response, 400)["message"]


def test_unknown_query_parameters_are_refused(local: Ovmeet) -> None:
    response = httpx.post(f"{local.api}/participants/token?admin=true", json={})
    assert "admin" in assert_json_error(response, 400)["message"]
    # An operation whose own parameters cannot fail still has its query string checked.
    stream = f"{local.api}/recordings/r--EG_x--u/stream?admin=true"
    headers = {**cookie_header(access_cookie(local)), "Range": "bytes=0-1"}
    response = httpx.get(stream, headers=headers)
    assert "admin" in assert_json_error(response, 400)["message"]


@pytest.mark.parametrize(
    ("parameter", "cannot_fail"),
    [
        ({"in": "path", "required": True, "schema": {"type": "string"}}, True),
        ({"in": "header", "schema": {"type": "string"}}, True),
        ({"in": "header", "required": True, "schema": {"type": "string"}}, False),
        ({"in": "query", "schema": {"type": "string", "maxLength": 9}}, False),
        ({"in": "query", "schema": {"type": "integer"}}, False),
        ({"in": "path", "required": True, "schema": {"type": "string", "pattern": "^a"}}, False),
    ],
)
def test_only_parameters_that_cannot_fail_skip_connexions_check(
    parameter: dict[str, object], cannot_fail: bool
) -> None:
    assert parameter_cannot_fail({"name": "p", **parameter}) is cannot_fail


def raw_request(server: Ovmeet, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_oversized_headers_are_refused_and_the_server_stays_up(local: Ovmeet) -> None:
    cookie = b"OvMeetAccessToken=" + b"a" * 40_000
    answer = raw_request(
        local, b"GET /meet/health HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + b"\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b'{"name": "Request Error", "message": "The request head exceeds ' in answer
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", local.port)) as sock:
        sock.sendall(b"GET /meet/health HTTP/1.1\r\nHost: x\r\nCookie: " + b"a" * 50_000_000)
        sock.recv(1)  # the server stopped reading long before the end: the send is reset
    assert httpx.get(f"{local.base_url}/meet/health").status_code == 200


def test_large_but_allowed_heads_and_bodies_pass(local: Ovmeet) -> None:
    response = httpx.get(f"{local.base_url}/meet/health", headers={"x-pad": "p" * 20_000})
    assert response.status_code == 200
    body = json.dumps({"roomName": "r-1", "participantName": "a", "secret": "s" * 60_000})
    head = (
        b"POST /meet/internal-api/v1/participants/token HTTP/1.1\r\nHost: x\r\n"
        b"Cookie: c=" + b"c" * 20_000 + b"\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    answer = raw_request(local, head + body.encode())  # one send: head and body together
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:100]


def test_garbage_gets_a_json_400(local: Ovmeet) -> None:
    answer = raw_request(local, b"GARBAGE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert answer.endswith(b'{"name": "Request Error", "message": "Invalid HTTP request received"}')


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /meet/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /meet/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /meet/health HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /meet/internal-api/v1/participants/token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        b"GARBAGE\r\n\r\n",
    ],
)
def test_malformed_requests_get_4xx_and_the_server_stays_up(
    local: Ovmeet, request_bytes: bytes
) -> None:
    answer = raw_request(local, request_bytes)
    status = answer.split(b"\r\n", 1)[0].split(b" ")[1] if answer else b"closed"
    assert status == b"closed" or status.startswith(b"4"), answer[:200]
    assert httpx.get(f"{local.base_url}/meet/health").status_code == 200


@pytest.mark.parametrize(
    "cookie",
    [
        'OvMeetAccessToken="\\x',
        "OvMeetAccessToken=a; OvMeetAccessToken=b",
        "OvMeetAccessToken=" + "é" * 10,
        ";;;=;",
        "OvMeetAccessToken=abc; $-z~jch#fn=1",
        "OvMeetAccessToken=abc; $Path",
        "OvMeetAccessToken=eyJhbGciOiJub25lIn0.eyJzdWIiOiJvdmFkbWluIn0.",
    ],
)
def test_malformed_cookies_are_just_not_authenticated(local: Ovmeet, cookie: str) -> None:
    response = httpx.get(
        f"{local.api}/recordings/r-1--EG_1--u1/stream",
        headers={b"cookie": cookie.encode("utf-8")},
    )
    assert_json_error(response, 401)


def test_the_catch_all_handler_answers_json_500() -> None:
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": [], "query_string": b""}
    response = on_unexpected(ConnexionRequest(scope), RuntimeError("boom"))
    assert response.status_code == 500
    assert response.mimetype == "application/json"
    assert json.loads(response.body) == {"name": "Server Error", "message": "Internal server error"}


def chunked(body: bytes, size: int = 7) -> Iterator[bytes]:
    """`body` in pieces: httpx sends an iterator as Transfer-Encoding: chunked."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_chunked_json_bodies_are_read_like_any_other(local: Ovmeet) -> None:
    room = local.create_room("chunked")
    body = json.dumps(token_body(room, "Chunky")).encode()
    token = local.client.post(
        f"{local.api}/participants/token",
        content=chunked(body),
        headers={"content-type": "application/json"},
    )
    assert token.status_code == 200, token.text
    assert "content-length" not in token.request.headers
    assert token.request.headers["transfer-encoding"] == "chunked"
    login = local.client.post(
        f"{local.api}/auth/login",
        content=chunked(json.dumps({"username": ADMIN[0], "password": ADMIN[1]}).encode()),
        headers={"content-type": "application/json"},
    )
    assert login.status_code == 200, login.text
    invalid = local.client.post(
        f"{local.api}/participants/token",
        content=chunked(b'{"roomName": 5}'),
        headers={"content-type": "application/json"},
    )
    assert_json_error(invalid, 400)
    too_big = local.client.post(
        f"{local.api}/participants/token",
        content=chunked(b" " * (65 * 1024), 4096),
        headers={"content-type": "application/json"},
    )
    assert_json_error(too_big, 413)


def test_each_app_has_its_own_middleware_stack(tmp_path: Path) -> None:
    """Two apps in one process (the in-process tests make many) must not stack middlewares."""
    before = list(ConnexionMiddleware.default_middlewares)
    config = Config.from_env({"MEET_DATA_DIR": str(tmp_path)})
    create_app(config)
    create_app(config)
    assert ConnexionMiddleware.default_middlewares == before
    assert len(middlewares(prepared=True)) == len(before)
