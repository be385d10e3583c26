"""Webhooks to the application: recordingStarted, recordingUpdated, recordingEnded, roomFinished.

Each is `{creationDate, event, data}` POSTed to the `webhooks` preferences' URL, signed as the
release signs them (`X-Timestamp`, and `X-Signature` = hex HMAC-SHA256 keyed with MEET_API_KEY
over `{timestamp}.{body}`). Sending never blocks a request: events wait in this process's
queue, each delivery is retried with back-off, and one that fails every attempt is logged.
Redirects are not followed: the URL is trusted configuration, where it points is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from ovmeet.preferences.store import GlobalPreferences
from ovmeet.support.config import Config
from ovmeet.support.logs import without_userinfo

logger = logging.getLogger("ovmeet.notifier")

ATTEMPTS = 6
FIRST_RETRY_SECONDS = 0.5  # then 1, 2, 4, 8: about 15 s in all
REQUEST_TIMEOUT_SECONDS = 10
CONCURRENT_DELIVERIES = 16


@dataclass(frozen=True)
class Delivery:
    url: str
    event: str
    timestamp: int
    body: bytes


def signature(api_key: str, timestamp: int, body: bytes) -> str:
    """What X-Signature carries for `body` sent at `timestamp` (ms)."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(api_key.encode(), message, hashlib.sha256).hexdigest()


class Notifier:
    """This process's outgoing webhooks; `start()` inside the event loop, `aclose()` at the end."""

    def __init__(
        self,
        config: Config,
        preferences: GlobalPreferences,
        first_retry: float = FIRST_RETRY_SECONDS,
    ) -> None:
        self._config = config
        self._preferences = preferences
        self._first_retry = first_retry
        self._session: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(CONCURRENT_DELIVERIES)
        self._deliveries: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(timeout=timeout)

    async def aclose(self, grace: float = 5.0) -> None:
        """Let deliveries in progress finish for up to `grace` seconds, then stop."""
        if self._deliveries:
            await asyncio.wait(set(self._deliveries), timeout=grace)
        if self._deliveries:
            logger.warning("%d webhook deliveries cut short by shutdown", len(self._deliveries))
            for task in self._deliveries:
                task.cancel()
        if self._session is not None:
            await self._session.close()

    async def notify(self, event: str, data: dict[str, Any]) -> None:
        """Queue `event` for the application, if the webhook preferences say so."""
        hooks = (await self._preferences.current()).section("webhooks")
        if not hooks["enabled"] or self._session is None:
            return
        if not self._config.api_key:
            logger.warning("webhook %s not sent: webhooks need MEET_API_KEY to sign them", event)
            return
        timestamp = time.time_ns() // 1_000_000
        payload = {"creationDate": timestamp, "event": event, "data": data}
        body = json.dumps(payload, separators=(",", ":")).encode()
        task = asyncio.create_task(self._deliver(Delivery(hooks["url"], event, timestamp, body)))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, delivery: Delivery) -> None:
        assert self._session is not None and self._config.api_key
        headers = {
            "Content-Type": "application/json",
            "X-Timestamp": str(delivery.timestamp),
            "X-Signature": signature(self._config.api_key, delivery.timestamp, delivery.body),
        }
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(self._first_retry * 2 ** (attempt - 1))
            try:
                async with (
                    self._slots,
                    self._session.post(  # a redirect would carry the signed body elsewhere
                        delivery.url, data=delivery.body, headers=headers, allow_redirects=False
                    ) as response,
                ):
                    if 200 <= response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
                    if 300 <= response.status < 400:
                        problem += " (a redirect: not followed, not retried)"
                        break
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                problem = str(error).replace(delivery.url, "") or type(error).__name__
        logger.error(
            "webhook %s to %s given up after %d attempt(s): %s",
            delivery.event,
            without_userinfo(delivery.url),
            attempt + 1,
            problem,
        )
