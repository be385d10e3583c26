"""Participants: issue, refresh and revoke access to a room, checked in the contract's order."""

from __future__ import annotations

from dataclasses import dataclass

from livekit.protocol.models import ParticipantInfo

from ovmeet.auth.tokens import Participant, ParticipantTokens
from ovmeet.livekit.gateway import LiveKitGateway
from ovmeet.preferences.store import GlobalPreferences
from ovmeet.rooms.store import Role, Room, RoomCache, role_for_secret
from ovmeet.support.config import User
from ovmeet.support.errors import (
    BadRequest,
    Forbidden,
    ParticipantConflict,
    ParticipantNotFound,
    RoomFull,
    Unauthorized,
)


@dataclass(frozen=True)
class TokenOptions:
    room_name: str
    participant_name: str
    secret: str


# Who LiveKit does not count against a room's size (its "dependent" participants).
_NOT_COUNTED = frozenset((ParticipantInfo.Kind.EGRESS, ParticipantInfo.Kind.AGENT))


def _already_in(name: str, room: Room) -> ParticipantConflict:
    return ParticipantConflict(f"Participant '{name}' already exists in room '{room.room_name}'")


class Participants:
    """Admits people to rooms: the participant tokens, checked in the contract's order."""

    def __init__(
        self,
        rooms: RoomCache,
        livekit: LiveKitGateway,
        tokens: ParticipantTokens,
        preferences: GlobalPreferences,
        refresh_window: int,
    ) -> None:
        self._rooms, self._livekit, self._tokens = rooms, livekit, tokens
        self._preferences, self._refresh_window = preferences, refresh_window

    async def issue_token(
        self,
        options: TokenOptions,
        user: User | None,
        holder: Participant | None = None,
    ) -> str:
        """A participant token for someone not yet in the LiveKit room, or for that participant
        coming back: `holder` (their participant cookie) names this identity in this room, as
        after a reload, while LiveKit still lists the vanished connection. LiveKit then ends the
        stale connection when the new one joins (DUPLICATE_IDENTITY)."""
        room, role = await self._admit(options, user)
        name = options.participant_name
        returning = holder is not None and (holder.room, holder.identity) == (room.room_name, name)
        if room.max_participants:
            present = await self._livekit.participants(room.room_name) or []
            if any(p.identity == name for p in present) and not returning:
                raise _already_in(name, room)
            counted = [p for p in present if p.kind not in _NOT_COUNTED and p.identity != name]
            if len(counted) >= room.max_participants:
                raise RoomFull(
                    f"The room '{room.room_name}' is full: it allows "
                    f"{room.max_participants} participants at a time"
                )
        elif not returning and await self._livekit.participant_exists(room.room_name, name):
            raise _already_in(name, room)
        return self._tokens.issue(room, name, role)

    async def refresh_token(
        self, options: TokenOptions, user: User | None, previous_token: str | None
    ) -> str:
        """A new token for a participant still in the room, who proves to be that participant
        with their previous token: expired, or expired less than the refresh window ago."""
        room, role = await self._admit(options, user)
        window = self._refresh_window
        previous = (
            self._tokens.verify(previous_token, expired_for_at_most=window)
            if previous_token
            else None
        )
        if previous is None:
            raise Unauthorized(
                "A new participant token needs the previous one (the "
                f"OvMeetParticipantToken cookie), valid or expired less than {window} s ago"
            )
        if previous.room != room.room_name or previous.identity != options.participant_name:
            raise Forbidden(
                "Insufficient permissions to access this resource: the OvMeetParticipantToken "
                f"cookie is not that of participant '{options.participant_name}' of room "
                f"'{room.room_name}'"
            )
        if not previous.expired:
            raise ParticipantConflict("Participant token is still valid")
        if not await self._livekit.participant_exists(room.room_name, options.participant_name):
            raise ParticipantNotFound(
                f"Participant '{options.participant_name}' not found in room '{room.room_name}'"
            )
        return self._tokens.issue(room, options.participant_name, role)

    async def disconnect(self, room_name: str, participant_name: str) -> None:
        """Remove `participant_name` from `room_name` (the caller is one of its moderators)."""
        if not await self._livekit.remove_participant(room_name, participant_name):
            raise ParticipantNotFound(
                f"Participant '{participant_name}' not found in room '{room_name}'"
            )

    async def _admit(self, options: TokenOptions, user: User | None) -> tuple[Room, Role]:
        """The room and the role the secret opens, once the auth mode is satisfied."""
        room = await self._rooms.get(options.room_name)
        role = role_for_secret(room, options.secret)
        if role is None:
            raise BadRequest(f"Invalid secret for room '{room.room_name}'", name="Room Error")
        mode = await self._preferences.auth_mode()
        if user is None and (
            mode == "all_users" or (mode == "moderators_only" and role == "moderator")
        ):
            raise Unauthorized(f"Log in to join room '{room.room_name}' as {role}")
        return room, role
