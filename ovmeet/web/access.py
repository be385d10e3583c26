"""The access check at the HTTP edge: a request's credentials, checked against access.RULES.

It takes the place of Connexion's SecurityMiddleware (right after routing, before validation),
so the table in ovmeet/auth/access.py is the only thing that decides who may call an operation. The
`Principal` it builds reaches every handler that has a `principal` parameter.
"""

from __future__ import annotations

import hmac

from connexion.lifecycle import ConnexionRequest
from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from ovmeet.auth.access import RULES, Principal, Rule, authorize, in_force
from ovmeet.auth.tokens import Session, SessionKind
from ovmeet.services import Services
from ovmeet.support.errors import Unauthorized
from ovmeet.web.context import client_of, routed_operation
from ovmeet.web.cookies import (
    ACCESS_COOKIE,
    PARTICIPANT_COOKIE,
    REFRESH_COOKIE,
    request_cookies,
)

API_KEY_HEADER = "x-api-key"
_SESSION_COOKIES: tuple[tuple[str, SessionKind], ...] = (
    (ACCESS_COOKIE, "access"),
    (REFRESH_COOKIE, "refresh"),
)


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        operation_id = routed_operation(scope)
        if scope["type"] == "http" and operation_id is not None:
            rule = RULES.get(operation_id)
            if rule is None:  # tests/test_access.py keeps this from happening
                raise LookupError(f"operation {operation_id} has no access rule")
            services: Services = scope["state"]["services"]
            principal = await principal_of(services, Headers(scope=scope), client_of(scope))
            if rule.room_creation_policy:
                rule = in_force(rule, await services.preferences.current())
            try:
                authorize(rule, principal, _room_of(scope, rule))
            except Unauthorized as refused:
                reasons = await refused_credentials(services, Headers(scope=scope))
                if not reasons:
                    raise
                raise Unauthorized(f"{refused.message}; {'; '.join(reasons)}") from None
            ConnexionRequest(scope, receive).context["principal"] = principal
        await self.app(scope, receive, send)


async def principal_of(services: Services, headers: Headers, client: str) -> Principal:
    """Every credential in `headers` that checks out (several Cookie lines are read as one).
    A client that sent too many wrong API keys is refused (429) while its lock lasts."""
    cookies = request_cookies(headers)
    participant = cookies.get(PARTICIPANT_COOKIE)
    return Principal(
        access=await _session(services, cookies.get(ACCESS_COOKIE), "access"),
        refresh=await _session(services, cookies.get(REFRESH_COOKIE), "refresh"),
        participant=services.participant_tokens.verify(participant) if participant else None,
        api_key=await _api_key_holds(services, headers.get(API_KEY_HEADER), client),
    )


async def _api_key_holds(services: Services, given: str | None, client: str) -> bool:
    """Whether `given` is MEET_API_KEY (constant time); a wrong one counts against `client`."""
    if given is None:
        return False
    await services.api_key_throttle.check(client)
    expected = services.config.api_key
    if expected is not None and hmac.compare_digest(given.encode(), expected.encode()):
        return True
    await services.api_key_throttle.failed(client)
    return False


async def refused_credentials(services: Services, headers: Headers) -> list[str]:
    """Why each session cookie or API key the request carries was not accepted."""
    cookies = request_cookies(headers)
    reasons = []
    for name, kind in _SESSION_COOKIES:
        token = cookies.get(name)
        if token:
            checked = services.sessions.check(token, kind)
            if isinstance(checked, str):
                reasons.append(f"the {name} cookie {checked}")
            elif await services.revocations.is_revoked(checked):
                reasons.append(f"the {name} cookie was revoked by a logout")
    participant = cookies.get(PARTICIPANT_COOKIE)
    if participant and services.participant_tokens.verify(participant) is None:
        reasons.append(
            f"the {PARTICIPANT_COOKIE} cookie is not a valid, unexpired participant token of "
            "this server"
        )
    given_key = headers.get(API_KEY_HEADER)
    if given_key is not None and services.config.api_key is None:
        reasons.append("the X-API-KEY header was sent, but this server has no API key")
    elif given_key is not None and not hmac.compare_digest(
        given_key.encode(), (services.config.api_key or "").encode()
    ):
        reasons.append("the X-API-KEY header is not this server's API key")
    return reasons


async def _session(services: Services, token: str | None, kind: SessionKind) -> Session | None:
    """The session `token` opens, unless it is invalid or was revoked (logout)."""
    session = services.sessions.verify(token, kind) if token else None
    if session is None or await services.revocations.is_revoked(session):
        return None
    return session


def _room_of(scope: Scope, rule: Rule) -> str | None:
    """The room a MODERATOR rule is about: its path parameter, or its query parameter."""
    if rule.room_parameter is None:
        return None
    path_params: dict[str, str] = scope.get("path_params", {})
    if rule.room_parameter in path_params:
        return path_params[rule.room_parameter]
    return QueryParams(scope.get("query_string", b"")).get(rule.room_parameter)
