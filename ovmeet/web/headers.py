"""What every response carries (browser hardening), and redirects that never name a host.

Starlette's routers answer a path with a trailing slash with a redirect built from the request's
Host header (and scheme); a redirect here keeps only its path and query, so no request header
can send a browser elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
)


class ResponseHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, _relative(value) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS]}
            await send(message)

        await self.app(scope, receive, send_hardened)


def _relative(location: bytes) -> bytes:
    """`https://host/a/b?c` -> `/a/b?c`; a relative location as it is."""
    parts = urlsplit(location.decode("latin-1"))
    if not (parts.scheme or parts.netloc):
        return location
    path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
