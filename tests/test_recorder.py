"""Recording end to end through the LiveKit stand-in's Egress, on both storage backends: start,
stop, the file, the listing, deletion; one recording per room across processes; every fault
ending in a truthful status; the application's signed webhooks; the clean-up."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from livekit.protocol.egress import EgressInfo, EgressStatus
from livekit.protocol.webhook import WebhookEvent
from minio import Minio
from minio.error import S3Error

from ovmeet.recordings.recorder import recording_of_egress
from ovmeet.recordings.store import Recording, RecordingStatus, write_recording
from ovmeet.services import Services
from ovmeet.storage.keys import recording_lock_key, recording_media_key
from ovmeet.support.config import Config
from ovmeet.support.ids import RecordingId
from tests.conftest import Servers
from tests.support.client import MeetClient
from tests.support.helpers import access_cookie, cookie_header, request_token, token_body
from tests.support.livekit_standin import EgressFaults, LiveKitStandIn
from tests.support.livekit_webhooks import signed
from tests.support.media import make_mp4
from tests.support.processes import (
    EGRESS_SUBBUCKET,
    S3_EGRESS_ACCESS_KEY,
    S3_EGRESS_SECRET_KEY,
    Ovmeet,
    _with_storage,
    base_env,
)

API_KEY = "recorder-test-key-0f3a"
KEY = {"x-api-key": API_KEY}
STORAGE_VARIABLES = (
    "MEET_STORAGE",
    "MEET_DATA_DIR",
    "MEET_S3_SERVICE_ENDPOINT",
    "MEET_S3_ACCESS_KEY",
    "MEET_S3_SECRET_KEY",
    "MEET_S3_BUCKET",
    "MEET_S3_SUBBUCKET",
)


@pytest.fixture
def meet(servers: Servers, backend: str, livekit: LiveKitStandIn) -> Ovmeet:
    server = servers.get(backend, MEET_API_KEY=API_KEY, MEET_RECORDING_STARTED_TIMEOUT="2s")
    livekit.webhook_urls = [f"{server.base_url}/livekit/webhook"]
    return server


def api(server: Ovmeet) -> MeetClient:
    return MeetClient(server, API_KEY)


def wait_status(
    server: Ovmeet, recording_id: str, *statuses: str, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        answer = api(server).recording(recording_id)
        seen = answer.json()
        if answer.status_code == 200 and seen["status"] in statuses:
            return seen  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"{recording_id} never became {statuses}; last seen {seen}")


def stored_bytes(server: Ovmeet, recording_id: str) -> bytes:
    """The recording's file as the storage holds it (what the egress uploaded)."""
    key = recording_media_key(RecordingId.parse(recording_id))  # type: ignore[arg-type]

    async def read(storage: Any) -> bytes:
        info = await storage.stat(key)
        stream = await storage.open_range(key, 0, info.size)
        try:
            return b"".join([chunk async for chunk in stream])
        finally:
            await stream.aclose()

    return _with_storage(server.config(), read)  # type: ignore[no-any-return]


def age_lock(server: Ovmeet, room: dict[str, Any]) -> None:
    """Make the room's recording lock older than any start could be."""
    key = recording_lock_key(room["roomName"])

    async def rewrite(storage: Any) -> None:
        await storage.write_json(key, {**await storage.read_json(key), "since": 0})

    _with_storage(server.config(), rewrite)


# ---- the whole life of a recording ----


