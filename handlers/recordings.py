"""Internal API - Recordings."""

from __future__ import annotations

from connexion import request
from starlette.responses import Response

from ovmeet.playback import open_playback
from ovmeet.web.context import services
from ovmeet.web.streaming import ByteStreamResponse


async def get_recording_stream(recording_id: str) -> Response:
    playback = await open_playback(
        services().storage,
        recording_id,
        request.headers.get("range"),
        request.headers.get("if-range"),
        with_body=request.method != "HEAD",
    )
    if playback.body is None:
        return Response(status_code=playback.status, headers=playback.headers)
    return ByteStreamResponse(playback.body, playback.status, playback.headers)
