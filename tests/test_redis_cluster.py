"""Three ovmeet instances as three hosts (each its own temporary folder, so that no change marker
file is shared) behind nginx, on one S3 bucket and one real Redis: changes and logouts reach
every instance as soon as Redis relays them; one recording per room whatever the timing; and a
Redis restart under load loses nothing, records nothing twice and accepts no revoked session."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from livekit.api import TokenVerifier
from redis import Redis as SyncRedis

from ovmeet.shared import redis_state
from ovmeet.shared.change_markers import CACHE_SECONDS
from tests.conftest import Servers
from tests.support.helpers import RELAYED_WITHIN, access_cookie, cookie_header, token_body, until
from tests.support.livekit_standin import EgressFaults, LiveKitStandIn
from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, Ovmeet, RedisServer
from tests.support.proxy import Nginx

T = TypeVar("T")
API_KEY = "redis-cluster-test-key-8e2d"
KEY = {"x-api-key": API_KEY}
PUBLIC = "/meet/api/v1"
verifier = TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET)
INTERNAL = "/meet/internal-api/v1"


@dataclass
class Cluster:
    instances: list[Ovmeet]
    nginx: Nginx
    redis: RedisServer
    client: httpx.Client

    def via_proxy(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.nginx.base_url + path, **kwargs)

    def redis_client(self) -> SyncRedis:
        return SyncRedis(host="127.0.0.1", port=self.redis.port, password=RedisServer.PASSWORD)


def start_hosts(
    servers: Servers, workdir: Path, count: int, subbucket: str, **env: str
) -> list[Ovmeet]:
    """`count` instances on S3 under `subbucket`, each with a temporary folder of its own (as on
    hosts of their own: what one touches there, the others do not see)."""
    started = []
    for n in range(count):
        tmp = workdir / f"host-{n}"
        tmp.mkdir(parents=True)
        shared = {"MEET_API_KEY": API_KEY, "MEET_S3_SUBBUCKET": subbucket, "TMPDIR": str(tmp)}
        started.append(servers.start("s3", (), **shared, **env))
    return started


@pytest.fixture(scope="module")
def cluster(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis = RedisServer(tmp_path_factory.mktemp("redis")).start()
    instances = start_hosts(
        servers,
        tmp_path_factory.mktemp("hosts"),
        3,
        "redis-cluster",
        MEET_RECORDING_STARTED_TIMEOUT="5s",
        **redis.env(),
    )
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), [i.port for i in instances]).start()
    with httpx.Client(timeout=30) as client:
        yield Cluster(instances, nginx, redis, client)
    nginx.stop()
    for instance in instances:
        instance.stop()
    redis.stop()


def creation_allowed(instance: Ovmeet) -> bool:
    answer = instance.client.get(f"{instance.base_url}{PUBLIC}/preferences/security")
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["roomCreationPolicy"]["allowRoomCreation"])


def set_creation_allowed(instance: Ovmeet, allowed: bool) -> None:
    policy = {"roomCreationPolicy": {"allowRoomCreation": allowed, "requireAuthentication": True}}
    answer = instance.client.put(
        f"{instance.base_url}{PUBLIC}/preferences/security", json=policy, headers=KEY
    )
    assert answer.status_code == 200, answer.text


def profile_status(instance: Ovmeet, cookie: dict[str, str]) -> int:
    return instance.client.get(f"{instance.api}/auth/profile", headers=cookie).status_code


def allowed_everywhere(instances: list[Ovmeet], allowed: bool) -> bool:
    return all(creation_allowed(instance) == allowed for instance in instances)


def refused_everywhere(instances: list[Ovmeet], session: dict[str, str]) -> bool:
    return all(profile_status(instance, session) == 401 for instance in instances)


def logged(instance: Ovmeet, text: str) -> bool:
    return text in instance.log()


def token_status(instance: Ovmeet, room: dict[str, Any], name: str) -> int:
    return instance.client.post(
        f"{instance.api}/participants/token", json=token_body(room, name)
    ).status_code


def test_failed_logins_through_the_proxy_count_against_one_budget(cluster: Cluster) -> None:
    client = {"X-Forwarded-For": "198.51.100.200"}  # nginx appends itself; ovmeet trusts it
    wrong = {"username": "nobody-proxied", "password": "guess"}
    answers = [
        cluster.via_proxy("POST", f"{INTERNAL}/auth/login", json=wrong, headers=client)
        for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [401] * 5 + [429]
    assert len({a.headers["x-upstream"] for a in answers[:5]}) == 3  # every instance counted


# ---- what one instance changes, the others act on as soon as Redis relays it ----


def test_a_preference_changed_on_one_host_is_in_force_on_the_others_at_once(
    cluster: Cluster,
) -> None:
    one, *others = cluster.instances
    for allowed in (False, True, False, True):
        assert all(creation_allowed(i) != allowed for i in others)  # cached everywhere
        set_creation_allowed(one, allowed)
        until(partial(allowed_everywhere, others, allowed), RELAYED_WITHIN)


def test_a_change_made_with_the_command_line_is_relayed_too(cluster: Cluster) -> None:
    one, *others = cluster.instances
    room = one.create_room("cli")
    assert all(token_status(i, room, "early") == 200 for i in others)  # cached everywhere
    assert one.cli("rooms", "delete", room["roomName"]).returncode == 0  # as on host one
    until(lambda: all(token_status(i, room, "late") == 404 for i in others), RELAYED_WITHIN)


def test_without_redis_other_hosts_keep_their_cache_until_it_expires(
    servers: Servers, tmp_path: Path
) -> None:
    """What the relay is for: the same three hosts without Redis act on a change only when
    their cache expires (this is also what makes the test above able to fail)."""
    one, *others = start_hosts(servers, tmp_path, 3, "no-redis-cluster")
    try:
        assert all(creation_allowed(i) for i in others)
        set_creation_allowed(one, False)
        assert all(creation_allowed(i) for i in others)  # stale: nobody told them
        took = until(partial(allowed_everywhere, others, False), CACHE_SECONDS + 1)
        assert took > RELAYED_WITHIN
    finally:
        for instance in (one, *others):
            instance.stop()


def test_rooms_changed_or_deleted_on_one_host_are_seen_on_the_others_at_once(
    cluster: Cluster,
) -> None:
    one, *others = cluster.instances
    room = one.create_room("relayed")
    name = room["roomName"]
    for n, instance in enumerate(others):  # cached everywhere
        assert token_status(instance, room, f"early{n}") == 200
    moderator = token_body(room, "m", "moderator")

    def can_record(instance: Ovmeet) -> bool:
        token = instance.client.post(f"{instance.api}/participants/token", json=moderator)
        assert token.status_code == 200, token.text
        return '"canRecord":true' in verifier.verify(token.json()["token"]).metadata

    assert all(can_record(i) for i in others)
    changed = one.client.put(
        f"{one.base_url}{PUBLIC}/rooms/{name}",
        json={"recordingPreferences": {"enabled": False}},
        headers=KEY,
    )
    assert changed.status_code == 200, changed.text
    until(lambda: not any(can_record(i) for i in others), RELAYED_WITHIN)

    assert one.client.delete(f"{one.base_url}{PUBLIC}/rooms/{name}", headers=KEY).status_code == 204
    until(lambda: all(token_status(i, room, "late") == 404 for i in others), RELAYED_WITHIN)


def test_a_logout_on_one_host_is_refused_on_all_at_once(cluster: Cluster) -> None:
    one, *others = cluster.instances
    for _ in range(3):
        session = cookie_header(access_cookie(one))
        assert all(profile_status(i, session) == 200 for i in others)  # known valid everywhere
        assert one.client.post(f"{one.api}/auth/logout", headers=session).status_code == 200
        until(partial(refused_everywhere, others, session), RELAYED_WITHIN)


# ---- one recording per room ----


def _moderator_cookie(cluster: Cluster, room: dict[str, Any]) -> dict[str, str]:
    answer = cluster.via_proxy(
        "POST", f"{INTERNAL}/participants/token", json=token_body(room, "mod", "moderator")
    )
    assert answer.status_code == 200, answer.text
    return cookie_header({"OvMeetParticipantToken": answer.json()["token"]})


def _start(cluster: Cluster, room: dict[str, Any], cookie: dict[str, str]) -> httpx.Response:
    body = {"roomId": room["roomName"]}
    return cluster.via_proxy("POST", f"{PUBLIC}/recordings", json=body, headers=cookie)


def race(pool: ThreadPoolExecutor, count: int, call: Callable[[], T]) -> list[T]:
    """`call()` `count` times at once (a barrier releases them together)."""
    barrier = threading.Barrier(count)

    def one() -> T:
        barrier.wait()
        return call()

    return [future.result() for future in [pool.submit(one) for _ in range(count)]]


def _age_lock(cluster: Cluster, room: str) -> None:
    """Make the room's lock in Redis older than any start could be."""
    locks = redis_state.key(cluster.instances[0].config(), "recording locks")
    client = cluster.redis_client()
    try:
        lock = json.loads(client.hget(locks, room))  # type: ignore[arg-type]
        client.hset(locks, room, json.dumps({**lock, "since": 0}))
    finally:
        client.close()


