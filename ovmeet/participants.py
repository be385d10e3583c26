"""Participants: issue, refresh and revoke access to a room, checked in the contract's order."""

from __future__ import annotations

from dataclasses import dataclass

from ovmeet.config import User
from ovmeet.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    ParticipantConflict,
    ParticipantNotFound,
    Unauthorized,
)
from ovmeet.rooms import Role, Room, role_for_secret
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
    services: Services, options: TokenOptions, user: User | None, previous_token: str | None
) -> str:
    """A new token for a participant still in the room, who proves to be that participant
    with their previous token: expired, or expired less than the refresh window ago."""
    room, role = await _admit(services, options, user)
    window = services.config.participant_refresh_window
    previous = (
        services.participant_tokens.verify(previous_token, expired_for_at_most=window)
        if previous_token
        else None
    )
    if previous is None:
        raise Unauthorized(
            "Unauthorized: a new participant token needs the previous one (the "
            f"OvMeetParticipantToken cookie), valid or expired less than {window} s ago"
        )
    if previous.room != room.room_name or previous.identity != options.participant_name:
        raise Forbidden(
            "Insufficient permissions to access this resource: the OvMeetParticipantToken "
            f"cookie is not that of participant '{options.participant_name}' of room "
            f"'{room.room_name}'"
        )
    if not previous.expired:
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
    room = await services.rooms.get(options.room_name)
    role = role_for_secret(room, options.secret)
    if role is None:
        raise BadRequest(f"Invalid secret for room '{room.room_name}'")
    mode = await services.preferences.auth_mode()
    if user is None and (
        mode == "all_users" or (mode == "moderators_only" and role == "moderator")
    ):
        raise Unauthorized(f"Unauthorized: log in to join room '{room.room_name}' as {role}")
    return room, role
