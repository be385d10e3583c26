"""The application factory: every spec of `ovmeet.spec`, routed by Connexion to its handlers."""

from __future__ import annotations

import copy
import functools
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
from connexion.json_schema import Draft4RequestValidator, resolve_refs
from connexion.middleware import ConnexionMiddleware, MiddlewarePosition
from connexion.middleware.request_validation import RequestValidationMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.options import SwaggerUIOptions
from connexion.resolver import Resolver
from jsonschema import Draft4Validator
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ovmeet.services import Services, readiness
from ovmeet.support import logs, reaches
from ovmeet.support.config import Config
from ovmeet.support.errors import ApiError
from ovmeet.support.metrics import exposition, worker_stopped
from ovmeet.support.runtime import settle_garbage_collector, tune_malloc
from ovmeet.web import errors
from ovmeet.web.access import AccessMiddleware
from ovmeet.web.bodies import RequestBodyMiddleware
from ovmeet.web.docs import DocsMiddleware
from ovmeet.web.fonts import Fonts
from ovmeet.web.frontend import FrontEnd, no_front_end
from ovmeet.web.headers import ResponseHeadersMiddleware
from ovmeet.web.observe import ObserveMiddleware
from ovmeet.web.operations import PreparedValidationMiddleware, prepare_operations
from ovmeet.web.origins import CrossSiteMiddleware
from ovmeet.web.paths import FONTS, HEALTH, METRICS, READY, SPECS, WEBCOMPONENT
from ovmeet.web.slashes import TrailingSlashMiddleware
from ovmeet.web.validation import FIELD_VALIDATORS, VALIDATORS
from ovmeet.web.webcomponent import WebComponent

# Connexion's stack with our access check in the place of its security middleware, its
# Swagger UI middleware looking only at the docs' paths, and (unless MEET_PREPARED_OPERATIONS
# is false) its request validation prepared once per operation.
_OURS: dict[type, type] = {
    SecurityMiddleware: AccessMiddleware,
    SwaggerUIMiddleware: DocsMiddleware,
}
_PREPARED: dict[type, type] = {RequestValidationMiddleware: PreparedValidationMiddleware}


def middlewares(prepared: bool) -> list[type]:
    """A new list each time: Connexion's add_middleware inserts into the list it is given."""
    ours = _OURS | _PREPARED if prepared else _OURS
    return [ours.get(m, m) for m in ConnexionMiddleware.default_middlewares]


def load_spec(name: str) -> dict[str, Any]:
    """One OpenAPI document of the `ovmeet.spec` package (installed with ovmeet): a copy of
    its parse, since Connexion changes the document it is given."""
    return copy.deepcopy(_parsed_spec(name))


