"""Cookie security for Connexion: each apiKey cookie scheme is checked by a verifier of ours."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connexion.security import ApiKeySecurityHandler
from starlette.requests import cookie_parser

from ovmeet.services import Services
from ovmeet.tokens import SessionKind
from ovmeet.web.cookies import ACCESS_COOKIE, PARTICIPANT_COOKIE, REFRESH_COOKIE

Verifier = Callable[[str], dict[str, Any] | None]


def cookie_verifiers(services: Services) -> dict[str, Verifier]:
    """The verifier of each cookie: its token_info, or None (Connexion answers 401)."""

    def session(kind: SessionKind) -> Verifier:
        def verify(token: str) -> dict[str, Any] | None:
            user = services.sessions.verify(token, kind)
            return None if user is None else {"sub": user.username, "user": user}

        return verify

    def participant(token: str) -> dict[str, Any] | None:
        found = services.participant_tokens.verify(token)
        return None if found is None else {"sub": found.identity, "participant": found}

    return {
        ACCESS_COOKIE: session("access"),
        REFRESH_COOKIE: session("refresh"),
        PARTICIPANT_COOKIE: participant,
    }


def cookie_security_handler(verifiers: dict[str, Verifier]) -> type[ApiKeySecurityHandler]:
    """An apiKey handler that finds the verifier by cookie name instead of x-apikeyInfoFunc."""

    class CookieSecurityHandler(ApiKeySecurityHandler):  # type: ignore[misc]
        def _resolve_func(self, security_scheme: dict[str, Any]) -> Verifier | None:
            return verifiers.get(security_scheme["name"])

        @staticmethod
        def get_cookie_value(cookies: str | None, name: str) -> str | None:
            # Connexion parses with http.cookies, which raises (a 500) on headers such as
            # `a=b; $x=1`; Starlette's parser reads them as browsers do and never raises.
            return cookie_parser(cookies or "").get(name)

    return CookieSecurityHandler
