"""Logging for every process: one format (text, or JSON lines with MEET_LOG_FORMAT=json), the
request id on every line logged while a request is served, no library chatter per request, and
no control character of a logged value written as is (JSON escapes them, text lines too)."""

from __future__ import annotations

import json
import logging
import sys
import warnings
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt

REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers that would otherwise speak on every request (Connexion: "Skipping validation ..."
# for each stream) or repeat what ovmeet says better.
_QUIET = {
    "connexion": logging.WARNING,
    # "this operation accepts multiple content types" on every LiveKit webhook
    "connexion.operations.openapi3": logging.ERROR,
    "uvicorn.access": logging.WARNING,
    # A warning for each retry of a storage call: the storage's own error says how it ended.
    "urllib3.connectionpool": logging.ERROR,
}
# What `extra=` fields a log call may carry into a JSON line.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


# Control characters of a logged value, written as escapes: a value (a path, a header, a name)
# can then neither start a forged line nor send the terminal escape sequences.
_ESCAPES = {
    code: (
        "\\n" if code == 10 else "\\r" if code == 13 else "\\t" if code == 9 else f"\\x{code:02x}"
    )
    for code in (*range(0x20), *range(0x7F, 0xA0))
}


def escaped(text: str) -> str:
    """`text` with every control character as a visible escape (`\\n`, `\\x1b`)."""
    return text.translate(_ESCAPES)


def without_userinfo(url: str) -> str:
    """`url` without the `user:password@` of its authority, for a log line."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, then the request id when the line was logged while serving one."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escaped(record.message)  # the traceback after it keeps its lines
        return super().formatMessage(record)

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
    quiet_libraries()


def quiet_libraries() -> None:
    """Keep the libraries' chatter (retries, per-request notes) out of ovmeet's log. A short
    LiveKit secret is said once, at start (`Config.credential_warnings`), not by PyJWT at
    every process's first signature."""
    for name, level in _QUIET.items():
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)
