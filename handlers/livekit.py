"""LiveKit webhooks (companion spec)."""

from __future__ import annotations

from connexion import request
from starlette.responses import JSONResponse, Response

from ovmeet.events import handle_event, verify_event
from ovmeet.web.context import services


async def receive_webhook() -> Response:
    s = services()
    event = verify_event(s.config, await request.body(), request.headers.get("authorization"))
    return JSONResponse({"message": await handle_event(s, event)})
