"""POST /livekit/webhook: signed egress events become recording metadata; nothing else does."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import httpx
import pytest
from livekit.api import AccessToken
from livekit.protocol.webhook import WebhookEvent

from tests.support.helpers import access_cookie, cookie_header
from tests.support.livekit_webhooks import (
    egress_event,
    output_of,
    ovmeet_egress_event,
    signed,
    started_egress,
)
from tests.support.media import make_mp4
from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, Ovmeet
from tests.support.stored import Stored

METADATA = "recordings/.metadata/"


def post(server: Ovmeet, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(f"{server.base_url}/livekit/webhook", content=body, headers=headers)


def send(server: Ovmeet, event: WebhookEvent) -> httpx.Response:
    return post(server, *signed(event))


def test_a_recording_goes_from_started_to_complete_and_plays(
    server: Ovmeet, tmp_path: Path
) -> None:
    room = server.create_room("egress")["roomName"]
    stored = Stored(server)
    key = f"{METADATA}{room}/EG_life/u1.json"

    assert (
        send(
            server,
            ovmeet_egress_event(server, "egress_started", room, "EG_life", "u1", "EGRESS_STARTING"),
        ).status_code
        == 200
    )
    started = stored.read_json(key)
    assert started["recordingId"] == f"{room}--EG_life--u1"
    assert (started["roomId"], started["status"], started["filename"]) == (
        room,
        "STARTING",
        f"{room}--u1.mp4",
    )
    assert started["startDate"] > 1_700_000_000_000  # ms since the epoch

    assert (
        send(
            server,
            ovmeet_egress_event(server, "egress_updated", room, "EG_life", "u1", "EGRESS_ACTIVE"),
        ).status_code
        == 200
    )
    assert stored.read_json(key)["status"] == "ACTIVE"

    clip = make_mp4(tmp_path / "egress.mp4", seconds=2)
    stored.put_file(f"recordings/{room}/{room}--u1.mp4", clip)  # what the egress uploads
    ended = ovmeet_egress_event(
        server,
        "egress_ended",
        room,
        "EG_life",
        "u1",
        "EGRESS_COMPLETE",
        size=clip.stat().st_size,
        duration_ns=2_000_000_000,
    )
    response = send(server, ended)
    assert response.status_code == 200
    assert response.json() == {"message": f"recording '{room}--EG_life--u1' is COMPLETE"}
    complete = stored.read_json(key)
    assert complete["status"] == "COMPLETE"
    assert complete["size"] == clip.stat().st_size
    assert complete["duration"] == 2.0
    assert complete["endDate"] >= complete["startDate"]

    stream = httpx.get(
        f"{server.api}/recordings/{room}--EG_life--u1/stream",
        headers=cookie_header(access_cookie(server)),
    )
    assert stream.status_code == 200 and stream.content == clip.read_bytes()

    late = send(
        server,
        ovmeet_egress_event(server, "egress_updated", room, "EG_life", "u1", "EGRESS_ACTIVE"),
    )
    assert late.status_code == 200 and "is already COMPLETE" in late.json()["message"]
    assert stored.read_json(key)["status"] == "COMPLETE"


def test_failed_recordings_keep_their_error(server: Ovmeet) -> None:
    room = server.create_room("failing")["roomName"]
    event = ovmeet_egress_event(
        server, "egress_ended", room, "EG_fail", "u2", "EGRESS_FAILED", error="pipeline crashed"
    )
    assert send(server, event).status_code == 200
    stored = Stored(server).read_json(f"{METADATA}{room}/EG_fail/u2.json")
    assert stored["status"] == "FAILED" and stored["error"] == "pipeline crashed"


@pytest.mark.parametrize("attack", ["missing", "other secret", "other body", "garbage", "bearer"])
def test_unsigned_or_forged_events_are_401_and_write_nothing(server: Ovmeet, attack: str) -> None:
    room = server.create_room("forged")["roomName"]
    event = egress_event("egress_started", room, "EG_forged", "u3", "EGRESS_STARTING")
    body, headers = signed(event)
    if attack == "missing":
        del headers["Authorization"]
    elif attack == "other secret":
        body, headers = signed(event, secret="another-livekit-secret-0123456789abc")
    elif attack == "other body":
        body = body.replace(b"EG_forged", b"EG_swapped")
    elif attack == "garbage":
        headers["Authorization"] = "not-a-jwt"
    else:
        headers["Authorization"] = "Bearer " + headers["Authorization"]
    response = post(server, body, headers)
    assert response.status_code == 401
    assert response.json()["name"] == "Authentication Error"
    assert Stored(server).keys(f"{METADATA}{room}/") == []


def test_events_for_other_rooms_and_outputs_are_acknowledged_and_ignored(server: Ovmeet) -> None:
    before = Stored(server).keys(METADATA)
    foreign = send(
        server, egress_event("egress_started", "not-ours-1", "EG_x", "u4", "EGRESS_STARTING")
    )
    assert foreign.status_code == 200
    assert "ovmeet did not start egress 'EG_x'" in foreign.json()["message"]

    room = server.create_room("other")["roomName"]
    streamed = ovmeet_egress_event(
        server, "egress_started", room, "EG_rtmp", "u5", "EGRESS_STARTING"
    )
    streamed.egress_info.stream_results.add(url="rtmp://example/live")
    assert "ignored" in send(server, streamed).json()["message"]

    odd_name = ovmeet_egress_event(
        server, "egress_started", room, "EG_odd", "u6", "EGRESS_STARTING"
    )
    odd_name.egress_info.file_results[0].filename = "elsewhere/../../escape.mp4"
    assert "ignored" in send(server, odd_name).json()["message"]

    started = WebhookEvent(event="room_started", id="EV_1")
    assert send(server, started).json() == {"message": "room_started ignored"}
    assert Stored(server).keys(METADATA) == before


def test_an_egress_ovmeet_did_not_start_never_becomes_a_recording(server: Ovmeet) -> None:
    """Anyone who can start an egress of an ovmeet room (LiveKit's roomRecord grant) gets no
    recording out of it: its events are acknowledged and ignored, for every status."""
    room = server.create_room("intruded")["roomName"]
    for event, status in [
        ("egress_started", "EGRESS_STARTING"),
        ("egress_updated", "EGRESS_ACTIVE"),
        ("egress_ended", "EGRESS_COMPLETE"),
    ]:
        answer = send(server, egress_event(event, room, "EG_intruder", "u11", status, size=9))
        assert answer.status_code == 200
        assert answer.json() == {
            "message": f"{event} ignored: ovmeet did not start egress 'EG_intruder'"
        }
    assert Stored(server).keys(f"{METADATA}{room}/") == []


def test_an_egress_writing_elsewhere_is_not_a_recording(server: Ovmeet) -> None:
    """Only the output ovmeet asked for counts: the same file name in another bucket or folder,
    for the very egress ovmeet started, is ignored."""
    room = server.create_room("elsewhere")["roomName"]
    started_egress(server, room, "EG_else", "u12")
    for filename in (
        f"other-bucket/x/{room}--u12.mp4",
        f"/tmp/{room}--u12.mp4",
        f"openvidu-meet/recordings/other-room/{room}--u12.mp4",
    ):
        event = egress_event(
            "egress_started", room, "EG_else", "u12", "EGRESS_STARTING", filename=filename
        )
        answer = send(server, event)
        assert answer.status_code == 200
        assert answer.json() == {
            "message": "egress_started ignored: egress 'EG_else' writes elsewhere"
        }, filename
    assert Stored(server).keys(f"{METADATA}{room}/") == []


def test_a_late_event_does_not_bring_a_deleted_recording_back(
    server: Ovmeet, tmp_path: Path
) -> None:
    """COMPLETE, deleted (204), then a signed egress_updated ENDING with a new event id: the
    recording stays deleted."""
    room = server.create_room("ghost")["roomName"]
    clip = make_mp4(tmp_path / "ghost.mp4", seconds=1)
    Stored(server).put_file(f"recordings/{room}/{room}--u13.mp4", clip)
    complete = ovmeet_egress_event(
        server, "egress_ended", room, "EG_ghost", "u13", "EGRESS_COMPLETE", size=5
    )
    assert send(server, complete).status_code == 200
    url = f"{server.base_url}/meet/api/v1/recordings/{room}--EG_ghost--u13"
    admin = cookie_header(access_cookie(server))
    assert httpx.delete(url, headers=admin).status_code == 204
    late = egress_event(
        "egress_updated",
        room,
        "EG_ghost",
        "u13",
        "EGRESS_ENDING",
        filename=output_of(server, room, "u13"),
    )
    answer = send(server, late)
    assert answer.status_code == 200 and "ovmeet did not start" in answer.json()["message"]
    assert httpx.get(url, headers=admin).status_code == 404
    assert Stored(server).keys(f"{METADATA}{room}/") == []


def test_a_signed_body_that_is_not_an_event_is_400(server: Ovmeet) -> None:
    body = b'{"event": "egress_started", "createdAt": "yesterday"}'
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    token = AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET).with_sha256(digest).to_jwt()
    headers = {"Authorization": token, "Content-Type": "application/webhook+json"}
    response = post(server, body, headers)
    assert response.status_code == 400
    assert "not a LiveKit event" in response.json()["message"]


# ---- replays: statuses only move forward, an event counts once ----


def test_a_final_status_is_never_replaced_by_another(server: Ovmeet) -> None:
    """COMPLETE -> FAILED -> COMPLETE by replaying events must leave the first one."""
    room = server.create_room("replayed")["roomName"]
    key = f"{METADATA}{room}/EG_r/u7.json"
    complete = ovmeet_egress_event(
        server, "egress_ended", room, "EG_r", "u7", "EGRESS_COMPLETE", size=5
    )
    failed = ovmeet_egress_event(
        server, "egress_ended", room, "EG_r", "u7", "EGRESS_FAILED", error="late"
    )
    assert send(server, complete).status_code == 200
    first = Stored(server).read_json(key)
    answers = [send(server, event).json()["message"] for event in (failed, complete, failed)]
    assert answers == [
        f"egress_ended ignored: recording '{room}--EG_r--u7' is already COMPLETE",
        f"event {complete.id} already handled",
        f"event {failed.id} already handled",
    ]
    assert Stored(server).read_json(key) == first


def test_the_same_event_twice_counts_once(server: Ovmeet) -> None:
    room = server.create_room("twice")["roomName"]
    started = ovmeet_egress_event(server, "egress_started", room, "EG_t", "u8", "EGRESS_STARTING")
    active = ovmeet_egress_event(server, "egress_updated", room, "EG_t", "u8", "EGRESS_ACTIVE")
    assert send(server, started).status_code == 200
    assert send(server, active).status_code == 200
    replay = send(server, started)
    assert replay.status_code == 200
    assert replay.json() == {"message": f"event {started.id} already handled"}
    assert Stored(server).read_json(f"{METADATA}{room}/EG_t/u8.json")["status"] == "ACTIVE"


def test_statuses_never_move_back(server: Ovmeet) -> None:
    room = server.create_room("ordered")["roomName"]
    key = f"{METADATA}{room}/EG_o/u9.json"
    for status in ("EGRESS_ENDING", "EGRESS_ACTIVE", "EGRESS_STARTING"):
        send(server, ovmeet_egress_event(server, "egress_updated", room, "EG_o", "u9", status))
    assert Stored(server).read_json(key)["status"] == "ENDING"


def test_a_signature_expired_beyond_a_small_leeway_is_refused(server: Ovmeet) -> None:
    room = server.create_room("stale")["roomName"]
    event = egress_event("egress_started", room, "EG_s", "u10", "EGRESS_STARTING")
    response = post(server, *signed(event, ttl=-30))  # LiveKit's own leeway would be 60 s
    assert response.status_code == 401
    assert Stored(server).keys(f"{METADATA}{room}/") == []
