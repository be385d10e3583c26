"""Three ovmeet processes behind nginx (round robin) on one S3 bucket: one server to clients;
what one instance changes, the others see within a second; kill -9 of one under load costs
only its requests in flight."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ovmeet.auth.revocations import REFRESH_SECONDS
from ovmeet.shared.change_markers import CACHE_SECONDS
from tests.conftest import Servers
from tests.support.helpers import access_cookie, cookie_header, livekit_token, token_body, until
from tests.support.livekit_standin import LiveKitStandIn
from tests.support.media import make_mp4, pad_mp4
from tests.support.processes import ADMIN, Ovmeet
from tests.support.proxy import Nginx
from tests.support.stored import Stored

API_KEY = "cluster-test-key-3c7b"
KEY = {"x-api-key": API_KEY}
# What one instance changes, the others see within this (rooms and preferences: the cache;
# logouts: the revocation list), plus the time a request takes here.
BOUND = max(CACHE_SECONDS, REFRESH_SECONDS) + 0.5


@dataclass
class Cluster:
    instances: list[Ovmeet]
    nginx: Nginx
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.nginx.base_url

    def via_proxy(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, self.url + path, **kwargs)


@pytest.fixture(scope="module")
def cluster(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    shared = {"MEET_API_KEY": API_KEY, "MEET_S3_SUBBUCKET": "cluster"}
    instances = [servers.start("s3", (), **shared) for _ in range(3)]
    nginx = Nginx(tmp_path_factory.mktemp("nginx"), [i.port for i in instances]).start()
    with httpx.Client(timeout=30) as client:
        yield Cluster(instances, nginx, client)
    nginx.stop()


def upstreams(responses: list[httpx.Response]) -> set[str]:
    return {r.headers["x-upstream"] for r in responses}


def test_rooms_logins_and_tokens_work_through_any_instance(
    cluster: Cluster, livekit: LiveKitStandIn
) -> None:
    tomorrow = int(time.time() * 1000) + 86_400_000
    created = cluster.via_proxy(
        "POST", "/meet/api/v1/rooms", json={"expirationDate": tomorrow}, headers=KEY
    )
    assert created.status_code == 200, created.text
    room = created.json()
    reads = [
        cluster.via_proxy("GET", f"/meet/api/v1/rooms/{room['roomName']}", headers=KEY)
        for _ in range(6)
    ]
    assert [r.status_code for r in reads] == [200] * 6
    assert len(upstreams(reads)) == 3  # round robin: every instance answered

    login = cluster.via_proxy(
        "POST",
        "/meet/internal-api/v1/auth/login",
        json={"username": ADMIN[0], "password": ADMIN[1]},
    )
    assert login.status_code == 200
    cookies = {name: value for name, value in login.cookies.items()}
    profiles = [
        cluster.via_proxy(
            "GET", "/meet/internal-api/v1/auth/profile", headers=cookie_header(cookies)
        )
        for _ in range(3)
    ]
    assert [p.status_code for p in profiles] == [200] * 3 and len(upstreams(profiles)) == 3
    refreshed = cluster.via_proxy(
        "POST",
        "/meet/internal-api/v1/auth/refresh",
        headers=cookie_header({"OvMeetRefreshToken": cookies["OvMeetRefreshToken"]}),
    )
    assert refreshed.status_code == 200

    tokens = [
        cluster.via_proxy(
            "POST", "/meet/internal-api/v1/participants/token", json=token_body(room, f"p{n}")
        )
        for n in range(6)
    ]
    assert [t.status_code for t in tokens] == [200] * 6 and len(upstreams(tokens)) == 3

    livekit.add_participant(room["roomName"], "Frank")
    again = cluster.via_proxy(
        "POST",
        "/meet/internal-api/v1/participants/token/refresh",
        json=token_body(room, "Frank"),
        headers=cookie_header(
            {"OvMeetParticipantToken": livekit_token(room["roomName"], "Frank", ttl=-5)}
        ),
    )
    assert again.status_code == 200, again.text

    moderator = cluster.via_proxy(
        "POST",
        "/meet/internal-api/v1/participants/token",
        json=token_body(room, "Mod", "moderator"),
    ).json()["token"]
    gone = cluster.via_proxy(
        "DELETE",
        f"/meet/internal-api/v1/participants/Frank?roomName={room['roomName']}",
        headers=cookie_header({"OvMeetParticipantToken": moderator}),
    )
    assert gone.status_code == 204
    assert ("RemoveParticipant", room["roomName"], "Frank") in livekit.calls


def test_streams_and_recordings_through_any_instance(
    cluster: Cluster, livekit: LiveKitStandIn, tmp_path: Path
) -> None:
    first = cluster.instances[0]
    room = first.create_room("cluster")
    source = pad_mp4(make_mp4(tmp_path / "a.mp4", seconds=1), tmp_path / "b.mp4", 3 * 2**20)
    recording = first.import_recording(source, room["roomName"])
    path = f"/meet/internal-api/v1/recordings/{recording['recordingId']}/stream"
    admin = cookie_header(access_cookie(first))
    data = source.read_bytes()
    ranges = [
        cluster.via_proxy(
            "GET", path, headers={**admin, "Range": f"bytes={n * 1000}-{n * 1000 + 99_999}"}
        )
        for n in range(3)
    ]
    for n, answer in enumerate(ranges):
        assert answer.status_code == 206
        assert answer.content == data[n * 1000 : n * 1000 + 100_000]
    assert len(upstreams(ranges)) == 3
    whole = cluster.via_proxy("GET", path, headers=admin)
    assert hashlib.sha256(whole.content).digest() == hashlib.sha256(data).digest()

    livekit.webhook_urls = [f"{cluster.url}/livekit/webhook"]
    moderator = cluster.via_proxy(
        "POST",
        "/meet/internal-api/v1/participants/token",
        json=token_body(room, "Mod", "moderator"),
    ).json()["token"]
    cookie = cookie_header({"OvMeetParticipantToken": moderator})
    body = {"roomId": room["roomName"]}
    started = cluster.via_proxy("POST", "/meet/api/v1/recordings", json=body, headers=cookie)
    assert started.status_code == 200, started.text
    twice = [
        cluster.via_proxy("POST", "/meet/api/v1/recordings", json=body, headers=cookie)
        for _ in range(3)
    ]
    assert [t.status_code for t in twice] == [409] * 3  # one recording per room, anywhere
    assert len(upstreams([started, *twice])) == 3
    recording_id = started.json()["recordingId"]
    stopped = cluster.via_proxy(
        "PUT", f"/meet/api/v1/recordings/{recording_id}", json={}, headers=cookie
    )
    assert stopped.status_code == 200

    def complete_everywhere() -> bool:
        answers = [
            i.client.get(f"{i.base_url}/meet/api/v1/recordings/{recording_id}", headers=KEY)
            for i in cluster.instances
        ]
        return all(a.status_code == 200 and a.json()["status"] == "COMPLETE" for a in answers)

    until(complete_everywhere, 30)


def test_changes_through_one_instance_are_seen_by_the_others_within_the_bound(
    cluster: Cluster,
) -> None:
    one, *others = cluster.instances
    admin = cookie_header(access_cookie(one))
    change = one.client.put(
        f"{one.base_url}/meet/api/v1/preferences/security",
        json={"roomCreationPolicy": {"allowRoomCreation": False, "requireAuthentication": True}},
        headers=KEY,
    )
    assert change.status_code == 200, change.text

    def policy_seen() -> bool:
        return all(
            not i.client.get(f"{i.base_url}/meet/api/v1/preferences/security").json()[
                "roomCreationPolicy"
            ]["allowRoomCreation"]
            for i in others
        )

    assert until(policy_seen, BOUND) <= BOUND

    room = one.create_room("gone")
    for instance in cluster.instances:  # cached everywhere
        answer = instance.client.post(
            f"{instance.api}/participants/token", json=token_body(room, "A" + str(instance.port))
        )
        assert answer.status_code == 200
    assert (
        one.client.delete(
            f"{one.base_url}/meet/api/v1/rooms/{room['roomName']}", headers=KEY
        ).status_code
        == 204
    )

    def refused_everywhere() -> bool:
        return all(
            i.client.post(f"{i.api}/participants/token", json=token_body(room, "late")).status_code
            == 404
            for i in others
        )

    until(refused_everywhere, BOUND)

    assert one.client.post(f"{one.api}/auth/logout", headers=admin).status_code == 200

    def logged_out_everywhere() -> bool:
        return all(
            i.client.get(f"{i.api}/auth/profile", headers=admin).status_code == 401 for i in others
        )

    until(logged_out_everywhere, BOUND)


def test_login_throttling_is_per_instance(cluster: Cluster) -> None:
    """Documented bound: each instance locks an account after 5 failures of its own."""
    one, two, _ = cluster.instances
    name = "nobody-" + str(time.monotonic_ns())
    wrong = {"username": name, "password": "guess"}
    for _ in range(5):
        assert one.client.post(f"{one.api}/auth/login", json=wrong).status_code == 401
    assert one.client.post(f"{one.api}/auth/login", json=wrong).status_code == 429
    assert two.client.post(f"{two.api}/auth/login", json=wrong).status_code == 401


def test_kill_9_of_one_instance_under_load(
    servers: Servers, tmp_path: Path, livekit: LiveKitStandIn
) -> None:
    shared = {"MEET_API_KEY": API_KEY, "MEET_S3_SUBBUCKET": "kill9"}
    instances = [servers.start("s3", (), **shared) for _ in range(3)]
    nginx = Nginx(tmp_path / "nginx", [i.port for i in instances]).start()
    room = instances[0].create_room("load")
    source = pad_mp4(make_mp4(tmp_path / "a.mp4", seconds=1), tmp_path / "b.mp4", 4 * 2**20)
    recording = instances[0].import_recording(source, room["roomName"])
    admin = cookie_header(access_cookie(instances[0]))
    stream = f"{nginx.base_url}/meet/internal-api/v1/recordings/{recording['recordingId']}/stream"
    token_url = f"{nginx.base_url}/meet/internal-api/v1/participants/token"
    outcomes: list[tuple[float, int]] = []  # (when, status; 0: no answer)
    stop = threading.Event()
    killed_at = 0.0

    def load(worker: int) -> None:
        n = 0
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                n += 1
                try:
                    if n % 2:
                        answer = client.post(token_url, json=token_body(room, f"w{worker}-{n}"))
                    else:
                        answer = client.get(stream, headers={**admin, "Range": "bytes=0-1048575"})
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                outcomes.append((time.monotonic(), status))

    workers = [threading.Thread(target=load, args=(w,)) for w in range(8)]
    try:
        for thread in workers:
            thread.start()
        time.sleep(2)
        victim = instances[2].process
        assert victim is not None
        killed_at = time.monotonic()
        victim.kill()  # SIGKILL: no goodbye
        time.sleep(3)
    finally:
        stop.set()
        for thread in workers:
            thread.join()
        nginx.stop()
    before = Counter(status for when, status in outcomes if when < killed_at)
    after = [status for when, status in outcomes if when >= killed_at]
    failed = [status for status in after if status not in (200, 206)]
    assert set(before) <= {200, 206}, before
    assert len(failed) <= len(workers), Counter(after)  # only what was in flight there
    late = [status for when, status in outcomes if when >= killed_at + 1]
    assert late and set(late) <= {200, 206}, Counter(late)  # the others carry on
    assert sum(1 for status in after if status in (200, 206)) > 50
    stored = Stored(instances[0])
    written = [key for key in stored.keys("") if key.endswith(".json")]
    assert written
    for key in written:  # each whole: a half-written object would not parse
        stored.read_json(key)
