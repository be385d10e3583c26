"""Several instances as one through a real Redis (MEET_REDIS_*): one throttle budget, readiness,
and what happens when Redis goes away and comes back."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redis import Redis as SyncRedis

from ovmeet.auth.quotas import ROOMS_PER_HOUR
from tests.conftest import Servers
from tests.support.helpers import RELAYED_WITHIN, until
from tests.support.livekit_webhooks import ovmeet_egress_event, room_finished, signed
from tests.support.processes import (
    ADMIN,
    Ovmeet,
    RedisSentinel,
    RedisServer,
    base_env,
    free_port,
    run_cli,
)

_clients = itertools.count(1)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def three(servers: Servers, redis: RedisServer, tmp_path: Path) -> list[Ovmeet]:
    """Three instances of one deployment (one data folder), sharing `redis`."""
    env = {**redis.env(), "MEET_DATA_DIR": str(tmp_path / "data")}
    return [servers.start("local", (), **env) for _ in range(3)]


def _wrong_login(server: Ovmeet, client: str, username: str = ADMIN[0]) -> int:
    answer = server.client.post(
        f"{server.api}/auth/login",
        json={"username": username, "password": "not-the-password"},
        headers={"X-Forwarded-For": client},
    )
    return answer.status_code


def _client() -> str:
    return f"198.51.100.{next(_clients)}"


def test_failed_logins_on_any_instance_count_against_one_budget(three: list[Ovmeet]) -> None:
    client = _client()
    statuses = [_wrong_login(three[n % 3], client, f"nobody-{n}") for n in range(5)]
    assert statuses == [401] * 5  # two per instance at most: each alone would not lock
    assert [_wrong_login(server, client, "someone") for server in three] == [429] * 3


def test_without_redis_each_instance_counts_alone(servers: Servers, tmp_path: Path) -> None:
    alone = [servers.start("local", MEET_DATA_DIR=str(tmp_path / "data")) for _ in range(3)]
    client = _client()
    statuses = [_wrong_login(alone[n % 3], client, f"nobody-{n}") for n in range(6)]
    assert statuses == [401] * 6  # what Redis is there for: 3 instances, 3 budgets


def test_an_accounts_budget_is_shared_too(three: list[Ovmeet]) -> None:
    account = f"target-{next(_clients)}"
    for n in range(5):
        assert _wrong_login(three[n % 3], _client(), account) == 401
    assert _wrong_login(three[2], _client(), account) == 429


def test_an_anonymous_clients_room_budget_is_shared_too(three: list[Ovmeet]) -> None:
    policy = {"roomCreationPolicy": {"allowRoomCreation": True, "requireAuthentication": False}}
    assert three[0].cli("preferences", "set", "security", json.dumps(policy)).returncode == 0
    client, body = {"X-Forwarded-For": _client()}, {"expirationDate": 4102444800000}

    def create(server: Ovmeet) -> int:
        answer = server.client.post(
            f"{server.base_url}/meet/api/v1/rooms", json=body, headers=client
        )
        return answer.status_code

    statuses = [create(three[n % 3]) for n in range(ROOMS_PER_HOUR)]
    assert statuses == [200] * ROOMS_PER_HOUR  # a third of the budget on each instance
    assert [create(server) for server in three] == [429] * 3


def test_readiness_names_redis(three: list[Ovmeet]) -> None:
    ready = httpx.get(f"{three[0].base_url}/meet/ready")
    assert ready.json()["redis"] == "UP", ready.text


def test_the_password_is_never_logged(three: list[Ovmeet]) -> None:
    log = three[0].log()
    assert RedisServer.PASSWORD not in log
    assert '"redis_password": "***"' in log


def test_through_a_sentinel_as_the_release_configured_it(
    servers: Servers, redis: RedisServer, tmp_path: Path
) -> None:
    sentinel = RedisSentinel(tmp_path / "sentinel", redis).start()
    try:
        hosts = []
        for n in range(2):  # as two hosts: a temporary folder each
            (tmp := tmp_path / f"host-{n}").mkdir()
            env = {**sentinel.env(), "MEET_DATA_DIR": str(tmp_path / "data"), "TMPDIR": str(tmp)}
            hosts.append(servers.start("local", (), **env))
        one, two = hosts
        assert httpx.get(f"{one.base_url}/meet/ready").json()["redis"] == "UP"
        client = _client()
        assert [_wrong_login([one, two][n % 2], client, f"s{n}") for n in range(5)] == [401] * 5
        assert _wrong_login(two, client) == 429  # one budget, through the master it named
        room = one.create_room("sentinel")
        body = {"roomName": room["roomName"], "participantName": "early"}
        body["secret"] = room["publisherRoomUrl"].split("secret=")[1]
        assert two.client.post(f"{two.api}/participants/token", json=body).status_code == 200
        assert one.cli("rooms", "delete", room["roomName"]).returncode == 0
        # Relayed: without it, `two` would serve its cached room for up to a second.
        until(
            lambda: two.client.post(f"{two.api}/participants/token", json=body).status_code == 404,
            RELAYED_WITHIN,
        )
        for server in (one, two):
            assert RedisSentinel.PASSWORD not in server.log()
            assert RedisServer.PASSWORD not in server.log()
    finally:
        sentinel.stop()


def test_an_unreachable_redis_stops_the_start_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **base_env("http://127.0.0.1:1"),
        "MEET_DATA_DIR": str(tmp_path),
        "MEET_REDIS_HOST": "127.0.0.1",
        "MEET_REDIS_PORT": str(port),
        "MEET_REDIS_PASSWORD": "a-secret-never-shown",
    }
    result = run_cli(env, "serve", "--port", "0")
    assert result.returncode == 1
    failure = [line for line in result.stderr.splitlines() if line.startswith("ovmeet: ")]
    assert len(failure) == 1, result.stderr
    assert f"Redis at 127.0.0.1:{port} is not available" in failure[0]
    assert "a-secret-never-shown" not in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_sentinel_list_is_one_line(tmp_path: Path) -> None:
    env = {**base_env("http://127.0.0.1:1"), "MEET_REDIS_SENTINEL_HOST_LIST": "10.0.0.5"}
    result = run_cli(env, "serve", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ovmeet: configuration error: MEET_REDIS_SENTINEL_HOST_LIST: '10.0.0.5' is not "
        "host:port, e.g. 10.0.0.5:26379"
    ]


def test_while_redis_is_down_each_instance_still_throttles_then_shares_again(
    servers: Servers, tmp_path: Path
) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    env = {**redis.env(), "MEET_DATA_DIR": str(tmp_path / "data")}
    one, two = servers.start("local", (), **env), servers.start("local", (), **env)
    try:
        redis.stop()
        client = _client()
        assert [_wrong_login(one, client, f"n{n}") for n in range(5)] == [401] * 5
        assert _wrong_login(one, client) == 429  # degraded: this process's own budget
        assert "counted per process until it is back" in one.log()
        ready = httpx.get(f"{one.base_url}/meet/ready")
        assert ready.status_code == 503 and ready.json()["redis"] == "Redis is not available"
        room = one.create_room("down")["roomName"]
        body, headers = signed(room_finished(room))
        hook = httpx.post(f"{one.base_url}/livekit/webhook", content=body, headers=headers)
        assert hook.status_code == 200, hook.text
        assert hook.json()["message"] == f"room '{room}' finished"  # applied, claimed here alone
        again = httpx.post(f"{one.base_url}/livekit/webhook", content=body, headers=headers)
        assert again.json()["message"].endswith("already handled")
        # Whether ovmeet started an egress is in Redis until its recording is stored: refused
        # (LiveKit delivers it again), never guessed.
        event = ovmeet_egress_event(one, "egress_started", room, "EG_dn", "u1", "EGRESS_STARTING")
        body, headers = signed(event)
        hook = httpx.post(f"{one.base_url}/livekit/webhook", content=body, headers=headers)
        assert hook.status_code == 503, hook.text
        assert hook.json() == {"name": "Redis Error", "message": "Redis is not available"}
        redis.start()  # the same port and password: the instances reconnect
        other = _client()
        assert [_wrong_login([one, two][n % 2], other, f"m{n}") for n in range(5)] == [401] * 5
        assert _wrong_login(two, other) == 429
        assert "is back" in one.log() or "is back" in two.log()
    finally:
        redis.stop()


def test_a_webhook_sent_to_every_instance_is_applied_once(three: list[Ovmeet]) -> None:
    room = three[0].create_room("hooked")["roomName"]
    finished = room_finished(room)
    body, headers = signed(finished)
    answers = [
        server.client.post(f"{server.base_url}/livekit/webhook", content=body, headers=headers)
        for server in three
    ]
    assert [a.status_code for a in answers] == [200] * 3
    messages = sorted(a.json()["message"] for a in answers)
    assert messages == [f"event {finished.id} already handled"] * 2 + [f"room '{room}' finished"]


def test_an_event_another_instance_released_is_applied_where_it_comes_next(
    three: list[Ovmeet], redis: RedisServer
) -> None:
    """A claim released (its event failed on the instance that held it) is free on every other
    instance: only Redis decides, not what an instance heard of the event before."""
    room = three[0].create_room("retried")["roomName"]
    started = room_finished(room)
    body, headers = signed(started)

    def deliver(server: Ovmeet) -> str:
        answer = server.client.post(
            f"{server.base_url}/livekit/webhook", content=body, headers=headers
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["message"])

    deliver(three[0])
    assert deliver(three[1]) == f"event {started.id} already handled"
    client = SyncRedis(host="127.0.0.1", port=redis.port, password=RedisServer.PASSWORD)
    try:
        claims = list(client.scan_iter("ovmeet:*:webhook events:*"))
        assert len(claims) >= 1
        client.delete(*claims)  # what a release does when the event failed
    finally:
        client.close()
    assert deliver(three[1]) != f"event {started.id} already handled"