@functools.cache
def _parsed_spec(name: str) -> dict[str, Any]:
    """Parsed once per process, by libyaml when PyYAML has it (parsing the specs was most of
    the time an app took to build)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = files("ovmeet.spec").joinpath(name).read_text()
    document: dict[str, Any] = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    return document


def request_validator(operation_id: str, spec: str = "openvidu-meet-api.yaml") -> Any:
    """The validator of the JSON body of `operation_id`, as the server applies it (for the CLI)."""
    document = resolve_refs(load_spec(spec))
    for path in document["paths"].values():
        for operation in path.values():
            if operation.get("operationId") == operation_id:
                schema = operation["requestBody"]["content"]["application/json"]["schema"]
                return Draft4RequestValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    raise LookupError(f"{spec} has no operation {operation_id}")


def handler_for(name: str) -> Callable[..., Any]:
    """`ovmeet.handlers.recordings.getRecordingStream` -> that module's get_recording_stream.

    The module comes from each operation's `x-openapi-router-controller` in the spec.
    """
    module, _, operation_id = name.rpartition(".")
    return getattr(importlib.import_module(module), inflection.underscore(operation_id))  # type: ignore[no-any-return]


def api_options(spec: str) -> dict[str, Any]:
    """Per-spec options: the public API reports invalid input as 422 with field details."""
    validators = FIELD_VALIDATORS if spec == "openvidu-meet-api.yaml" else VALIDATORS
    return {"validator_map": validators}


def allowed_methods() -> errors.AllowedMethods:
    """Every served path and its methods."""
    paths: dict[str, set[str]] = {}
    for spec, base_paths in SPECS.items():
        for path, operations in _parsed_spec(spec)["paths"].items():  # read only: no copy
            for base_path in base_paths:
                paths[base_path + path] = {method.upper() for method in operations}
    return errors.AllowedMethods(paths)


def create_app(config: Config | None = None) -> AsyncApp:
    """The ASGI app for `config` (default: read from the environment)."""
    config = config or Config.from_env(os.environ)
    reaches.check_installed()
    logs.quiet_libraries()
    services = Services.build(config)

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[dict[str, Any]]:
        await services.start()
        settle_garbage_collector()
        try:
            yield {"services": services}
        finally:
            await services.aclose()
            worker_stopped()

    app = AsyncApp(
        __name__,
        lifespan=lifespan,
        middlewares=middlewares(config.prepared_operations),
        strict_validation=True,
        validate_responses=config.validate_responses,
        pythonic_params=True,
        resolver=Resolver(function_resolver=handler_for),
        swagger_ui_options=SwaggerUIOptions(swagger_ui=config.docs_enabled, swagger_ui_path="/ui"),
    )
    if config.prepared_operations:
        prepare_operations(app)  # before the APIs are added
    app.add_middleware(
        ObserveMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        access_log=config.access_log,
    )
    app.add_middleware(
        ResponseHeadersMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        embed_origins=config.embed_origins,
    )
    app.add_middleware(RequestBodyMiddleware, position=MiddlewarePosition.BEFORE_ROUTING)
    app.add_middleware(
        CrossSiteMiddleware, position=MiddlewarePosition.BEFORE_ROUTING, base_url=config.base_url
    )
    app.add_middleware(
        TrailingSlashMiddleware,
        position=MiddlewarePosition.BEFORE_ROUTING,
        base_paths=tuple(base for bases in SPECS.values() for base in bases),
    )
    for spec, base_paths in SPECS.items():
        for base_path in base_paths:
            app.add_api(load_spec(spec), base_path=base_path, **api_options(spec))
    app.add_url_rule(HEALTH, "health", health, methods=["GET"])
    app.add_url_rule(READY, "ready", ready, methods=["GET"])
    app.add_url_rule(METRICS, "metrics", metrics, methods=["GET"])
    script = WebComponent(config.webcomponent_file).script
    app.add_url_rule(WEBCOMPONENT, "webcomponent", script, methods=["GET"])
    if config.frontend_fonts_dir:
        fonts = Fonts(config.frontend_fonts_dir).file
        app.add_url_rule(f"{FONTS}/{{path:path}}", "fonts", fonts, methods=["GET"])
    if config.frontend_dir:  # last: every API route is matched before the front end's fallback
        front_end = FrontEnd(config.frontend_dir, local_fonts=bool(config.frontend_fonts_dir))
        app.add_url_rule("/{path:path}", "frontend", front_end.page, methods=["GET"])
    else:
        app.add_url_rule("/", "frontend", no_front_end, methods=["GET"])
    app.add_error_handler(ApiError, errors.on_api_error)
    app.add_error_handler(ProblemException, errors.on_problem)
    app.add_error_handler(HTTPException, errors.http_exception_handler(allowed_methods()))
    app.add_error_handler(Exception, errors.on_unexpected)
    return app


def create_served_app(config: Config | None = None) -> AsyncApp:
    """The app of one `ovmeet serve` worker (default: configured from the environment, as
    each worker of --workers is): its logging and malloc set up first, then `create_app`."""
    config = config or Config.from_env(os.environ)
    logs.configure(config.log_format)
    tune_malloc()
    return create_app(config)


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "UP"})


async def ready(request: Request) -> Response:
    """200 when the storage and LiveKit answer; 503 naming what does not."""
    report = await readiness(request.state.services)
    down = [f"{part}: {state}" for part, state in report.items() if state != "UP"]
    if down:
        return JSONResponse({"message": "Not ready: " + "; ".join(down), **report}, 503)
    return JSONResponse({"status": "UP", **report})


async def metrics(_request: Request) -> Response:
    body, content_type = exposition()
    return Response(body, headers={"Content-Type": content_type})
