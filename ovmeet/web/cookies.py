"""The three cookies, with the attributes the contract gives them."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import Response

from ovmeet.config import Config

ACCESS_COOKIE = "OvMeetAccessToken"
REFRESH_COOKIE = "OvMeetRefreshToken"
PARTICIPANT_COOKIE = "OvMeetParticipantToken"


def request_cookies(headers: Headers) -> dict[str, str]:
    """Every cookie of the request, from all of its Cookie header lines (Starlette's own
    `request.cookies` reads only the first line)."""
    return cookie_parser("; ".join(headers.getlist("cookie")))


def set_cookie(
    response: Response, config: Config, name: str, value: str, max_age: int, path: str = "/"
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=config.cookie_secure,
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, config: Config, name: str, path: str = "/") -> None:
    response.delete_cookie(
        name, path=path, secure=config.cookie_secure, httponly=True, samesite="strict"
    )
