"""Every error leaves as application/json {name, message}, whoever raised it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from connexion.exceptions import ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from starlette.exceptions import HTTPException

from ovmeet.support.errors import ApiError
from ovmeet.web.paths import INTERNAL_API

logger = logging.getLogger("ovmeet.errors")

# uvicorn decodes %2F to "/" before routing, so `recordings/a%2Fb--c--d/stream` matches no
# route; it is still a request for a recording that does not exist.
_RECORDING_STREAM = re.compile(rf"^{re.escape(INTERNAL_API)}/recordings/.+/stream$")


def json_error(
    status: int, message: str, name: str, headers: dict[str, str] | None = None
) -> ConnexionResponse:
    return json_response(status, ApiError(message, name=name).body(), headers)


def sentence(text: str) -> str:
    """`text` as an error message: a capital first letter, no final full stop."""
    text = text.strip().rstrip(".")
    return text[:1].upper() + text[1:]


def json_response(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> ConnexionResponse:
    return ConnexionResponse(
        status_code=status,
        mimetype="application/json",
        body=json.dumps(body),
        headers=headers or {},
    )


def on_api_error(request: ConnexionRequest, error: ApiError) -> ConnexionResponse:
    if error.status >= 500:  # str() of a DependencyError: where and why, for the log only
        logger.error("%s %s failed: %s", request.method, request.url.path, error)
    return json_response(error.status, error.body(), error.headers)


def on_problem(request: ConnexionRequest, problem: ProblemException) -> ConnexionResponse:
    """Connexion's own problems: validation (400/415), security (401/403), responses (500)."""
    if problem.status >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, problem.detail)
    if problem.status >= 500:
        name, message = "Server Error", problem.title or "Internal server error"
    else:
        name = "Authentication Error" if problem.status in (401, 403) else "Request Error"
        message = sentence(problem.detail or problem.title or "Invalid request")
    return json_error(problem.status, message, name, headers=dict(problem.headers or {}))


class AllowedMethods:
    """The methods each API path accepts, from the specs (Starlette's 405 names only those of
    the first route it tried, and Connexion routes each method of a path separately)."""

    def __init__(self, paths: dict[str, set[str]]) -> None:
        self._paths = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), methods)
            for path, methods in paths.items()
        ]

    def of(self, path: str) -> set[str]:
        for pattern, methods in self._paths:
            if pattern.match(path):
                return methods | ({"HEAD"} if "GET" in methods else set())
        return set()


def http_exception_handler(
    allowed: AllowedMethods,
) -> Callable[[ConnexionRequest, HTTPException], ConnexionResponse]:
    def on_http_exception(request: ConnexionRequest, error: HTTPException) -> ConnexionResponse:
        """Starlette's routing errors: unknown path (404), wrong method (405, with Allow)."""
        path = request.url.path
        headers = dict(error.headers or {})
        name = "Request Error"
        if error.status_code == 404 and _RECORDING_STREAM.match(path):
            name, message = "Recording Error", "Recording not found"
        elif error.status_code == 404:
            message = f"{request.method} {path} is not part of this API"
        elif error.status_code == 405:
            message = f"{request.method} is not allowed on {path}"
            if methods := allowed.of(path):
                headers["Allow"] = ", ".join(sorted(methods))
        else:
            message = sentence(str(error.detail))
        return json_error(error.status_code, message, name, headers=headers)

    return on_http_exception


def on_unexpected(request: ConnexionRequest, error: Exception) -> ConnexionResponse:
    logger.exception("%s %s failed", request.method, request.url.path, exc_info=error)
    return json_error(500, "Internal server error", "Server Error")
