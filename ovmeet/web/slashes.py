"""An API path with a trailing slash is the same path without it (`/meet/api/v1/rooms/` is the
room list): the release answered both spellings, and its front end calls some collections with
the slash. A redirect would cost the browser a round trip (and Starlette's names the request's
host). The Swagger UI keeps its own slash rules."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class TrailingSlashMiddleware:
    def __init__(self, app: ASGIApp, base_paths: tuple[str, ...]) -> None:
        self.app = app
        self.prefixes = tuple(f"{base}/" for base in base_paths)
        self.docs = tuple(f"{base}/ui" for base in base_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.endswith("/")
            and not path.endswith("//")
            and path.startswith(self.prefixes)
            and path not in self.prefixes
            and not path.startswith(self.docs)
        ):
            raw = scope.get("raw_path")
            scope = {
                **scope,
                "path": path[:-1],
                "raw_path": raw[:-1] if raw and raw.endswith(b"/") else raw,
            }
        await self.app(scope, receive, send)
