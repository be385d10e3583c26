"""Redis, when configured (MEET_REDIS_*): the one client, and the keys instances share in it.

Every key is `ovmeet:{deployment}:{job}:{id}`: the deployment is a digest of where its storage
is, so that deployments sharing one Redis database never mix their state.
"""

from __future__ import annotations

import hashlib
import logging

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.exceptions import RedisError

from ovmeet.config import Config
from ovmeet.errors import DependencyError

TIMEOUT_SECONDS = 2.0  # a Redis that does not answer within this is treated as down
FAILURES = (RedisError, OSError)  # what a Redis call raises when Redis does not answer

logger = logging.getLogger("ovmeet.shared_state")


class RedisUnavailable(DependencyError):
    """Redis did not answer; `detail` says where and why (never a password)."""

    default_name = "Redis Error"

    def __init__(self, config: Config, error: BaseException) -> None:
        why = str(error) or type(error).__name__
        super().__init__("Redis is not available", f"{config.redis_where} is not available: {why}")


def connect(config: Config) -> Redis:
    """A client of the configured Redis (its connections open on first use)."""
    if config.redis_sentinels:
        sentinel_options: dict[str, object] = {"socket_timeout": TIMEOUT_SECONDS}
        if config.redis_sentinel_password:
            sentinel_options["password"] = config.redis_sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(config.redis_sentinels), sentinel_kwargs=sentinel_options
        )
        master: Redis = sentinel.master_for(
            config.redis_sentinel_master,
            username=config.redis_username,
            password=config.redis_password,
            db=config.redis_db,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
        )
        return master
    return Redis(
        host=config.redis_host or "",
        port=config.redis_port,
        username=config.redis_username,
        password=config.redis_password,
        db=config.redis_db,
        socket_timeout=TIMEOUT_SECONDS,
        socket_connect_timeout=TIMEOUT_SECONDS,
    )


async def check(config: Config, redis: Redis) -> None:
    """Prove Redis answers (PING); RedisUnavailable if it does not."""
    try:
        await redis.ping()
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


def key(config: Config, job: str, identifier: str) -> str:
    """The Redis key of `identifier` for `job`; identifiers are hashed (names, addresses)."""
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
