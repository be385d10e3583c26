"""Each request, observed: its id (X-Request-Id, honoured or made), one access-log line, and
its count and duration in the metrics. Query values that may be secrets are never logged."""

from __future__ import annotations

import logging
import re
import secrets
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ovmeet.support.logs import REQUEST_ID
from ovmeet.support.metrics import REQUEST_SECONDS, REQUESTS
from ovmeet.web.context import routed_operation
from ovmeet.web.paths import HEALTH, METRICS, READY

logger = logging.getLogger("ovmeet.access")
REQUEST_ID_HEADER = b"x-request-id"
# An id from the client is kept if it is a plain token of sane length (it ends up in logs).
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# Label values must be few: a client's invented methods all count as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_UNROUTED = {HEALTH: "health", READY: "ready", METRICS: "metrics"}
_SECRET_PARAMETERS = {"secret", "token", "access_token", "apikey", "api_key", "key", "password"}


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        reset = REQUEST_ID.set(request_id)
        # Connexion's router copies the scope; a dict of ours is shared by the copies, so the
        # operation it routes to is readable here afterwards.
        scope.setdefault("extensions", {})
        started = time.perf_counter()
        status = 500  # unless the app starts a response
        complete = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, complete
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            operation = _operation(scope)
            method = scope["method"] if scope["method"] in _METHODS else "other"
            REQUESTS.labels(operation, method, str(status)).inc()
            REQUEST_SECONDS.labels(operation).observe(seconds)
            if self.access_log:
                _log(scope, operation, status, seconds, complete)
            REQUEST_ID.reset(reset)


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            given: str = value.decode("latin-1")
            if _SANE_ID.fullmatch(given):
                return given
            break
    return secrets.token_hex(8)


def _operation(scope: Scope) -> str:
    """The routed operationId; a fixed word for what no operation answered (bounded labels)."""
    return routed_operation(scope) or _UNROUTED.get(str(scope["path"]), "other")


def _log(scope: Scope, operation: str, status: int, seconds: float, complete: bool) -> None:
    """One line; a response cut short (the client left, or the shutdown's grace ran out) says
    `incomplete`."""
    client = scope.get("client")
    target = scope["path"] + _safe_query(scope.get("query_string", b""))
    logger.info(
        '%s "%s %s" %d %.1fms %s%s',
        client[0] if client else "-",
        scope["method"],
        target,
        status,
        seconds * 1000,
        operation,
        "" if complete else " incomplete",
        extra={
            "complete": complete,
            "client": client[0] if client else None,
            "method": scope["method"],
            "path": target,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "operation": operation,
        },
    )


def _safe_query(raw: bytes) -> str:
    """`?a=1&secret=...` with every value that may be a credential replaced by ***."""
    if not raw:
        return ""
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    masked = [(k, "***" if k.lower() in _SECRET_PARAMETERS else v) for k, v in pairs]
    return "?" + urlencode(masked, safe="*")
