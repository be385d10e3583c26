"""How a handler reaches the services of the app serving it."""

from __future__ import annotations

from typing import cast

from connexion import request
from connexion.context import scope as current_scope
from starlette.types import Scope

from ovmeet.services import Services


def services() -> Services:
    """The Services the app's lifespan opened (carried in the ASGI lifespan state)."""
    return cast(Services, current_scope["state"]["services"])


def routed_operation(scope: Scope) -> str | None:
    """The operationId Connexion routed the request to (it names a routed operation
    `{x-openapi-router-controller}.{operationId}`); None when no operation matched."""
    resolved = scope.get("extensions", {}).get("connexion_routing", {}).get("operation_id")
    return str(resolved).rpartition(".")[2] if resolved else None


def client_address() -> str:
    """The client's address (the proxy's, unless uvicorn trusts forwarded headers from it)."""
    client = request.client
    return client.host if client else "unknown"


def client_of(scope: Scope) -> str:
    """`client_address` of a request's scope, for middleware that runs before the handler."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
