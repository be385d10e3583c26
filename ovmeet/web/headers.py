"""What every response carries (browser hardening, framing rules), and redirects that never
name a host the request chose.

Starlette's routers answer a path with a trailing slash with a redirect built from the request's
Host header (and scheme); such a redirect keeps only its path and query here, so no request
header can send a browser elsewhere. A redirect to a host of the configuration (a presigned
storage URL) stays as it is.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ovmeet.web.paths import is_front_end

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
NO_FRAMES: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)


class ResponseHeadersMiddleware:
    """Every response refuses to be framed, except the front end's pages for the origins of
    MEET_EMBED_ORIGINS (which may frame them, and nothing else)."""

    def __init__(self, app: ASGIApp, embed_origins: tuple[str, ...] = ()) -> None:
        self.app = app
        self.embedded: tuple[tuple[bytes, bytes], ...] = (
            ((b"content-security-policy", f"frame-ancestors {' '.join(embed_origins)}".encode()),)
            if embed_origins
            else NO_FRAMES
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        framing = self.embedded if is_front_end(scope["path"]) else NO_FRAMES
        host = next((v for k, v in scope["headers"] if k == b"host"), b"").decode("latin-1")

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, _relative(value, host) if name.lower() == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
                message = {**message, "headers": [*headers, *SECURITY_HEADERS, *framing]}
            await send(message)

        await self.app(scope, receive, send_hardened)


def _relative(location: bytes, request_host: str) -> bytes:
    """`https://host/a/b?c` -> `/a/b?c` when `host` is the request's own (a redirect built from
    the Host header, which a client chooses); a relative location, or one to a host the
    configuration names (a presigned storage URL), as it is."""
    parts = urlsplit(location.decode("latin-1"))
    if not (parts.scheme or parts.netloc) or parts.netloc.lower() != request_host.lower():
        return location
    path = parts.path if parts.path.startswith("/") else f"/{parts.path}"
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")
