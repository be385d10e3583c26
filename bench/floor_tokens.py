"""The floor for bench/tokens.py: the same token work behind a bare Starlette route.

Same room lookup, same auth-mode read, same LiveKit call, same signing and cookie as
POST /participants/token, without Connexion's routing, validation and security layers.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ovmeet.config import Config
from ovmeet.participants import TokenOptions, issue_token
from ovmeet.services import Services
from ovmeet.web.cookies import PARTICIPANT_COOKIE, set_cookie


def create_app() -> Starlette:
    services = Services.build(Config.from_env(os.environ))

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        await services.start()
        yield
        await services.aclose()

    async def token(request: Request) -> Response:
        body = await request.json()
        options = TokenOptions(body["roomName"], body["participantName"], body["secret"])
        issued = await issue_token(services, options, None)
        response = JSONResponse({"token": issued})
        ttl = services.config.participant_token_ttl
        set_cookie(response, services.config, PARTICIPANT_COOKIE, issued, ttl)
        return response

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "UP"})

    routes = [
        Route("/meet/internal-api/v1/participants/token", token, methods=["POST"]),
        Route("/meet/health", health),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
