"""LiveKit's RoomService, as ovmeet needs it: one session, a timeout on every call, clear errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from google.protobuf.message import DecodeError, Message
from livekit.api import LiveKitAPI, TwirpError
from livekit.protocol.room import DeleteRoomRequest, RoomParticipantIdentity

from ovmeet.config import Config
from ovmeet.errors import DependencyError


class LiveKitError(DependencyError):
    """LiveKit could not answer; the request fails rather than guess."""

    def __init__(self, method: str, detail: str) -> None:
        super().__init__(f"LiveKit failed on {method}", detail)


class LiveKitGateway:
    """Participant lookups and removals, room closing; `start()` must run inside the event loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._api: LiveKitAPI | None = None

    def start(self) -> None:
        """Open the HTTP session (aiohttp binds it to the running loop)."""
        self._api = LiveKitAPI(
            self.config.livekit_url_private,
            self.config.livekit_api_key,
            self.config.livekit_api_secret,
            timeout=aiohttp.ClientTimeout(total=self.config.livekit_timeout),
            failover=False,
        )

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
            self._api = None

    @property
    def api(self) -> LiveKitAPI:
        if self._api is None:
            raise LiveKitError("a call", "the LiveKit client is not started")
        return self._api

    async def participant_exists(self, room: str, identity: str) -> bool:
        """Whether `identity` is connected to `room` (RoomService GetParticipant)."""
        return await self._call(
            "GetParticipant",
            self.api.room.get_participant,
            RoomParticipantIdentity(room=room, identity=identity),
        )

    async def remove_participant(self, room: str, identity: str) -> bool:
        """Disconnect `identity` from `room`; False if it was not there."""
        return await self._call(
            "RemoveParticipant",
            self.api.room.remove_participant,
            RoomParticipantIdentity(room=room, identity=identity),
        )

    async def close_room(self, room: str) -> bool:
        """Close `room` and disconnect everyone in it; False if it was not live."""
        return await self._call(
            "DeleteRoom", self.api.room.delete_room, DeleteRoomRequest(room=room)
        )

    async def _call(
        self, method: str, call: Callable[[Any], Awaitable[object]], request: Message
    ) -> bool:
        """Run one RoomService call; False when LiveKit says not_found."""
        try:
            # livekit-api passes timeout=None per request, which switches off the session's
            # ClientTimeout in aiohttp: bound the whole call here instead.
            async with asyncio.timeout(self.config.livekit_timeout):
                await call(request)
        except TwirpError as error:
            if error.code == "not_found":
                return False
            raise self._failure(method, error) from None
        except (TimeoutError, aiohttp.ClientError, OSError, DecodeError) as error:
            raise self._failure(method, error) from None
        return True

    def _failure(self, method: str, error: BaseException) -> LiveKitError:
        if isinstance(error, TwirpError):
            detail = f"{error.status} {error.code}: {error.message}"
        elif isinstance(error, asyncio.TimeoutError):
            detail = f"no answer within {self.config.livekit_timeout}s"
        else:
            detail = str(error) or type(error).__name__
        return LiveKitError(
            method, f"LiveKit at {self.config.livekit_url_private} failed on {method} ({detail})"
        )
