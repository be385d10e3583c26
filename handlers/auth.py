"""Auth (companion spec, served at both APIs' /auth)."""

from __future__ import annotations

from typing import Any

from connexion import request
from starlette.responses import JSONResponse, Response

from ovmeet.auth import login as auth
from ovmeet.auth.access import Principal
from ovmeet.support.config import User
from ovmeet.support.errors import BadRequest
from ovmeet.web.context import client_address, services
from ovmeet.web.cookies import ACCESS_COOKIE, REFRESH_COOKIE, clear_cookie, set_cookie
from ovmeet.web.paths import AUTH_APIS


async def login(body: dict[str, Any]) -> Response:
    s = services()
    user = await auth.login(
        s.config, s.login_throttle, client_address(), body["username"], body["password"]
    )
    response = JSONResponse({"message": f"User '{user.username}' logged in"})
    _set_access_cookie(response, user)
    set_cookie(
        response,
        s.config,
        REFRESH_COOKIE,
        s.sessions.issue(user, "refresh"),
        s.config.refresh_token_ttl,
        path=_auth_path(),  # the refresh token goes only where it is used
    )
    return response


async def refresh_access_token(principal: Principal) -> Response:
    user = principal.refresh_user
    if user is None:
        raise BadRequest(
            "No valid refresh token (OvMeetRefreshToken cookie): log in again",
            name="Authentication Error",
        )
    response = JSONResponse({"message": f"Access token for '{user.username}' refreshed"})
    _set_access_cookie(response, user)
    return response


async def logout(principal: Principal) -> Response:
    await auth.logout(services().revocations, principal.access, principal.refresh)
    config = services().config
    response = JSONResponse({"message": "Logged out"})
    clear_cookie(response, config, ACCESS_COOKIE)
    for path in AUTH_APIS:
        clear_cookie(response, config, REFRESH_COOKIE, path=path)
    return response


async def get_profile(principal: Principal) -> Response:
    user = _known(principal.user)
    return JSONResponse({"username": user.username, "role": user.role.lower()})


def _set_access_cookie(response: Response, user: User) -> None:
    s = services()
    set_cookie(
        response,
        s.config,
        ACCESS_COOKIE,
        s.sessions.issue(user, "access"),
        s.config.access_token_ttl,
    )


def _auth_path() -> str:
    """The auth base path this request came through."""
    return next(base for base in AUTH_APIS if request.url.path.startswith(f"{base}/"))


def _known(user: User | None) -> User:
    """The user the access rule of this operation has already required."""
    assert user is not None, "the access rule requires a user"
    return user
