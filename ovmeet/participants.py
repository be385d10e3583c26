"""Participants: issue, refresh and revoke access to a room, checked in the contract's order."""

from __future__ import annotations

from dataclasses import dataclass

from ovmeet.config import User
from ovmeet.errors import (
    BadRequest,
    Conflict,
    ParticipantConflict,
    ParticipantNotFound,
    Unauthorized,
)
from ovmeet.rooms import Role, Room, get_room, role_for_secret
from ovmeet.services import Services


@dataclass(frozen=True)
class TokenOptions:
    room_name: str
    participant_name: str
    secret: str


async def issue_token(services: Services, options: TokenOptions, user: User | None) -> str:
    """A participant token for someone not yet in the LiveKit room."""
    room, role = await _admit(services, options, user)
    if await services.livekit.participant_exists(room.room_name, options.participant_name):
        raise ParticipantConflict(
            f"Participant '{options.participant_name}' already exists in room '{room.room_name}'"
        )
    return services.participant_tokens.issue(room, options.participant_name, role)


async def refresh_token(
    services: Services, options: TokenOptions, user: User | None, current_token: str | None
) -> str:
    """A new token for a participant still in the room whose token is no longer valid."""
    room, role = await _admit(services, options, user)
    current = services.participant_tokens.verify(current_token) if current_token else None
    if (
        current is not None
        and current.room == room.room_name
        and current.identity == options.participant_name
    ):
        raise Conflict("Participant token is still valid")
    if not await services.livekit.participant_exists(room.room_name, options.participant_name):
        raise ParticipantNotFound(
            f"Participant '{options.participant_name}' not found in room '{room.room_name}'"
        )
    return services.participant_tokens.issue(room, options.participant_name, role)


async def disconnect(services: Services, room_name: str, participant_name: str) -> None:
    """Remove `participant_name` from `room_name` (the caller is one of its moderators)."""
    if not await services.livekit.remove_participant(room_name, participant_name):
        raise ParticipantNotFound(
            f"Participant '{participant_name}' not found in room '{room_name}'"
        )


async def _admit(services: Services, options: TokenOptions, user: User | None) -> tuple[Room, Role]:
    """The room and the role the secret opens, once the auth mode is satisfied."""
    room = await get_room(services.storage, options.room_name)
    role = role_for_secret(room, options.secret)
    if role is None:
        raise BadRequest(f"Invalid secret for room '{room.room_name}'")
    mode = await services.preferences.auth_mode()
    if user is None and (
        mode == "all_users" or (mode == "moderators_only" and role == "moderator")
    ):
        raise Unauthorized(f"Unauthorized: log in to join room '{room.room_name}' as {role}")
    return room, role