def test_start_stop_list_stream_delete(meet: Ovmeet, livekit: LiveKitStandIn) -> None:
    room = meet.create_room("rec")
    cookie = api(meet).moderator(room)
    started = api(meet).start_recording(room, cookie)
    assert started.status_code == 200, started.text
    recording = started.json()
    recording_id = recording["recordingId"]
    assert recording["status"] == "ACTIVE" and recording["roomId"] == room["roomName"]
    assert recording["filename"] == f"{room['roomName']}--{recording_id.split('--')[2]}.mp4"
    again = api(meet).start_recording(room, cookie)
    assert again.status_code == 409 and "already being recorded" in again.json()["message"]
    assert again.json()["name"] == "Recording Error"
    busy = meet.client.delete(f"{api(meet).public_api}/recordings/{recording_id}", headers=KEY)
    assert busy.status_code == 409  # in progress
    stopped = api(meet).stop_recording(recording_id, cookie)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "ENDING"
    assert stopped.headers["location"] == f"/meet/api/v1/recordings/{recording_id}"
    done = wait_status(meet, recording_id, "COMPLETE")
    assert done["size"] > 0 and done["duration"] >= 1 and done["endDate"] >= done["startDate"]
    assert api(meet).stop_recording(recording_id, cookie).status_code == 409  # already stopped
    listed = meet.client.get(
        f"{api(meet).public_api}/recordings", params={"roomId": room["roomName"]}, headers=KEY
    ).json()
    assert [r["recordingId"] for r in listed["recordings"]] == [recording_id]
    assert listed["pagination"] == {"isTruncated": False}
    stream = meet.client.get(
        f"{meet.api}/recordings/{recording_id}/stream", headers=cookie_header(access_cookie(meet))
    )
    assert stream.status_code == 200
    assert (
        stream.content == stored_bytes(meet, recording_id) and len(stream.content) == done["size"]
    )
    assert api(meet).start_recording(room, cookie).status_code == 200  # the room is free again
    deleted = meet.client.delete(f"{api(meet).public_api}/recordings/{recording_id}", headers=KEY)
    assert deleted.status_code == 204
    assert api(meet).recording(recording_id).status_code == 404
    assert (
        meet.client.get(
            f"{meet.api}/recordings/{recording_id}/stream",
            headers=cookie_header(access_cookie(meet)),
        ).status_code
        == 404
    )


def test_the_egress_writes_with_its_own_key_that_can_do_nothing_else(
    servers: Servers, livekit: LiveKitStandIn
) -> None:
    """The README's how-to: a key that can only write under the recordings prefix."""
    meet = servers.start(
        "s3",
        MEET_API_KEY=API_KEY,
        MEET_S3_SUBBUCKET=EGRESS_SUBBUCKET,
        MEET_S3_EGRESS_ACCESS_KEY=S3_EGRESS_ACCESS_KEY,
        MEET_S3_EGRESS_SECRET_KEY=S3_EGRESS_SECRET_KEY,
    )
    try:
        livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
        room = meet.create_room("keyed")
        cookie = api(meet).moderator(room)
        recording_id = api(meet).start_recording(room, cookie).json()["recordingId"]
        output = next(
            e.output for e in livekit.egresses.values() if e.info.room_name == room["roomName"]
        )
        assert (output.s3.access_key, output.s3.secret) == (
            S3_EGRESS_ACCESS_KEY,
            S3_EGRESS_SECRET_KEY,
        )
        assert api(meet).stop_recording(recording_id, cookie).status_code == 200
        done = wait_status(meet, recording_id, "COMPLETE")  # written with the egress key
        stream = meet.client.get(
            f"{meet.api}/recordings/{recording_id}/stream",
            headers=cookie_header(access_cookie(meet)),
        )
        assert stream.status_code == 200 and len(stream.content) == done["size"] > 0
        egress = Minio(
            meet.env["MEET_S3_SERVICE_ENDPOINT"].removeprefix("http://"),
            access_key=S3_EGRESS_ACCESS_KEY,
            secret_key=S3_EGRESS_SECRET_KEY,
            secure=False,
            region="us-east-1",
        )
        bucket = meet.env["MEET_S3_BUCKET"]
        recordings = f"{EGRESS_SUBBUCKET}/recordings/{room['roomName']}"
        egress.put_object(bucket, f"{recordings}/probe.mp4", io.BytesIO(b"mp4"), 3)  # allowed
        with pytest.raises(S3Error) as read:  # it cannot read what it wrote
            egress.stat_object(bucket, f"{recordings}/{done['filename']}")
        assert read.value.code in ("AccessDenied", "403")
        for elsewhere in (f"{EGRESS_SUBBUCKET}/rooms/x/x.json", "other/recordings/x.mp4"):
            with pytest.raises(S3Error) as wrote:
                egress.put_object(bucket, elsewhere, io.BytesIO(b"{}"), 2)
            assert wrote.value.code == "AccessDenied"
    finally:
        meet.stop()


