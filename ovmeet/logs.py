"""Logging for every process: one format (text, or JSON lines with MEET_LOG_FORMAT=json), the
request id on every line logged while a request is served, no library chatter per request."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that would otherwise speak on every request (Connexion: "Skipping validation ..."
# for each stream) or repeat what ovmeet says better.
_QUIET = {
    "connexion": logging.WARNING,
    # "this operation accepts multiple content types" on every LiveKit webhook
    "connexion.operations.openapi3": logging.ERROR,
    "uvicorn.access": logging.WARNING,
}
# What `extra=` fields a log call may carry into a JSON line.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, then the request id when the line was logged while serving one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{text} [request {request_id}]" if request_id else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", None):
            line["request_id"] = record.request_id  # type: ignore[attr-defined]
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key != "request_id":
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(log_format: str) -> None:
    """Send every log line to stderr in `log_format` ("text" or "json"); idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn's own handlers would print twice
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
