"""The services one ovmeet process shares between requests, opened and closed with the app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from ovmeet.auth.login import ApiKeyThrottle, LoginThrottle, failure_counts
from ovmeet.auth.participants import Participants
from ovmeet.auth.quotas import RoomCreationQuota, buckets
from ovmeet.auth.revocations import Revocations
from ovmeet.auth.tokens import ParticipantTokens, SessionTokens
from ovmeet.events import LiveKitEvents
from ovmeet.housekeeping import Housekeeping
from ovmeet.livekit.gateway import LiveKitGateway
from ovmeet.livekit.webhooks import HandledEvents
from ovmeet.preferences.notifier import Notifier
from ovmeet.preferences.store import GlobalPreferences
from ovmeet.recordings.locks import RecordingLocks, recording_locks
from ovmeet.recordings.playback import PlayableMedia
from ovmeet.recordings.recorder import Recorder
from ovmeet.recordings.signals import RoomSignals
from ovmeet.recordings.store import index_stored_recordings
from ovmeet.rooms.index import RoomIndex
from ovmeet.rooms.store import Room, RoomCache, index_stored_rooms
from ovmeet.shared import change_markers, redis_state
from ovmeet.storage import ObjectNotFound, Storage, open_storage
from ovmeet.storage.keys import PREFERENCES_KEY
from ovmeet.support.config import Config
from ovmeet.support.errors import DependencyError

logger = logging.getLogger("ovmeet.services")
READY_STORAGE_SECONDS = 5.0


@dataclass(frozen=True)
class Services:
    config: Config
    storage: Storage
    livekit: LiveKitGateway
    rooms: RoomCache
    room_index: RoomIndex[Room]
    room_creation_quota: RoomCreationQuota
    media: PlayableMedia
    preferences: GlobalPreferences
    sessions: SessionTokens
    participant_tokens: ParticipantTokens
    login_throttle: LoginThrottle
    api_key_throttle: ApiKeyThrottle
    recording_locks: RecordingLocks
    revocations: Revocations
    notifier: Notifier
    signals: RoomSignals
    participants: Participants
    recorder: Recorder
    events: LiveKitEvents
    housekeeping: Housekeeping
    redis: Redis | None  # when configured: what instances share
    relay: redis_state.ChangeRelay | None  # with Redis: changes told to every instance
    background: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, config: Config) -> Services:
        """Everything wired from `config`; nothing is contacted until `start()`."""
        storage = open_storage(config)
        preferences = GlobalPreferences(storage, config)
        livekit = LiveKitGateway(config)
        rooms = RoomCache(storage)
        redis = redis_state.connect(config) if config.redis else None
        participant_tokens = ParticipantTokens(config)
        notifier = Notifier(config, preferences)
        signals = RoomSignals(livekit)
        locks = recording_locks(config, storage, redis)
        revocations = revocations_of(storage, config)
        recorder = Recorder(config, storage, livekit, locks, notifier, signals)
        return cls(
            config=config,
            storage=storage,
            livekit=livekit,
            rooms=rooms,
            room_index=RoomIndex(storage, rooms.get),
            room_creation_quota=RoomCreationQuota(buckets(config, redis, "rooms created")),
            media=PlayableMedia(storage),
            preferences=preferences,
            sessions=SessionTokens.for_config(config),
            participant_tokens=participant_tokens,
            login_throttle=LoginThrottle(
                failure_counts(config, redis, "login clients"),
                failure_counts(config, redis, "login accounts"),
            ),
            api_key_throttle=ApiKeyThrottle(failure_counts(config, redis, "API keys")),
            recording_locks=locks,
            revocations=revocations,
            notifier=notifier,
            signals=signals,
            participants=Participants(
                rooms,
                livekit,
                participant_tokens,
                preferences,
                config.participant_refresh_window,
            ),
            recorder=recorder,
            events=LiveKitEvents(
                storage, recorder, notifier, signals, HandledEvents(config, redis), config.base_url
            ),
            housekeeping=Housekeeping(storage, livekit, recorder, revocations, config.gc_interval),
            redis=redis,
            relay=redis_state.ChangeRelay(config, redis, storage.name) if redis else None,
        )

    async def start(self) -> None:
        """Open the HTTP sessions (aiohttp binds them to the running loop); with Redis, hear the
        changes other instances make; start the periodic clean-up of recordings and rooms."""
        self.livekit.start()
        self.notifier.start()
        if self.relay is not None:
            change_markers.relay_changes(self.storage.name, self.relay)
            await self.relay.start()
        self.background.append(asyncio.create_task(self.housekeeping.run()))

    async def aclose(self) -> None:
        for task in self.background:
            task.cancel()
        if self.relay is not None:
            change_markers.stop_relaying(self.storage.name, self.relay)
            await self.relay.aclose()
        await self.notifier.aclose()
        await self.signals.aclose()
        await self.livekit.aclose()
        await self.storage.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def revocations_of(storage: Storage, config: Config) -> Revocations:
    users = tuple(user.username for user in config.users)
    return Revocations(storage, users, max(config.access_token_ttl, config.refresh_token_ttl))


async def prepare_storage(config: Config) -> None:
    """Check the storage (create the bucket if missing) and store first-start preferences.

    `ovmeet serve` does this once, before any worker starts.
    """
    storage = open_storage(config)
    try:
        await storage.check()
        if not await storage.supports_exclusive_create():
            logger.warning(
                "%s ignores conditional writes (If-None-Match): one recording per room then "
                "rests on LiveKit's list of active egresses only, and two starts at the same "
                "moment could both succeed",
                storage.name,
            )
        await GlobalPreferences(storage, config).ensure_stored()
        rooms = await index_stored_rooms(storage)
        if rooms:
            logger.info("indexed %d rooms stored before the room index", rooms)
        indexed = await index_stored_recordings(storage)
        if indexed:
            logger.info("indexed %d recordings stored before the listing index", indexed)
        adopted = await revocations_of(storage, config).adopt_unattributed()
        if adopted:
            logger.info(
                "%d revoked sessions were stored without their user: every session issued "
                "until now has ended (log in again)",
                adopted,
            )
    finally:
        await storage.aclose()


async def check_redis(config: Config) -> None:
    """Fail at start, naming where, if a configured Redis does not answer."""
    if not config.redis:
        return
    redis = redis_state.connect(config)
    try:
        await redis_state.check(config, redis)
    finally:
        await redis.aclose()


async def check_livekit(config: Config) -> None:
    """Warn at start if LiveKit does not answer a signed call, saying why (bad credentials are
    the usual reason); ovmeet still starts, and `/meet/ready` says not ready until it does."""
    livekit = LiveKitGateway(config)
    livekit.start()
    try:
        await livekit.check()
    except DependencyError as error:
        logger.warning("%s; tokens cannot be issued until it does", error.detail)
    finally:
        await livekit.aclose()


async def readiness(services: Services) -> dict[str, str]:
    """For the storage, LiveKit and Redis (when configured): UP, or what failed (checked at
    once, each bounded)."""

    async def storage() -> None:
        with contextlib.suppress(ObjectNotFound):  # an answer: the storage is there
            await services.storage.stat(PREFERENCES_KEY)

    async def state(check: Callable[[], Awaitable[None]], seconds: float) -> str:
        try:
            async with asyncio.timeout(seconds):
                await check()
        except TimeoutError:
            return f"no answer within {seconds:g}s"
        except DependencyError as error:  # where and why to the log only (hosts, paths)
            logger.warning("not ready: %s", error.detail)
            return error.message
        return "UP"

    timeout = services.config.livekit_timeout
    checks = {
        "storage": state(storage, READY_STORAGE_SECONDS),
        "livekit": state(services.livekit.check, timeout),
    }
    if (redis := services.redis) is not None:
        config = services.config
        checks["redis"] = state(lambda: redis_state.check(config, redis), READY_STORAGE_SECONDS)
    states = await asyncio.gather(*checks.values())
    return dict(zip(checks, states, strict=True))