def test_a_recording_that_ends_after_its_room_is_deleted_is_kept(
    meet: Ovmeet, livekit: LiveKitStandIn
) -> None:
    """Deleting the room closes it in LiveKit, which ends its egress: the recording that
    finishes then is COMPLETE and plays, though its room is gone."""
    room = meet.create_room("closing")
    started = api(meet).start_recording(room, api(meet).moderator(room))
    assert started.status_code == 200, started.text
    recording_id = started.json()["recordingId"]
    gone = meet.client.delete(f"{api(meet).public_api}/rooms/{room['roomName']}", headers=KEY)
    assert gone.status_code in (200, 204), gone.text
    done = wait_status(meet, recording_id, "COMPLETE", "ABORTED", "FAILED")
    assert done["status"] == "COMPLETE" and done["size"] > 0, done
    stream = meet.client.get(
        f"{meet.api}/recordings/{recording_id}/stream", headers=cookie_header(access_cookie(meet))
    )
    assert stream.status_code == 200 and stream.content == stored_bytes(meet, recording_id)


def end_the_room(
    meet: Ovmeet, room: dict[str, Any], recording_id: str, livekit: LiveKitStandIn
) -> str:
    """Delete the room: LiveKit ends its egress, file written. The egress id, once COMPLETE."""
    egress_id = RecordingId.parse(recording_id).egress_id  # type: ignore[union-attr]
    gone = meet.client.delete(f"{api(meet).public_api}/rooms/{room['roomName']}", headers=KEY)
    assert gone.status_code in (200, 204), gone.text
    deadline = time.monotonic() + 30
    while livekit.egresses[egress_id].info.status != EgressStatus.EGRESS_COMPLETE:
        assert time.monotonic() < deadline, "the stand-in never completed the egress"
        time.sleep(0.1)
    return egress_id


def test_a_recording_whose_last_webhooks_are_lost_gets_its_real_end(
    servers: Servers, backend: str, livekit: LiveKitStandIn
) -> None:
    """The egress completed but ovmeet never heard: a stop that finds it ended, a deletion,
    and the clean-up each record what LiveKit says (COMPLETE, with its size), never ABORTED."""
    meet = servers.start(backend, MEET_API_KEY=API_KEY, MEET_RECORDING_STARTED_TIMEOUT="2s")
    livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    ended: list[str] = []
    for how in ("stop", "delete", "gc"):
        room = meet.create_room(how)
        cookie = api(meet).moderator(room)
        recording_id = api(meet).start_recording(room, cookie).json()["recordingId"]
        livekit.webhook_urls = []  # from now on ovmeet hears nothing
        end_the_room(meet, room, recording_id, livekit)
        assert api(meet).recording(recording_id).json()["status"] == "ACTIVE"  # nothing was heard
        if how == "stop":
            answer = api(meet).stop_recording(recording_id, cookie)
            assert answer.status_code == 409 and "already stopped" in answer.json()["message"]
        elif how == "delete":
            answer = meet.client.delete(
                f"{api(meet).public_api}/recordings/{recording_id}", headers=KEY
            )
            assert answer.status_code == 204, answer.text
            assert api(meet).recording(recording_id).status_code == 404
        else:
            age_lock(meet, room)
            report = json.loads(meet.cli("gc").stdout)
            assert report["endedRecordings"] == [recording_id]
            assert report["abortedRecordings"] == []
        if how != "delete":
            now = api(meet).recording(recording_id).json()
            assert now["status"] == "COMPLETE" and now["size"] > 0, now
            ended.append(recording_id)
        livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    assert len(ended) == 2


def test_the_clean_up_keeps_a_file_livekit_forgot(
    servers: Servers, backend: str, livekit: LiveKitStandIn
) -> None:
    """LiveKit restarted and forgot an egress whose file is in storage: COMPLETE, playable."""
    meet = servers.start(backend, MEET_API_KEY=API_KEY, MEET_RECORDING_STARTED_TIMEOUT="2s")
    livekit.webhook_urls = []
    room = meet.create_room("forgotten")
    recording_id = api(meet).start_recording(room, api(meet).moderator(room)).json()["recordingId"]
    egress_id = end_the_room(meet, room, recording_id, livekit)
    del livekit.egresses[egress_id]  # LiveKit restarted
    age_lock(meet, room)
    report = json.loads(meet.cli("gc").stdout)
    assert report["endedRecordings"] == [recording_id], report
    now = api(meet).recording(recording_id).json()
    assert now["status"] == "COMPLETE" and now["size"] == len(stored_bytes(meet, recording_id))
    assert "error" not in now or not now["error"]


