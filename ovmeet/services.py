"""The services one ovmeet process shares between requests, opened and closed with the app."""

from __future__ import annotations

from dataclasses import dataclass

from ovmeet.auth import LoginThrottle
from ovmeet.config import Config
from ovmeet.livekit_events import HandledEvents
from ovmeet.livekit_gateway import LiveKitGateway
from ovmeet.preferences import GlobalPreferences
from ovmeet.revocations import Revocations
from ovmeet.storage import Storage, open_storage
from ovmeet.tokens import ParticipantTokens, SessionTokens


@dataclass(frozen=True)
class Services:
    config: Config
    storage: Storage
    livekit: LiveKitGateway
    preferences: GlobalPreferences
    sessions: SessionTokens
    participant_tokens: ParticipantTokens
    login_throttle: LoginThrottle
    handled_events: HandledEvents
    revocations: Revocations

    @classmethod
    def build(cls, config: Config) -> Services:
        """Everything wired from `config`; nothing is contacted until `start()`."""
        storage = open_storage(config)
        return cls(
            config=config,
            storage=storage,
            livekit=LiveKitGateway(config),
            preferences=GlobalPreferences(storage, config),
            sessions=SessionTokens.for_config(config),
            participant_tokens=ParticipantTokens(config),
            login_throttle=LoginThrottle(),
            handled_events=HandledEvents(),
            revocations=Revocations(storage),
        )

    async def start(self) -> None:
        """Open the LiveKit session (aiohttp binds it to the running loop)."""
        self.livekit.start()

    async def aclose(self) -> None:
        await self.livekit.aclose()
        await self.storage.aclose()


async def prepare_storage(config: Config) -> None:
    """Check the storage (create the bucket if missing) and store first-start preferences.

    `ovmeet serve` does this once, before any worker starts.
    """
    storage = open_storage(config)
    try:
        await storage.check()
        await GlobalPreferences(storage, config).ensure_stored()
    finally:
        await storage.aclose()
