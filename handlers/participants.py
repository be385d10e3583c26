"""Internal API - Participant."""

from __future__ import annotations

from typing import Any

from connexion import request
from starlette.responses import JSONResponse, Response

from ovmeet.auth.access import Principal
from ovmeet.auth.participants import TokenOptions
from ovmeet.web.context import services
from ovmeet.web.cookies import PARTICIPANT_COOKIE, request_cookies, set_cookie


async def generate_participant_token(body: dict[str, Any], principal: Principal) -> Response:
    token = await services().participants.issue_token(
        _options(body), principal.user, principal.participant
    )
    return _token_response(token)


async def refresh_participant_token(body: dict[str, Any], principal: Principal) -> Response:
    previous = request_cookies(request.headers).get(PARTICIPANT_COOKIE)
    token = await services().participants.refresh_token(_options(body), principal.user, previous)
    return _token_response(token)


async def disconnect_participant(participant_name: str, room_name: str) -> Response:
    await services().participants.disconnect(room_name, participant_name)
    return Response(status_code=204)


def _options(body: dict[str, Any]) -> TokenOptions:
    return TokenOptions(body["roomName"], body["participantName"], body["secret"])


def _token_response(token: str) -> Response:
    response = JSONResponse({"token": token})
    config = services().config
    set_cookie(response, config, PARTICIPANT_COOKIE, token, config.participant_cookie_max_age)
    return response
