"""Recordings: the internal API's stream, and the public API's start, stop, list, get, delete."""

from __future__ import annotations

from typing import Any

from connexion import request
from starlette.responses import JSONResponse, Response

from ovmeet.auth.access import Principal
from ovmeet.recordings import store as recordings
from ovmeet.recordings.playback import hand_over, open_playback
from ovmeet.web.context import services
from ovmeet.web.paths import PUBLIC_API
from ovmeet.web.streaming import ByteStreamResponse


async def get_recording_stream(recording_id: str) -> Response:
    s = services()
    delivery = s.config.recording_delivery
    if delivery != "proxy" and request.method != "HEAD":  # HEAD stays proxied in every mode
        handed = await hand_over(
            s.media,
            recording_id,
            request.headers.get("range"),
            request.headers.get("if-range"),
            delivery,
            seconds=s.config.recording_url_ttl,
            accel_prefix=s.config.accel_prefix,
        )
        return Response(status_code=handed.status, headers=handed.headers)
    playback = await open_playback(
        s.media,
        recording_id,
        request.headers.get("range"),
        request.headers.get("if-range"),
        with_body=request.method != "HEAD",
    )
    if playback.body is None:
        return Response(status_code=playback.status, headers=playback.headers)
    return ByteStreamResponse(playback.body, playback.status, playback.headers)


async def create_recording(body: dict[str, Any], principal: Principal) -> Response:
    started = await services().recorder.start(body["roomId"], principal.participant)
    return JSONResponse(started.to_json())


async def stop_recording(recording_id: str, principal: Principal) -> Response:
    stopped = await services().recorder.stop(recording_id, principal.participant)
    location = f"{PUBLIC_API}/recordings/{stopped.id}"
    return JSONResponse(stopped.to_json(), headers={"Location": location})


async def get_recordings(
    max_items: int = 10, room_id: str | None = None, next_page_token: str | None = None
) -> Response:
    found, token = await recordings.list_recordings(
        services().storage, room_id, max_items, next_page_token
    )
    pagination: dict[str, Any] = {"isTruncated": token is not None}
    if token is not None:
        pagination["nextPageToken"] = token
    return JSONResponse({"recordings": [r.to_json() for r in found], "pagination": pagination})


async def get_recording(recording_id: str) -> Response:
    found = await recordings.get_recording(services().storage, recording_id)
    return JSONResponse(found.to_json())


async def delete_recording(recording_id: str) -> Response:
    await services().recorder.delete(recording_id)
    return Response(status_code=204)


async def bulk_delete_recordings(recording_ids: str) -> Response:
    ids = [part.strip() for part in recording_ids.split(",") if part.strip()]
    deleted, not_deleted = await services().recorder.delete_many(ids)
    return JSONResponse(
        {
            "deleted": deleted,
            "notDeleted": [{"recordingId": i, "error": why} for i, why in not_deleted],
        }
    )
