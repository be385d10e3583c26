"""LiveKit webhooks (companion spec)."""

from __future__ import annotations

from connexion import request
from starlette.responses import JSONResponse, Response

from ovmeet.livekit.webhooks import verify_event
from ovmeet.web.context import services


async def receive_webhook() -> Response:
    s = services()
    event = verify_event(s.config, await request.body(), request.headers.get("authorization"))
    return JSONResponse({"message": await s.events.handle(event)})