def test_who_may_start_and_what_is_refused(meet: Ovmeet) -> None:
    room, other = meet.create_room("who"), meet.create_room("other")
    publisher_token = request_token(meet, token_body(room, "pub", "publisher")).json()["token"]
    publisher = cookie_header({"OvMeetParticipantToken": publisher_token})
    assert api(meet).start_recording(room, publisher).status_code == 403
    assert api(meet).start_recording(room, api(meet).moderator(other)).status_code == 403
    assert api(meet).start_recording(room, {}).status_code == 401
    unknown = meet.client.post(
        f"{api(meet).public_api}/recordings",
        json={"roomId": "no-such-room"},
        headers=api(meet).moderator(room),
    )
    assert unknown.status_code == 404
    off = {"recordingPreferences": {"enabled": False}}
    assert (
        meet.client.put(
            f"{api(meet).public_api}/rooms/{room['roomName']}", json=off, headers=KEY
        ).status_code
        == 200
    )
    disabled = api(meet).start_recording(room, api(meet).moderator(room, "mod2"))
    assert disabled.status_code == 403 and "disabled" in disabled.json()["message"]
    assert (
        meet.client.put(
            f"{api(meet).public_api}/recordings/{room['roomName']}--EG_none--u1",
            headers=api(meet).moderator(other, "m3"),
        ).status_code
        == 404
    )


# ---- one recording per room, across processes ----


def test_two_processes_never_both_start_a_room(
    servers: Servers, backend: str, livekit: LiveKitStandIn
) -> None:
    first = servers.start(backend, MEET_API_KEY=API_KEY)
    shared = {name: first.env[name] for name in STORAGE_VARIABLES if name in first.env}
    second = servers.start(backend, (), MEET_API_KEY=API_KEY, **shared)
    livekit.webhook_urls = [f"{first.base_url}/livekit/webhook"]
    outcomes = []
    with ThreadPoolExecutor(2) as pool:
        for round_ in range(20):
            room = first.create_room(f"race{round_}")
            cookies = [api(first).moderator(room, "a"), api(first).moderator(room, "b")]
            barrier = threading.Barrier(2)

            def race(
                server: Ovmeet,
                cookie: dict[str, str],
                room: dict[str, Any] = room,
                barrier: threading.Barrier = barrier,
            ) -> int:
                barrier.wait()
                return api(server).start_recording(room, cookie).status_code

            results = list(pool.map(race, (first, second), cookies))
            outcomes.append(sorted(results))
    assert outcomes == [[200, 409]] * 20
    starts = [call for call in livekit.calls if call[0] == "StartRoomCompositeEgress"]
    assert len(starts) == 20  # the loser never reached LiveKit


# ---- faults ----


def test_an_egress_that_cannot_start_is_a_clear_error_and_frees_the_room(
    meet: Ovmeet, livekit: LiveKitStandIn
) -> None:
    room = meet.create_room("nostart")
    cookie = api(meet).moderator(room)
    livekit.egress_faults = EgressFaults(start_fails=True)
    refused = api(meet).start_recording(room, cookie)
    assert refused.status_code == 503
    assert refused.json()["message"] == "LiveKit is not available: StartRoomCompositeEgress failed"
    livekit.egress_faults = EgressFaults()
    assert api(meet).start_recording(room, cookie).status_code == 200


