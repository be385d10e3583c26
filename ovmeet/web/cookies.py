"""The three cookies, with the attributes the contract gives them; cross-site ones when the
front end may be embedded (MEET_EMBED_ORIGINS)."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import Response

from ovmeet.support.config import Config

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
    """`SameSite=Strict`; embedded, `SameSite=None; Secure; Partitioned`: a browser keeps and
    sends such a cookie inside another site's iframe, in that site's partition only."""
    embedded = config.embedding
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        secure=config.cookie_secure or embedded,
        httponly=True,
        samesite="none" if embedded else "strict",
    )
    if embedded:
        _partitioned(response)


def clear_cookie(response: Response, config: Config, name: str, path: str = "/") -> None:
    embedded = config.embedding
    response.delete_cookie(
        name,
        path=path,
        secure=config.cookie_secure or embedded,
        httponly=True,
        samesite="none" if embedded else "strict",
    )
    if embedded:
        _partitioned(response)  # a partitioned cookie is removed by a partitioned one


def _partitioned(response: Response) -> None:
    """Add `Partitioned` to the cookie just set (Python's http.cookies knows it from 3.14 on,
    and Starlette refuses it before)."""
    name, value = response.raw_headers[-1]
    response.raw_headers[-1] = (name, value + b"; Partitioned")
