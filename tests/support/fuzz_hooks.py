"""Schemathesis hooks (SCHEMATHESIS_HOOKS): each request comes from a client of its own.

The servers throttle wrong API keys and logins per client; schemathesis sends wrong ones on
purpose, and from one address it would lock itself out of every later request (429).
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

_clients = itertools.count(1)


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    n = next(_clients)
    case.headers = {
        **(case.headers or {}),
        "X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}",
    }
