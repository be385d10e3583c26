"""LiveKit's RoomService and Egress, as ovmeet needs them: one session, a timeout on every call,
clear errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from google.protobuf.message import DecodeError, Message
from livekit.api import LiveKitAPI, TwirpError
from livekit.protocol.egress import (
    EgressInfo,
    EncodedFileOutput,
    EncodedFileType,
    ListEgressRequest,
    RoomCompositeEgressRequest,
    S3Upload,
    StopEgressRequest,
)
from livekit.protocol.room import DeleteRoomRequest, RoomParticipantIdentity

from ovmeet.config import Config
from ovmeet.errors import DependencyError


class LiveKitError(DependencyError):
    """LiveKit could not answer; the request fails rather than guess."""

    def __init__(self, method: str, detail: str) -> None:
        super().__init__(f"LiveKit failed on {method}", detail)


class _NotFound(Exception):
    """LiveKit answered not_found."""


def file_output(config: Config, filepath: str) -> EncodedFileOutput:
    """An MP4 written where ovmeet's storage reads it: the S3 bucket ovmeet uses (same endpoint
    and credentials; `filepath` under the sub-bucket), or the local data folder (which the
    egress must then share)."""
    if config.storage == "s3":
        upload = S3Upload(
            access_key=config.s3_access_key or "",
            secret=config.s3_secret_key or "",
            region=config.s3_region,
            endpoint=config.s3_endpoint or "",
            bucket=config.s3_bucket,
            force_path_style=config.s3_path_style,
        )
        prefix = f"{config.s3_subbucket}/" if config.s3_subbucket else ""
        return EncodedFileOutput(
            file_type=EncodedFileType.MP4, filepath=prefix + filepath, s3=upload
        )
    folder = str(Path(config.data_dir).resolve())
    return EncodedFileOutput(file_type=EncodedFileType.MP4, filepath=f"{folder}/{filepath}")


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

    async def start_recording(self, room: str, output: EncodedFileOutput) -> EgressInfo:
        """Start a room composite egress writing one MP4 file (Egress StartRoomCompositeEgress)."""
        request = RoomCompositeEgressRequest(room_name=room, file_outputs=[output])
        info: EgressInfo = await self._answer(
            "StartRoomCompositeEgress", self.api.egress.start_room_composite_egress, request
        )
        return info

    async def egress(self, egress_id: str) -> EgressInfo | None:
        """What LiveKit knows of one egress (Egress ListEgress); None if nothing."""
        answer = await self._answer(
            "ListEgress", self.api.egress.list_egress, ListEgressRequest(egress_id=egress_id)
        )
        return next((info for info in answer.items if info.egress_id == egress_id), None)

    async def active_egresses(self, room: str) -> list[EgressInfo]:
        """The egresses of `room` that have not ended."""
        request = ListEgressRequest(room_name=room, active=True)
        answer = await self._answer("ListEgress", self.api.egress.list_egress, request)
        return list(answer.items)

    async def stop_recording(self, egress_id: str) -> EgressInfo | None:
        """Ask LiveKit to stop the egress (Egress StopEgress); None if it does not know it."""
        try:
            info: EgressInfo = await self._answer(
                "StopEgress", self.api.egress.stop_egress, StopEgressRequest(egress_id=egress_id)
            )
        except _NotFound:
            return None
        return info

    async def _call(
        self, method: str, call: Callable[[Any], Awaitable[object]], request: Message
    ) -> bool:
        """Run one call whose answer does not matter; False when LiveKit says not_found."""
        try:
            await self._answer(method, call, request)
        except _NotFound:
            return False
        return True

    async def _answer(
        self, method: str, call: Callable[[Any], Awaitable[Any]], request: Message
    ) -> Any:
        """LiveKit's answer to one call; _NotFound when it says not_found."""
        try:
            # livekit-api passes timeout=None per request, which switches off the session's
            # ClientTimeout in aiohttp: bound the whole call here instead.
            async with asyncio.timeout(self.config.livekit_timeout):
                return await call(request)
        except TwirpError as error:
            if error.code == "not_found":
                raise _NotFound from None
            raise self._failure(method, error) from None
        except (TimeoutError, aiohttp.ClientError, OSError, DecodeError) as error:
            raise self._failure(method, error) from None

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
