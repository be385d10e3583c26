"""LiveKit's signed webhooks: the check of their signature, and the memory of the events
handled lately, so that one delivered again is applied once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from google.protobuf.json_format import ParseError
from livekit.api import TokenVerifier, WebhookReceiver
from livekit.protocol.webhook import WebhookEvent
from redis.asyncio import Redis

from ovmeet.shared import redis_state
from ovmeet.support.cache import LruCache
from ovmeet.support.config import Config
from ovmeet.support.errors import BadRequest, Unauthorized

# LiveKit signs each webhook with a short-lived token; a replay while it is still valid is
# recognised by its event id (remembered for longer than such a token lives). Clock skew
# allowed between LiveKit and ovmeet on the token's expiry:
SIGNATURE_LEEWAY = timedelta(seconds=5)
REMEMBER_EVENTS_SECONDS = 600.0
MAX_REMEMBERED_EVENTS = 10_000


class HandledEvents:
    """The ids of the events handled lately, so that an event delivered again is applied once:
    this process's memory (bounded), and with Redis every instance's. While Redis does not
    answer, each process remembers alone (statuses that only move forward keep a second
    delivery from changing anything)."""

    def __init__(
        self, config: Config, redis: Redis | None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._ids: LruCache[str, bool] = LruCache(MAX_REMEMBERED_EVENTS, now)
        self._config, self._redis = config, redis
        self._outage = redis_state.Outage(config, "handled webhook events", "are kept per process")

    async def claim(self, event_id: str) -> bool:
        """Whether this delivery is the one to apply the event (False: already handled). With
        Redis, Redis alone decides: a claim another instance released is free again here."""
        if self._redis is None:
            return await self._claim_here(event_id)
        claim = self._redis.set(self._key(event_id), "1", nx=True, ex=int(REMEMBER_EVENTS_SECONDS))
        return bool(await self._outage.answer(claim, lambda: self._claim_here(event_id)))

    async def _claim_here(self, event_id: str) -> bool:
        """This process's claim (without Redis, or while it does not answer)."""
        if self._ids.get(event_id, REMEMBER_EVENTS_SECONDS) is not None:
            return False
        self._ids.put(event_id, True)
        return True

    async def release(self, event_id: str) -> None:
        """Forget a claim whose event failed: LiveKit delivers it again."""
        self._ids.forget(event_id)
        if self._redis is not None:
            await self._outage.attempt(self._redis.delete(self._key(event_id)))

    def _key(self, event_id: str) -> str:
        return redis_state.key(self._config, "webhook events", event_id)


def verify_event(config: Config, body: bytes, authorization: str | None) -> WebhookEvent:
    """The event, if LiveKit signed this exact body; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("The webhook has no Authorization header")
    verifier = TokenVerifier(
        config.livekit_api_key, config.livekit_api_secret, leeway=SIGNATURE_LEEWAY
    )
    receiver = WebhookReceiver(verifier)
    try:
        return receiver.receive(body.decode("utf-8"), authorization)
    except (ParseError, UnicodeDecodeError) as error:
        raise BadRequest(f"The webhook body is not a LiveKit event: {error}") from None
    except Exception:  # the verifier raises bare Exceptions (bad JWT, hash mismatch)
        raise Unauthorized("The webhook signature is not valid") from None
