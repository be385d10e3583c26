"""The Swagger UI and the served specs, looked at only for their own paths."""

from __future__ import annotations

from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.types import Receive, Scope, Send

# Connexion serves `{base}/openapi.json`, `{base}/openapi.yaml` and `{base}/ui/...`.
_DOCS_SUFFIXES = ("/openapi.json", "/openapi.yaml")


def is_docs_path(path: str) -> bool:
    """Whether `path` may be one of the docs' (a cheap test; false positives are harmless)."""
    return path.endswith(_DOCS_SUFFIXES) or "/ui" in path


class DocsMiddleware(SwaggerUIMiddleware):  # type: ignore[misc]
    """Connexion's Swagger UI middleware, skipped by every API request: its router walks every
    mounted API on each request, which the token path cannot afford."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not is_docs_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)
