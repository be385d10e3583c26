"""The application factory: every spec of `ovmeet.spec`, routed by Connexion to its handlers."""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import inflection
import yaml
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.security import SecurityMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ovmeet.config import Config
from ovmeet.errors import ApiError
from ovmeet.services import Services
from ovmeet.web import errors
from ovmeet.web.access import AccessMiddleware
from ovmeet.web.headers import ResponseHeadersMiddleware
from ovmeet.web.paths import HEALTH, SPECS
from ovmeet.web.validation import VALIDATORS

# Connexion's stack with our access check in the place of its security middleware.
MIDDLEWARES = [
    AccessMiddleware if middleware is SecurityMiddleware else middleware
    for middleware in ConnexionMiddleware.default_middlewares
]


def load_spec(name: str) -> dict[str, Any]:
    """One OpenAPI document of the `ovmeet.spec` package (installed with ovmeet)."""
    document: dict[str, Any] = yaml.safe_load(files("ovmeet.spec").joinpath(name).read_text())
    return document


def handler_for(name: str) -> Callable[..., Any]:
    """`ovmeet.handlers.recordings.getRecordingStream` -> that module's get_recording_stream.

    The module comes from each operation's `x-openapi-router-controller` in the spec.
    """
    module, _, operation_id = name.rpartition(".")
    return getattr(importlib.import_module(module), inflection.underscore(operation_id))  # type: ignore[no-any-return]


def create_app(config: Config | None = None) -> AsyncApp:
    """The ASGI app for `config` (default: read from the environment)."""
    config = config or Config.from_env(os.environ)
    services = Services.build(config)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        await services.start()
        try:
            yield {"services": services}
        finally:
            await services.aclose()

    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        middlewares=MIDDLEWARES,
        validator_map=VALIDATORS,
        strict_validation=True,
        validate_responses=True,
        pythonic_params=True,
        resolver=Resolver(function_resolver=handler_for),
        swagger_ui_options=SwaggerUIOptions(swagger_ui=config.docs_enabled, swagger_ui_path="/ui"),
    )
    app.add_middleware(ResponseHeadersMiddleware, position=MiddlewarePosition.BEFORE_EXCEPTION)
    for spec, base_path in SPECS.items():
        app.add_api(load_spec(spec), base_path=base_path)
    app.add_url_rule(HEALTH, "health", health, methods=["GET"])
    app.add_error_handler(ApiError, errors.on_api_error)
    app.add_error_handler(ProblemException, errors.on_problem)
    app.add_error_handler(HTTPException, errors.on_http_exception)
    app.add_error_handler(Exception, errors.on_unexpected)
    return app


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "UP"})
