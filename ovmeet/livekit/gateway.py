"""LiveKit's RoomService and Egress, as ovmeet needs them: one session, call tokens reused while
they are valid, a timeout on every call, clear errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import aiohttp
from google.protobuf.message import DecodeError, Message
from livekit.api import AccessToken, TwirpError, VideoGrants
from livekit.api.twirp_client import TwirpClient
from livekit.protocol.egress import (
    EgressInfo,
    EncodedFileOutput,
    EncodedFileType,
    ListEgressRequest,
    ListEgressResponse,
    RoomCompositeEgressRequest,
    S3Upload,
    StopEgressRequest,
)
from livekit.protocol.models import DataPacket, ParticipantInfo
from livekit.protocol.room import (
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    ListRoomsRequest,
    ListRoomsResponse,
    RemoveParticipantResponse,
    RoomParticipantIdentity,
    SendDataRequest,
    SendDataResponse,
)

from ovmeet.storage.keys import object_name
from ovmeet.support.cache import LruCache
from ovmeet.support.config import Config
from ovmeet.support.errors import DependencyError
from ovmeet.support.metrics import LIVEKIT_CALLS


class LiveKitError(DependencyError):
    """LiveKit could not answer; the request fails rather than guess. `unreachable`: no answer
    came at all (LiveKit is down, or not where LIVEKIT_URL_PRIVATE says)."""

    default_name = "LiveKit Error"

    def __init__(self, method: str, detail: str, why: str = "", unreachable: bool = False) -> None:
        super().__init__(f"LiveKit is not available: {method} failed{why}", detail)
        self.unreachable = unreachable


class _NotFound(Exception):
    """LiveKit answered not_found."""


class _NotRunning(Exception):
    """LiveKit answered failed_precondition (StopEgress of an egress that has ended)."""


# LiveKit's own 401 (bad signature, unknown key, expired token) is plain text from a middleware,
# which livekit-api reports as code "unknown"; a missing grant is Twirp "unauthenticated".
CREDENTIALS_REFUSED = ": LiveKit refused ovmeet's credentials (LIVEKIT_API_KEY, LIVEKIT_API_SECRET)"
NO_EGRESS = ": LiveKit has no Egress service (Egress needs LiveKit with Redis and an egress worker)"


def file_output(config: Config, filepath: str) -> EncodedFileOutput:
    """An MP4 written where ovmeet's storage reads it: the S3 bucket ovmeet uses (same endpoint;
    `filepath` under the sub-bucket; the egress key if one is set, else ovmeet's own), or the
    local data folder (which the egress must then share)."""
    if config.storage == "s3":
        upload = S3Upload(
            access_key=config.s3_egress_access_key or config.s3_access_key or "",
            secret=config.s3_egress_secret_key or config.s3_secret_key or "",
            region=config.s3_region,
            endpoint=config.s3_endpoint or "",
            bucket=config.s3_bucket,
            force_path_style=config.s3_path_style,
        )
        return EncodedFileOutput(
            file_type=EncodedFileType.MP4,
            filepath=object_name(config.s3_subbucket, filepath),
            s3=upload,
        )
    folder = str(Path(config.data_dir).resolve())
    return EncodedFileOutput(file_type=EncodedFileType.MP4, filepath=f"{folder}/{filepath}")


Answer = TypeVar("Answer", bound=Message)
ROOM_SERVICE, EGRESS = "RoomService", "Egress"
# The grants LiveKit asks of each kind of call (as livekit-api's services send them).
RECORD, CREATE = VideoGrants(room_record=True), VideoGrants(room_create=True)
LIST = VideoGrants(room_list=True)


def admin_of(room: str) -> VideoGrants:
    return VideoGrants(room_admin=True, room=room)


class CallTokens:
    """Signed tokens for ovmeet's own calls to LiveKit, one per set of grants (RoomService's are
    per room), reused until `renew_before` their end; the `size` most recent are kept."""

    def __init__(
        self, key: str, secret: str, ttl: float = 600, renew_before: float = 60, size: int = 1024
    ) -> None:
        self._key, self._secret = key, secret
        self._ttl, self._reuse_for = ttl, ttl - renew_before
        self._tokens: LruCache[str, str] = LruCache(size)

    def header(self, grants: VideoGrants) -> dict[str, str]:
        """The Authorization header for a call that needs `grants`."""
        key = repr(grants)
        authorization = self._tokens.get(key, self._reuse_for)
        if authorization is None:
            token = (
                AccessToken(self._key, self._secret)
                .with_grants(grants)
                .with_ttl(timedelta(seconds=self._ttl))
                .to_jwt()
            )
            authorization = f"Bearer {token}"
            self._tokens.put(key, authorization)
        return {"Authorization": authorization}


class LiveKitGateway:
    """Participant lookups and removals, room closing, recordings; `start()` must run inside the
    event loop."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._tokens = CallTokens(config.livekit_api_key, config.livekit_api_secret)
        self._session: aiohttp.ClientSession | None = None
        self._twirp: TwirpClient | None = None

    def start(self) -> None:
        """Open the HTTP session (aiohttp binds it to the running loop)."""
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.livekit_timeout)
        )
        self._twirp = TwirpClient(
            self._session, self.config.livekit_url_private, "livekit", failover=False
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session, self._twirp = None, None

    async def participant_exists(self, room: str, identity: str) -> bool:
        """Whether `identity` is connected to `room` (RoomService GetParticipant)."""
        request = RoomParticipantIdentity(room=room, identity=identity)
        return await self._found(
            ROOM_SERVICE, "GetParticipant", request, ParticipantInfo, admin_of(room)
        )

    async def remove_participant(self, room: str, identity: str) -> bool:
        """Disconnect `identity` from `room`; False if it was not there."""
        request = RoomParticipantIdentity(room=room, identity=identity)
        return await self._found(
            ROOM_SERVICE, "RemoveParticipant", request, RemoveParticipantResponse, admin_of(room)
        )

    async def close_room(self, room: str) -> bool:
        """Close `room` and disconnect everyone in it; False if it was not live."""
        request = DeleteRoomRequest(room=room)
        return await self._found(ROOM_SERVICE, "DeleteRoom", request, DeleteRoomResponse, CREATE)

    async def check(self) -> None:
        """Prove LiveKit answers a signed call (RoomService ListRooms for no room); LiveKitError
        if it does not."""
        request = ListRoomsRequest(names=["ovmeet-readiness-probe"])
        await self._call(ROOM_SERVICE, "ListRooms", request, ListRoomsResponse, LIST)

    async def start_recording(self, room: str, output: EncodedFileOutput) -> EgressInfo | None:
        """Start a room composite egress writing one MP4 file (Egress StartRoomCompositeEgress);
        None if the room is not live in LiveKit (nobody has joined it)."""
        request = RoomCompositeEgressRequest(room_name=room, file_outputs=[output])
        try:
            return await self._call(EGRESS, "StartRoomCompositeEgress", request, EgressInfo)
        except _NotFound:
            return None

    async def egress(self, egress_id: str) -> EgressInfo | None:
        """What LiveKit knows of one egress (Egress ListEgress); None if nothing."""
        request = ListEgressRequest(egress_id=egress_id)
        try:
            answer = await self._call(EGRESS, "ListEgress", request, ListEgressResponse)
        except _NotFound:  # LiveKit with Redis: an egress id it does not know
            return None
        return next((info for info in answer.items if info.egress_id == egress_id), None)

    async def active_egresses(self, room: str) -> list[EgressInfo]:
        """The egresses of `room` that have not ended."""
        request = ListEgressRequest(room_name=room, active=True)
        try:
            answer = await self._call(EGRESS, "ListEgress", request, ListEgressResponse)
        except _NotFound:
            return []
        return list(answer.items)

    async def stop_recording(self, egress_id: str) -> EgressInfo | None:
        """Ask LiveKit to stop the egress (Egress StopEgress); None if it does not know it."""
        request = StopEgressRequest(egress_id=egress_id)
        try:
            return await self._call(EGRESS, "StopEgress", request, EgressInfo)
        except (_NotFound, _NotRunning):  # unknown, or it has just ended
            return None

    async def participants(self, room: str) -> list[ParticipantInfo] | None:
        """Who is in `room` (RoomService ListParticipants); None if it is not live."""
        request = ListParticipantsRequest(room=room)
        try:
            answer = await self._call(
                ROOM_SERVICE, "ListParticipants", request, ListParticipantsResponse, admin_of(room)
            )
        except _NotFound:
            return None
        return list(answer.participants)

    async def send_data(
        self, room: str, topic: str, payload: bytes, to_sids: tuple[str, ...] = ()
    ) -> bool:
        """Send a reliable data message on `topic` to everyone in `room`, or to the participants
        `to_sids` (RoomService SendData); False if the room is not live."""
        request = SendDataRequest(
            room=room,
            data=payload,
            kind=DataPacket.Kind.RELIABLE,
            topic=topic,
            destination_sids=list(to_sids),
        )
        return await self._found(
            ROOM_SERVICE, "SendData", request, SendDataResponse, admin_of(room)
        )

    async def _found(
        self,
        service: str,
        method: str,
        request: Message,
        answer: type[Message],
        grants: VideoGrants,
    ) -> bool:
        """Run one call whose answer does not matter; False when LiveKit says not_found."""
        try:
            await self._call(service, method, request, answer, grants)
        except _NotFound:
            return False
        return True

    async def _call(
        self,
        service: str,
        method: str,
        request: Message,
        answer: type[Answer],
        grants: VideoGrants = RECORD,
    ) -> Answer:
        """LiveKit's answer to one call; _NotFound when it says not_found."""
        if self._twirp is None:
            raise LiveKitError(method, "the LiveKit client is not started")
        with LIVEKIT_CALLS.timed(method, (_NotFound,)):
            try:
                # livekit-api passes timeout=None per request, which switches off the session's
                # ClientTimeout in aiohttp: bound the whole call here instead.
                async with asyncio.timeout(self.config.livekit_timeout):
                    return await self._twirp.request(
                        service, method, request, self._tokens.header(grants), answer
                    )
            except TwirpError as error:
                if error.code == "not_found":
                    raise _NotFound from None
                if error.code == "failed_precondition" and method == "StopEgress":
                    raise _NotRunning from None
                raise self._failure(method, error) from None
            except (TimeoutError, aiohttp.ClientError, OSError, DecodeError) as error:
                raise self._failure(method, error) from None

    def _failure(self, method: str, error: BaseException) -> LiveKitError:
        why = ""
        if isinstance(error, TwirpError):
            # The message only: a 401's body may repeat the token that was refused.
            detail = f"{error.status} {error.code}: {error.message}"
            if error.status == 401 and error.code != "unauthenticated":
                why, detail = CREDENTIALS_REFUSED, f"{error.status}{CREDENTIALS_REFUSED}"
            elif "egress not connected" in error.message:
                why = NO_EGRESS
        elif isinstance(error, asyncio.TimeoutError):
            detail = f"no answer within {self.config.livekit_timeout}s"
        else:
            detail = str(error) or type(error).__name__
        return LiveKitError(
            method,
            f"LiveKit at {self.config.livekit_url_private} failed on {method} ({detail})",
            why,
            unreachable=not isinstance(error, (TwirpError, DecodeError)),
        )
