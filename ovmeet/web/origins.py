"""Cross-site requests refused where a cookie would carry them: an unsafe request (POST, PUT,
PATCH, DELETE) that sends a cookie and an `Origin` other than ovmeet's own is 403 before
routing, whatever it asks.

By default the cookies are SameSite=Strict, which a browser never sends cross-site. Embedded
(SameSite=None), a page of another site can make the browser send them: this check is what
stops it, with the body rule (a cross-site form cannot send `application/json`: 415) and CORS
(ovmeet grants no cross-origin read or preflight).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ovmeet.support.errors import Forbidden
from ovmeet.support.settings import origin_of

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CrossSiteMiddleware:
    """Refuses unsafe cookie-carrying requests from pages of other origins."""

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.own = origin_of(base_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in UNSAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and "cookie" in headers and not self._own(origin, headers):
                raise Forbidden(
                    f"Cross-site request refused: a page of {origin[:100]!r} may not act with "
                    "this server's cookies"
                )
        await self.app(scope, receive, send)

    def _own(self, origin: str, headers: Headers) -> bool:
        """Whether `origin` is ovmeet's: MEET_BASE_URL's, or the host the request was sent to
        (its scheme aside: behind a TLS proxy ovmeet may see http for a page's https)."""
        given = origin_of(origin)
        if given is None:  # "null" (a sandboxed frame, a redirect): no page of ours
            return False
        if given == self.own:
            return True
        scheme, _, netloc = given.partition("://")
        sent_to = origin_of(f"{scheme}://{headers.get('host', '')}")
        return sent_to is not None and sent_to.partition("://")[2] == netloc