def test_eight_concurrent_starts_over_a_stale_lock_make_one_recording_every_time(
    cluster: Cluster, livekit: LiveKitStandIn
) -> None:
    livekit.webhook_urls = [f"{cluster.nginx.base_url}/livekit/webhook"]
    outcomes = []
    with ThreadPoolExecutor(8) as pool:
        for run in range(20):
            room = cluster.instances[run % 3].create_room(f"stale{run}")
            cookie = _moderator_cookie(cluster, room)
            first = _start(cluster, room, cookie)
            assert first.status_code == 200, first.text
            forgotten = first.json()["recordingId"].split("--")[1]
            livekit.egresses.pop(forgotten)  # LiveKit forgot it (restarted), no webhook came
            _age_lock(cluster, room["roomName"])
            answers = race(pool, 8, partial(_start, cluster, room, cookie))
            statuses = sorted(answer.status_code for answer in answers)
            listed = cluster.via_proxy(
                "GET", f"{PUBLIC}/recordings", params={"roomId": room["roomName"]}, headers=KEY
            ).json()["recordings"]
            starts = [
                call
                for call in livekit.calls
                if call[:2] == ("StartRoomCompositeEgress", room["roomName"])
            ]
            outcomes.append((statuses, sorted(r["status"] for r in listed), len(starts)))
    assert outcomes == [([200] + [409] * 7, ["ABORTED", "ACTIVE"], 2)] * 20


