"""Who may call what: one table from operationId to the credentials it accepts, and its check.

The HTTP edge (ovmeet/web/access.py) turns a request's cookies and headers into a `Principal`,
looks the operation up in RULES and calls `authorize`; nothing else decides access. Rules that
need more than a credential (the auth mode of the token operations, LiveKit's signature on
webhooks) accept ANYONE here and are enforced by the domain function named beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ovmeet.auth.tokens import Participant, Session
from ovmeet.preferences.store import Preferences
from ovmeet.support.config import User
from ovmeet.support.errors import BadRequest, Forbidden, Unauthorized


class Credential(StrEnum):
    """A kind of proof a request can carry."""

    ANYONE = "anyone"
    API_KEY = "the X-API-KEY header"
    ADMIN = "ADMIN"  # an OvMeetAccessToken cookie of this role
    USER = "USER"
    MODERATOR = "an OvMeetParticipantToken cookie of a moderator of the room"
    PARTICIPANT = "an OvMeetParticipantToken cookie"  # the domain checks role and room


@dataclass(frozen=True)
class Principal:
    """What a request proved about its caller: each credential it carried that checked out."""

    access: Session | None = None  # from a valid, unrevoked access cookie
    refresh: Session | None = None  # from a valid, unrevoked refresh cookie
    participant: Participant | None = None  # from a valid participant cookie
    api_key: bool = False  # X-API-KEY equal to MEET_API_KEY

    @property
    def user(self) -> User | None:
        """The logged-in user (access cookie)."""
        return self.access.user if self.access else None

    @property
    def refresh_user(self) -> User | None:
        return self.refresh.user if self.refresh else None


@dataclass(frozen=True)
class Rule:
    """The credentials an operation accepts (any one of them is enough)."""

    accepts: frozenset[Credential]
    room_parameter: str | None = None  # MODERATOR: the path or query parameter naming the room
    # The stored room creation policy may accept a USER, or anyone, as well.
    room_creation_policy: bool = False

    def __post_init__(self) -> None:
        if (Credential.MODERATOR in self.accepts) != (self.room_parameter is not None):
            raise ValueError("a MODERATOR rule names its room parameter, and only it does")


def anyone() -> Rule:
    return Rule(frozenset({Credential.ANYONE}))


def only(
    *credentials: Credential, room_parameter: str | None = None, room_creation_policy: bool = False
) -> Rule:
    return Rule(frozenset(credentials), room_parameter, room_creation_policy)


def in_force(rule: Rule, preferences: Preferences) -> Rule:
    """`rule` with what the stored room creation policy adds to it, if it follows the policy."""
    if not (rule.room_creation_policy and preferences.allow_room_creation):
        return rule
    extra = Credential.USER if preferences.room_creation_requires_login else Credential.ANYONE
    return replace(rule, accepts=rule.accepts | {extra})


RULES: dict[str, Rule] = {
    # Internal API (the seed). The token operations' auth mode: ovmeet.auth.participants.
    "generateParticipantToken": anyone(),
    "refreshParticipantToken": anyone(),
    "disconnectParticipant": only(Credential.MODERATOR, room_parameter="roomName"),
    "getRecordingStream": only(Credential.ADMIN),
    "getParticipantRole": anyone(),
    # Public REST API v1.
    "createRoom": only(Credential.API_KEY, Credential.ADMIN, room_creation_policy=True),
    "getRooms": only(Credential.API_KEY, Credential.ADMIN),
    "getRoom": only(
        Credential.API_KEY, Credential.ADMIN, Credential.MODERATOR, room_parameter="roomName"
    ),
    "updateRoom": only(Credential.API_KEY, Credential.ADMIN),
    # A moderator ends their own meeting (the web component's endMeeting()).
    "deleteRoom": only(
        Credential.API_KEY, Credential.ADMIN, Credential.MODERATOR, room_parameter="roomName"
    ),
    "getSecurityPreferences": anyone(),
    "updateSecurityPreferences": only(Credential.API_KEY, Credential.ADMIN),
    "getWebhookPreferences": only(Credential.API_KEY, Credential.ADMIN),
    "updateWebhookPreferences": only(Credential.API_KEY, Credential.ADMIN),
    "getAppearancePreferences": only(Credential.API_KEY, Credential.ADMIN),
    # A moderator of the recording's room, named in the body or inside the recording id:
    # ovmeet.recordings.recorder checks role and room.
    "createRecording": only(Credential.PARTICIPANT),
    "stopRecording": only(Credential.PARTICIPANT),
    "getRecordings": only(Credential.API_KEY, Credential.ADMIN),
    "getRecording": only(Credential.API_KEY, Credential.ADMIN),
    "deleteRecording": only(Credential.API_KEY, Credential.ADMIN),
    "bulkDeleteRecordings": only(Credential.API_KEY, Credential.ADMIN),
    "updateAppearancePreferences": only(Credential.API_KEY, Credential.ADMIN),
    # Auth (companion, at both APIs). Failed logins are throttled: ovmeet.auth.login. A refresh
    # without a valid refresh cookie is a 400 (handlers.auth): the release's front end answers
    # every 401 with a refresh, so a 401 there would loop.
    "login": anyone(),
    "logout": anyone(),
    "refreshAccessToken": anyone(),
    "getProfile": only(Credential.ADMIN, Credential.USER),
    # LiveKit webhooks (companion). LiveKit's signature on the body: ovmeet.events.
    "receiveWebhook": anyone(),
}


def authorize(rule: Rule, principal: Principal, room: str | None = None) -> None:
    """Return if `principal` satisfies `rule` (for `room`); else Unauthorized or Forbidden.

    401 when the request proved none of the identities the rule looks at; 403 when it proved
    one that lacks the role, or belongs to another room.
    """
    accepts = rule.accepts
    if Credential.ANYONE in accepts or (Credential.API_KEY in accepts and principal.api_key):
        return
    user, participant = principal.user, principal.participant
    if user is not None and Credential(user.role) in accepts:
        return
    if Credential.PARTICIPANT in accepts and participant is not None:
        return
    if Credential.MODERATOR in accepts and participant is not None:
        if room is None:
            raise BadRequest(f"The '{rule.room_parameter}' parameter is required")
        if participant.role == "moderator" and participant.room == room:
            return
    refused_user = user is not None and bool({Credential.ADMIN, Credential.USER} & accepts)
    refused_participant = participant is not None and Credential.MODERATOR in accepts
    if refused_participant:
        raise Forbidden(
            "Insufficient permissions to access this resource: "
            f"only a moderator of room '{room}' can do this"
        )
    if refused_user:
        raise Forbidden("Insufficient permissions to access this resource")
    raise Unauthorized(f"This operation needs {_describe(accepts)}")


def _describe(accepts: frozenset[Credential]) -> str:
    """`accepts` in words, e.g. 'an OvMeetAccessToken cookie of role ADMIN or USER'."""
    roles = [c.value for c in (Credential.ADMIN, Credential.USER) if c in accepts]
    words = [f"an OvMeetAccessToken cookie of role {' or '.join(roles)}"] if roles else []
    words += [c.value for c in accepts - {Credential.ADMIN, Credential.USER}]
    return " or ".join(sorted(words))
