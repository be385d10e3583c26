"""Redis, when configured (MEET_REDIS_*): the one client, the keys instances share in it, and
the relay that tells every instance what changed.

Every key is `ovmeet:{deployment}:{job}[:{id}]`: the deployment is a digest of where its storage
is, so that deployments sharing one Redis database never mix their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ovmeet.shared import change_markers
from ovmeet.support.config import Config
from ovmeet.support.errors import DependencyError
from ovmeet.support.ids import random_id

TIMEOUT_SECONDS = 2.0  # a Redis that does not answer within this is treated as down
FAILURES = (RedisError, OSError, TimeoutError)  # what a Redis call raises when Redis is away
# A pooled connection Redis closed (a restart) fails once: one immediate retry on a new one.
RETRIES = 1
HEARTBEAT_SECONDS = 1.0  # a relay that hears nothing pings; no answer in 3 of these: reconnect

T = TypeVar("T")
logger = logging.getLogger("ovmeet.shared_state")


class RedisUnavailable(DependencyError):
    """Redis did not answer; `detail` says where and why (never a password)."""

    default_name = "Redis Error"

    def __init__(self, config: Config, error: BaseException) -> None:
        why = str(error) or type(error).__name__
        super().__init__("Redis is not available", f"{config.redis_where} is not available: {why}")


def connect(config: Config, retries: int = RETRIES) -> Redis:
    """A client of the configured Redis (its connections open on first use)."""
    options: dict[str, Any] = {
        "username": config.redis_username,
        "password": config.redis_password,
        "db": config.redis_db,
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
        "retry": Retry(NoBackoff(), retries),
    }
    if config.redis_sentinels:
        sentinel_options: dict[str, object] = {"socket_timeout": TIMEOUT_SECONDS}
        if config.redis_sentinel_password:
            sentinel_options["password"] = config.redis_sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(config.redis_sentinels), sentinel_kwargs=sentinel_options
        )
        master: Redis = sentinel.master_for(config.redis_sentinel_master, **options)
        return master
    return Redis(host=config.redis_host or "", port=config.redis_port, **options)


async def check(config: Config, redis: Redis) -> None:
    """Prove Redis answers (PING); RedisUnavailable if it does not."""
    async with answered(config):
        await redis.ping()


@contextlib.asynccontextmanager
async def answered(config: Config) -> AsyncIterator[None]:
    """Redis's answer within TIMEOUT_SECONDS, or RedisUnavailable (a 503 naming Redis)."""
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            yield
    except FAILURES as error:
        raise RedisUnavailable(config, error) from None


def deployment(config: Config) -> str:
    """What the instances of one deployment share: where their storage is."""
    where = (
        f"s3|{config.s3_endpoint}|{config.s3_bucket}|{config.s3_subbucket}"
        if config.storage == "s3"
        else f"local|{config.data_dir}"
    )
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def key(config: Config, job: str, identifier: str | None = None) -> str:
    """The Redis key of `job` (of `identifier` for it: identifiers are hashed, as they may be
    names or addresses)."""
    if identifier is None:
        return f"ovmeet:{deployment(config)}:{job}"
    digest = hashlib.sha256(identifier.encode()).hexdigest()[:32]
    return f"ovmeet:{deployment(config)}:{job}:{digest}"


class Outage:
    """Says once that Redis went away and what `job` does meanwhile, and once that it is back."""

    def __init__(self, config: Config, job: str, meanwhile: str) -> None:
        self._config, self._job, self._meanwhile = config, job, meanwhile
        self._down = False

    def went_down(self, error: BaseException) -> None:
        if not self._down:
            self._down = True
            detail = RedisUnavailable(self._config, error).detail
            logger.warning("%s: %s %s until it is back", detail, self._job, self._meanwhile)

    def came_back(self) -> None:
        if self._down:
            self._down = False
            logger.info("%s is back: %s are shared again", self._config.redis_where, self._job)

    async def answer(self, call: Awaitable[T], otherwise: Callable[[], Awaitable[T]]) -> T:
        """Redis's answer to `call` within TIMEOUT_SECONDS; else what `otherwise` gives (the
        job's way without Redis), the outage said once."""
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                answer = await call
        except FAILURES as error:
            self.went_down(error)
            return await otherwise()
        self.came_back()
        return answer

    async def attempt(self, call: Awaitable[object]) -> None:
        """`call` within TIMEOUT_SECONDS, if Redis answers (the outage said once)."""
        await self.answer(call, _nothing)


async def _nothing() -> None:
    return None


class ChangeRelay:
    """Tells every instance of the deployment what changed (Redis publish/subscribe), and
    touches this host's change markers for what the others changed (`ovmeet.shared.change_markers`).

    While it does not listen (Redis away, or a subscription lost), changes made elsewhere go
    untold: caches fall back to their own bound, and when it listens again every marker is
    touched, as anything may have changed meanwhile.
    """

    def __init__(self, config: Config, redis: Redis, storage_name: str) -> None:
        self._config, self._redis, self._storage_name = config, redis, storage_name
        self._channel = key(config, "changes")
        self._me = random_id()  # what this process tells, it does not hear back
        self._listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._outage = Outage(config, "changes", "reach other hosts within their caches' bound")

    @property
    def listening(self) -> bool:
        return self._listening.is_set()

    async def start(self) -> None:
        """Listen from now on; wait (a bounded time) until the subscription holds."""
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await self._listening.wait()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def tell(self, topic: str) -> None:
        message = json.dumps({"from": self._me, "topic": topic})
        await self._outage.attempt(self._redis.publish(self._channel, message))

    async def _listen(self) -> None:
        while True:
            try:
                await self._subscribed()
            except FAILURES as error:
                self._listening.clear()
                self._outage.went_down(error)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def _subscribed(self) -> None:
        """Hear changes until the subscription fails (raises)."""
        subscriber = connect(self._config, retries=0)  # a failure must reach this loop
        try:
            async with subscriber.pubsub() as pubsub:
                await pubsub.subscribe(self._channel)
                heard = time.monotonic()
                while True:
                    message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
                    if message is not None:
                        heard = time.monotonic()
                        self._hear(message)
                    elif time.monotonic() - heard > 3 * HEARTBEAT_SECONDS:
                        raise TimeoutError("the subscription went silent")
                    else:
                        await pubsub.ping()
        finally:
            self._listening.clear()
            await subscriber.aclose()

    def _hear(self, message: dict[str, object]) -> None:
        if message["type"] == "subscribe":  # (again): what was told meanwhile is unknown
            for topic in change_markers.TOPICS:
                change_markers.ChangeMarker(self._storage_name, topic).touch_here()
            self._listening.set()
            self._outage.came_back()
            return
        if message["type"] != "message":  # a pong
            return
        try:
            told = json.loads(message["data"])  # type: ignore[arg-type]
            topic = told["topic"]
            if told["from"] == self._me:
                return
            marker = change_markers.ChangeMarker(self._storage_name, topic)
        except (ValueError, KeyError, TypeError):
            logger.warning("%s: a message that is not a change was ignored", self._channel)
            return
        marker.touch_here()


@contextlib.asynccontextmanager
async def changes_told(config: Config, storage_name: str) -> AsyncIterator[None]:
    """Within it, what this process changes in the storage is told to every instance (for the
    command line, which changes rooms and preferences but does not listen)."""
    if not config.redis:
        yield
        return
    redis = connect(config)
    relay = ChangeRelay(config, redis, storage_name)
    change_markers.relay_changes(storage_name, relay)
    try:
        yield
    finally:
        change_markers.stop_relaying(storage_name, relay)
        await redis.aclose()