def test_an_egress_that_never_becomes_active_is_stopped_and_aborted(
    meet: Ovmeet, livekit: LiveKitStandIn
) -> None:
    room = meet.create_room("stuck")
    cookie = api(meet).moderator(room)
    livekit.egress_faults = EgressFaults(never_active=True)
    began = time.monotonic()
    refused = api(meet).start_recording(room, cookie)
    assert refused.status_code == 503
    assert refused.json()["message"] == "Recording did not start within 2 s"
    assert 1.8 < time.monotonic() - began < 10
    egress_id = next(call[2] for call in livekit.calls if call[0] == "StopEgress")
    listed = meet.client.get(
        f"{api(meet).public_api}/recordings", params={"roomId": room["roomName"]}, headers=KEY
    )
    [aborted] = listed.json()["recordings"]
    assert aborted["recordingId"].split("--")[1] == egress_id
    assert aborted["status"] == "ABORTED" and "did not become active" in aborted["error"]
    livekit.egress_faults = EgressFaults()
    assert api(meet).start_recording(room, cookie).status_code == 200


def test_livekit_failing_for_a_moment_while_a_start_waits_does_not_fail_the_start(
    meet: Ovmeet, livekit: LiveKitStandIn
) -> None:
    room = meet.create_room("blip")
    livekit.egress_faults = EgressFaults(lists_failing=3)
    started = api(meet).start_recording(room, api(meet).moderator(room))
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "ACTIVE"
    assert livekit.egress_faults.lists_failing == 0  # the failures happened, and were outlived


def test_an_egress_failing_mid_way_ends_failed_and_frees_the_room(
    meet: Ovmeet, livekit: LiveKitStandIn
) -> None:
    room = meet.create_room("crash")
    cookie = api(meet).moderator(room)
    livekit.egress_faults = EgressFaults(fails_when_active=True)
    started = api(meet).start_recording(room, cookie)
    assert started.status_code == 200
    failed = wait_status(meet, started.json()["recordingId"], "FAILED")
    assert failed["error"] == "injected: the egress worker crashed"
    livekit.egress_faults = EgressFaults()
    deadline = time.monotonic() + 10
    while (
        again := api(meet).start_recording(room, cookie)
    ).status_code == 409 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert again.status_code == 200


def test_webhooks_twice_and_out_of_order_never_move_a_status_back(
    meet: Ovmeet, livekit: LiveKitStandIn
) -> None:
    room = meet.create_room("replay")
    cookie = api(meet).moderator(room)
    livekit.egress_faults = EgressFaults(twice=True, ended_first=True)
    recording_id = api(meet).start_recording(room, cookie).json()["recordingId"]
    assert api(meet).stop_recording(recording_id, cookie).status_code == 200
    wait_status(meet, recording_id, "COMPLETE")
    time.sleep(1)  # the late ENDING and the duplicates have arrived by now
    assert api(meet).recording(recording_id).json()["status"] == "COMPLETE"


# ---- listing ----


def test_the_list_is_newest_first_in_pages(meet: Ovmeet) -> None:
    room, other = meet.create_room("list")["roomName"], meet.create_room("else")["roomName"]
    ids = [RecordingId(room, f"EG_l{n}", f"u{n}") for n in range(7)]
    elsewhere = RecordingId(other, "EG_o", "u0")

    async def make(storage: Any) -> None:
        for n, recording_id in enumerate(ids):
            await write_recording(
                storage,
                Recording(recording_id, RecordingStatus.COMPLETE, start_date=1_000_000 + n),
                new=True,
            )
        await write_recording(
            storage, Recording(elsewhere, RecordingStatus.COMPLETE, 2_000_000), new=True
        )

    _with_storage(meet.config(), make)
    newest_first = [str(i) for i in reversed(ids)]
    seen, token, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"roomId": room, "maxItems": 3}
        if token:
            params["nextPageToken"] = token
        page = meet.client.get(
            f"{api(meet).public_api}/recordings", params=params, headers=KEY
        ).json()
        seen += [r["recordingId"] for r in page["recordings"]]
        pages += 1
        token = page["pagination"].get("nextPageToken")
        assert page["pagination"]["isTruncated"] == (token is not None)
        if not token:
            break
    assert seen == newest_first and pages == 3
    everything = meet.client.get(
        f"{api(meet).public_api}/recordings", params={"maxItems": 100}, headers=KEY
    ).json()["recordings"]
    assert {str(elsewhere), *newest_first} <= {r["recordingId"] for r in everything}
    dates = [r["startDate"] for r in everything]
    assert dates == sorted(dates, reverse=True)
    for bad in ({"nextPageToken": "bm90LWEta2V5"}, {"maxItems": 0}, {"maxItems": 101}):
        refused = meet.client.get(f"{api(meet).public_api}/recordings", params=bad, headers=KEY)
        assert refused.status_code == 422, bad