def test_a_start_that_outlived_its_lock_stops_its_egress_and_records_nothing(
    cluster: Cluster, livekit: LiveKitStandIn
) -> None:
    """A start whose LiveKit call took so long that its lock went stale and another start took
    the room over: of the two egresses, one is the room's recording, the other is stopped."""
    one, two, _ = cluster.instances
    livekit.webhook_urls = [f"{cluster.nginx.base_url}/livekit/webhook"]
    room = one.create_room("outlived")
    cookie = _moderator_cookie(cluster, room)
    livekit.egress_faults = EgressFaults(start_delay=1.0)  # within MEET_LIVEKIT_TIMEOUT
    body = {"roomId": room["roomName"]}
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            one.client.post, f"{one.base_url}{PUBLIC}/recordings", json=body, headers=cookie
        )
        until(partial(_locked, cluster, room["roomName"]), 5)
        _age_lock(cluster, room["roomName"])  # as if this start had hung for minutes
        livekit.egress_faults = EgressFaults()
        fast = two.client.post(f"{two.base_url}{PUBLIC}/recordings", json=body, headers=cookie)
        assert fast.status_code == 200, fast.text
        late = slow.result()
    assert late.status_code == 409, late.text
    assert late.json()["message"] == f"The room '{room['roomName']}' is already being recorded"
    started = [c for c in livekit.calls if c[:2] == ("StartRoomCompositeEgress", room["roomName"])]
    assert len(started) == 2
    recorded = fast.json()["recordingId"].split("--")[1]
    [stopped] = [c[2] for c in livekit.calls if c[0] == "StopEgress"]
    assert stopped != recorded and stopped in livekit.egresses
    listed = cluster.via_proxy(
        "GET", f"{PUBLIC}/recordings", params={"roomId": room["roomName"]}, headers=KEY
    ).json()["recordings"]
    assert [(r["recordingId"], r["status"]) for r in listed] == [
        (fast.json()["recordingId"], "ACTIVE")
    ]


