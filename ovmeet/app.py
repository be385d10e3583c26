"""The application factory: the specs in spec/, routed by Connexion to thin handlers."""

from __future__ import annotations

import importlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import inflection
from connexion import AsyncApp
from connexion.exceptions import ProblemException
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ovmeet.config import Config
from ovmeet.errors import ApiError
from ovmeet.services import Services
from ovmeet.web import errors
from ovmeet.web.security import cookie_security_handler, cookie_verifiers
from ovmeet.web.validation import VALIDATORS

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"
INTERNAL_API = "openvidu-meet-internal-api.yaml"
# Each spec and its base path. Connexion sorts APIs so that a more specific base path is
# matched first, but only when base paths are given explicitly (otherwise all compare equal).
SPECS = {
    "ovmeet-auth-api.yaml": "/meet/internal-api/v1/auth",
    INTERNAL_API: "/meet/internal-api/v1",
    "livekit-webhook-api.yaml": "/livekit",
}
HANDLER_MODULE_BY_OPERATION = {
    "generateParticipantToken": "handlers.participants",
    "refreshParticipantToken": "handlers.participants",
    "disconnectParticipant": "handlers.participants",
    "getRecordingStream": "handlers.recordings",
    "login": "handlers.auth",
    "refreshAccessToken": "handlers.auth",
    "logout": "handlers.auth",
    "getProfile": "handlers.auth",
    "receiveWebhook": "handlers.livekit",
}


def handler_for(operation_id: str) -> Callable[..., Any]:
    """`getRecordingStream` -> handlers.recordings.get_recording_stream."""
    module = importlib.import_module(HANDLER_MODULE_BY_OPERATION[operation_id])
    return getattr(module, inflection.underscore(operation_id))  # type: ignore[no-any-return]


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
        specification_dir=SPEC_DIR,
        security_map={"apiKey": cookie_security_handler(cookie_verifiers(services))},
        validator_map=VALIDATORS,
        strict_validation=True,
        validate_responses=True,
        pythonic_params=True,
        resolver=Resolver(function_resolver=handler_for),
        swagger_ui_options=SwaggerUIOptions(swagger_ui=True, swagger_ui_path="/ui"),
    )
    for spec, base_path in SPECS.items():
        app.add_api(spec, base_path=base_path)
    app.add_url_rule("/meet/health", "health", health, methods=["GET"])
    app.add_error_handler(ApiError, errors.on_api_error)
    app.add_error_handler(ProblemException, errors.on_problem)
    app.add_error_handler(HTTPException, errors.on_http_exception)
    app.add_error_handler(Exception, errors.on_unexpected)
    return app


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "UP"})