def test_bulk_delete_says_what_it_did_not_delete_and_why(meet: Ovmeet, tmp_path: Any) -> None:
    room = meet.create_room("bulk")
    clip = make_mp4(tmp_path / "c.mp4", seconds=1)
    done = [meet.import_recording(clip, room["roomName"])["recordingId"] for _ in range(2)]
    cookie = api(meet).moderator(room)
    active = api(meet).start_recording(room, cookie).json()["recordingId"]
    missing = f"{room['roomName']}--EG_gone--u9"
    answer = meet.client.delete(
        f"{api(meet).public_api}/recordings",
        params={"recordingIds": ",".join([*done, active, missing])},
        headers=KEY,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["deleted"] == done
    assert [(n["recordingId"], n["error"].split(" ")[0]) for n in body["notDeleted"]] == [
        (active, "Recording"),
        (missing, "Recording"),
    ]
    assert "in progress" in body["notDeleted"][0]["error"]
    too_many = ",".join([missing] * 101)
    assert (
        meet.client.delete(
            f"{api(meet).public_api}/recordings", params={"recordingIds": too_many}, headers=KEY
        ).status_code
        == 422
    )


# ---- the application's webhooks ----


@dataclass
class Receiver:
    """An application endpoint: checks each signature; fails its first delivery on purpose."""

    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    refused: int = 0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Endpoint(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            timestamp = self.headers["X-Timestamp"]
            expected = hmac.new(
                API_KEY.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("X-Signature", "")):
                got.bad_signatures += 1
            if not got.refused:  # the first delivery fails: it must come again
                got.refused += 1
                self.send_response(500)
            else:
                got.received.append(json.loads(body))
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    got.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks"
    yield got
    httpd.shutdown()


def test_the_application_is_told_signed_and_a_failed_delivery_is_retried(
    servers: Servers, livekit: LiveKitStandIn, receiver: Receiver
) -> None:
    meet = servers.start("local", MEET_API_KEY=API_KEY)
    livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    hooks = {"enabled": True, "url": receiver.url}
    assert (
        meet.client.put(
            f"{api(meet).public_api}/preferences/webhooks", json=hooks, headers=KEY
        ).status_code
        == 200
    )
    room = meet.create_room("hooks")
    cookie = api(meet).moderator(room)
    recording_id = api(meet).start_recording(room, cookie).json()["recordingId"]
    api(meet).stop_recording(recording_id, cookie)
    wait_status(meet, recording_id, "COMPLETE")
    finished = WebhookEvent(event="room_finished", id="EV_finished")
    finished.room.name = room["roomName"]
    content, headers = signed(finished)
    assert (
        meet.client.post(
            f"{meet.base_url}/livekit/webhook", content=content, headers=headers
        ).status_code
        == 200
    )
    deadline = time.monotonic() + 20
    while len(receiver.received) < 5 and time.monotonic() < deadline:
        time.sleep(0.1)
    events = [(e["event"], e["data"].get("status")) for e in receiver.received]
    assert sorted(events, key=str) == sorted(
        [
            ("recordingStarted", "STARTING"),
            ("recordingUpdated", "ACTIVE"),
            ("recordingUpdated", "ENDING"),
            ("recordingEnded", "COMPLETE"),
            ("roomFinished", None),
        ],
        key=str,
    ), events
    assert receiver.refused == 1 and receiver.bad_signatures == 0
    room_event = next(e for e in receiver.received if e["event"] == "roomFinished")
    assert room_event["data"]["roomName"] == room["roomName"]
    assert all(isinstance(e["creationDate"], int) for e in receiver.received)


# ---- the clean-up ----


def test_gc_aborts_what_livekit_forgot_and_removes_expired_rooms(
    servers: Servers, backend: str, livekit: LiveKitStandIn, tmp_path: Any
) -> None:
    meet = servers.start(backend, MEET_API_KEY=API_KEY)  # its own: nothing else in progress
    livekit.webhook_urls = [f"{meet.base_url}/livekit/webhook"]
    room = meet.create_room("forgot")
    cookie = api(meet).moderator(room)
    recording_id = api(meet).start_recording(room, cookie).json()["recordingId"]
    livekit.egresses.clear()  # LiveKit restarted: it knows nothing of the egress
    age_lock(meet, room)
    expires_at = time.time() + 2
    expired = meet.create_room("old", expiration_date=int(expires_at * 1000))["roomName"]
    kept = meet.import_recording(make_mp4(tmp_path / "k.mp4", seconds=1), expired)["recordingId"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.05)  # the room's time is over
    ran = meet.cli("gc")
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["abortedRecordings"] == [recording_id]
    assert report["releasedRooms"] == [room["roomName"]]
    assert expired in report["removedRooms"]
    aborted = api(meet).recording(recording_id).json()
    assert aborted["status"] == "ABORTED" and "no longer knows" in aborted["error"]
    assert api(meet).recording(kept).status_code == 200  # recordings outlive their room
    assert api(meet).start_recording(room, cookie).status_code == 200
    assert json.loads(meet.cli("gc").stdout)["abortedRecordings"] == []


def test_recordings_stored_before_the_index_are_listed_after_a_start(
    apps: Any, tmp_path: Any
) -> None:
    env = {"MEET_API_KEY": API_KEY, "MEET_DATA_DIR": str(tmp_path / "old-data")}
    first = apps(**env)
    room = first.create_room("old")["roomName"]
    legacy = RecordingId(room, "EG_old", "u1")

    async def store_without_index(storage: Any) -> None:
        await write_recording(storage, Recording(legacy, RecordingStatus.COMPLETE, 5_000))

    _with_storage(first.config(), store_without_index)
    listed = first.client.get(f"{first.base_url}/meet/api/v1/recordings", headers=KEY)
    assert listed.json()["recordings"] == []  # the index was built before it was stored
    (tmp_path / "old-data" / "recordings" / ".index" / "built.json").unlink()
    again = apps(**env)  # a start indexes what it finds
    listed = again.client.get(f"{again.base_url}/meet/api/v1/recordings", headers=KEY)
    assert [r["recordingId"] for r in listed.json()["recordings"]] == [str(legacy)]


def test_every_process_cleans_up_by_itself(servers: Servers, livekit: LiveKitStandIn) -> None:
    meet = servers.start("local", MEET_API_KEY=API_KEY, MEET_GC_INTERVAL="1s")
    room = meet.create_room("periodic")
    cookie = api(meet).moderator(room)
    recording_id = api(meet).start_recording(room, cookie).json()["recordingId"]
    livekit.egresses.clear()
    age_lock(meet, room)
    aborted = wait_status(meet, recording_id, "ABORTED", timeout=10)  # no CLI: the server did it
    assert "no longer knows" in aborted["error"]
    assert api(meet).start_recording(room, cookie).status_code == 200


@pytest.mark.anyio
async def test_one_status_change_reported_at_once_is_recorded_and_told_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The start's polling and LiveKit's egress_updated webhook both report ACTIVE.
    config = Config.from_env({**base_env("http://127.0.0.1:9"), "MEET_DATA_DIR": str(tmp_path)})
    services = Services.build(config)
    recording_id = RecordingId("race-room", "EG_race", "u1")

    def reported(status: EgressStatus) -> Recording:
        info = EgressInfo(egress_id="EG_race", room_name="race-room", status=status, updated_at=1)
        return recording_of_egress(info, recording_id)

    await services.recorder.apply_status(reported(EgressStatus.EGRESS_STARTING))
    with caplog.at_level(logging.INFO, logger="ovmeet.recorder"):
        results = await asyncio.gather(
            *(
                services.recorder.apply_status(reported(EgressStatus.EGRESS_ACTIVE))
                for _ in range(5)
            )
        )
    assert [changed for _, changed in results].count(True) == 1
    assert all(stored.status == RecordingStatus.ACTIVE for stored, _ in results)
    assert sum("is ACTIVE" in r.getMessage() for r in caplog.records) == 1
    assert len(services.recorder._changes) == 0  # no lock is kept once nobody waits