def _locked(cluster: Cluster, room: str) -> bool:
    client = cluster.redis_client()
    try:
        locks = redis_state.key(cluster.instances[0].config(), "recording locks")
        return bool(client.hexists(locks, room))
    finally:
        client.close()


# ---- Redis restarting under load ----


def test_a_redis_restart_under_load_loses_nothing_and_lets_no_revoked_session_in(
    cluster: Cluster, livekit: LiveKitStandIn
) -> None:
    one, two, three = cluster.instances
    load_room = one.create_room("load")
    load_session = cookie_header(access_cookie(one))
    recorded = one.create_room("recorded")
    recording = _start(cluster, recorded, _moderator_cookie(cluster, recorded))
    assert recording.status_code == 200, recording.text
    revoked_while_down = cookie_header(access_cookie(two))
    assert all(profile_status(i, revoked_while_down) == 200 for i in cluster.instances)

    outcomes: list[tuple[float, str, int]] = []  # (when, what, status; 0: no answer)
    stop = threading.Event()

    def load(worker: int) -> None:
        n = 0
        with httpx.Client(timeout=10, base_url=cluster.nginx.base_url) as client:
            while not stop.is_set():
                n += 1
                try:
                    if n % 2:
                        what = "token"
                        answer = client.post(
                            f"{INTERNAL}/participants/token",
                            json=token_body(load_room, f"w{worker}-{n}"),
                        )
                    else:
                        what = "profile"
                        answer = client.get(f"{INTERNAL}/auth/profile", headers=load_session)
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                outcomes.append((time.monotonic(), what, status))

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for thread in workers:
        thread.start()
    try:
        time.sleep(1)
        starts_before = len([c for c in livekit.calls if c[0] == "StartRoomCompositeEgress"])
        cluster.redis.stop()
        for instance in cluster.instances:  # each has lost its subscription
            until(partial(logged, instance, "changes reach other hosts"), 10)

        # A logout while Redis is away: no instance can be told, so none trusts its cache.
        assert (
            one.client.post(f"{one.api}/auth/logout", headers=revoked_while_down).status_code == 200
        )
        assert [profile_status(i, revoked_while_down) for i in (two, three)] == [401, 401]

        # Locks fail closed: a start is refused, and LiveKit is never asked.
        other = one.create_room("refused")
        refused = _start(cluster, other, _moderator_cookie(cluster, other))
        assert refused.status_code == 503, refused.text
        assert refused.json() == {"name": "Redis Error", "message": "Redis is not available"}

        # Caches degrade to their own bound.
        set_creation_allowed(one, False)
        until(partial(allowed_everywhere, [two, three], False), CACHE_SECONDS + 1)
        starts_during = len([c for c in livekit.calls if c[0] == "StartRoomCompositeEgress"])
        assert starts_during == starts_before

        cluster.redis.start()  # the same port and password, and nothing in it
        for instance in cluster.instances:
            until(partial(logged, instance, "is back: changes are shared again"), 10)
        time.sleep(1)
    finally:
        stop.set()
        for thread in workers:
            thread.join()
        set_creation_allowed(one, True)

    # Redis forgot every lock: LiveKit's list of active egresses still refuses a second one.
    again = _start(cluster, recorded, _moderator_cookie(cluster, recorded))
    assert again.status_code == 409, again.text
    listed = cluster.via_proxy(
        "GET", f"{PUBLIC}/recordings", params={"roomId": recorded["roomName"]}, headers=KEY
    ).json()["recordings"]
    assert [r["recordingId"] for r in listed] == [recording.json()["recordingId"]]
    # What was revoked stays revoked, what was not stays valid, everywhere.
    assert [profile_status(i, revoked_while_down) for i in cluster.instances] == [401] * 3
    assert [profile_status(i, load_session) for i in cluster.instances] == [200] * 3
    # Changes are relayed again.
    set_creation_allowed(two, False)
    until(partial(allowed_everywhere, [one, three], False), RELAYED_WITHIN)
    set_creation_allowed(two, True)
    assert Counter(status for _, _, status in outcomes) == Counter({200: len(outcomes)}), Counter(
        (what, status) for _, what, status in outcomes
    )
    assert len(outcomes) > 100
