"""The three token types, which can never stand in for one another.

Access and refresh tokens are ovmeet's own: HS256 with a key derived from the LiveKit secret
(never the secret itself), an audience naming the type, and a fingerprint of the user's
password so that changing it ends every session. Participant tokens are LiveKit tokens signed
with the LiveKit secret, as LiveKit requires.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import jwt
from livekit.api import VideoGrants
from livekit.api.access_token import Claims
from livekit.protocol.room import RoomConfiguration

from ovmeet.rooms.store import Role, Room, RoomPreferences
from ovmeet.support.cache import LruCache
from ovmeet.support.config import Config, User

SessionKind = Literal["access", "refresh"]
ISSUER = "ovmeet"
_TOKEN_ID = re.compile(r"[A-Za-z0-9_-]{16}")  # secrets.token_urlsafe(12)
MAX_VERIFIED = 4096
_AUDIENCE: dict[SessionKind, str] = {"access": "ovmeet:access", "refresh": "ovmeet:refresh"}


@dataclass(frozen=True)
class Session:
    """What a valid access or refresh token says: whose, which token, until when."""

    user: User
    token_id: str
    expires_at: int  # seconds since the epoch
    issued_at: int = 0


@dataclass(frozen=True)
class SessionTokens:
    """Issues and verifies access and refresh tokens for the configured users."""

    config: Config
    key: bytes
    clock: Callable[[], float] = field(default=time.time, compare=False)  # issuing time
    # Tokens that checked out, with what they open: a browser sends the same cookie with every
    # request, and HS256 verification is most of what its access check costs.
    _verified: LruCache[tuple[str, str], Session] = field(
        default_factory=lambda: LruCache(MAX_VERIFIED), compare=False, repr=False
    )

    @classmethod
    def for_config(cls, config: Config, clock: Callable[[], float] = time.time) -> SessionTokens:
        key = hmac.new(
            config.livekit_api_secret.encode(), b"ovmeet session token key v1", hashlib.sha256
        ).digest()
        return cls(config, key, clock)

    def issue(self, user: User, kind: SessionKind) -> str:
        now = int(self.clock())
        ttl = self.config.access_token_ttl if kind == "access" else self.config.refresh_token_ttl
        claims = {
            "iss": ISSUER,
            "aud": _AUDIENCE[kind],
            "sub": user.username,
            "role": user.role,
            "pwd": self._fingerprint(user),
            "iat": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self.key, algorithm="HS256")

    def verify(self, token: str, kind: SessionKind) -> Session | None:
        """The session a valid, unexpired token of this kind opens; None for anything else
        (revocation is checked by the caller: ovmeet.auth.revocations)."""
        checked = self.check(token, kind)
        return checked if isinstance(checked, Session) else None

    def check(self, token: str, kind: SessionKind) -> Session | str:
        """The session the token opens, or why it opens none (a phrase: "has expired")."""
        known = self._verified.get((token, kind))
        if known is not None:
            return known if known.expires_at > time.time() else "has expired"
        checked = self._check(token, kind)
        if isinstance(checked, Session):
            self._verified.put((token, kind), checked)
        return checked

    def _check(self, token: str, kind: SessionKind) -> Session | str:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                audience=_AUDIENCE[kind],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "pwd", "jti"]},
            )
        except jwt.PyJWTError as error:
            return _token_problem(error, f"an {kind} token")
        user = self.config.user(str(claims["sub"]))
        if user is None or not hmac.compare_digest(str(claims["pwd"]), self._fingerprint(user)):
            return "is for a user who no longer exists or whose password changed"
        token_id = claims["jti"]
        if not isinstance(token_id, str) or not _TOKEN_ID.fullmatch(token_id):
            return "has no valid token id"
        return Session(user, token_id, int(claims["exp"]), int(claims["iat"]))

    def _fingerprint(self, user: User) -> str:
        message = f"{user.username}\x00{user.password}\x00{user.role}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Participant:
    """What a valid participant token says: who, in which room, with which role, until when."""

    identity: str
    room: str
    role: Role
    expires_at: float = float("inf")  # seconds since the epoch

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()


# The grants LiveKit reads as booleans: a token of ours has booleans there and nothing else.
_BOOLEAN_GRANTS = (
    "roomCreate",
    "roomList",
    "roomRecord",
    "roomAdmin",
    "roomJoin",
    "canPublish",
    "canSubscribe",
    "canPublishData",
    "canUpdateOwnMetadata",
    "ingressAdmin",
    "hidden",
    "recorder",
    "agent",
)


class ParticipantTokens:
    """Issues and verifies LiveKit participant tokens."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def issue(self, room: Room, participant_name: str, role: Role) -> str:
        now = int(time.time())
        claims = {
            **_room_claims(
                self.config.livekit_url,
                room.room_name,
                role,
                room.preferences,
                room.max_participants or 0,
            ),
            "name": participant_name,
            "sub": participant_name,
            "iss": self.config.livekit_api_key,
            "nbf": now,
            "exp": now + self.config.participant_token_ttl,
        }
        return jwt.encode(claims, self.config.livekit_api_secret, algorithm="HS256")

    def verify(self, token: str, *, expired_for_at_most: float = 0) -> Participant | None:
        """The participant a token of ours names; None for anything else.

        Valid means: HS256 with the LiveKit secret, issued by our API key, not expired (or
        expired at most `expired_for_at_most` seconds ago), grants of the right JSON types.
        """
        try:
            claims = jwt.decode(
                token,
                self.config.livekit_api_secret,
                algorithms=["HS256"],
                issuer=self.config.livekit_api_key,
                options={"require": ["exp", "iss", "sub"], "verify_exp": False},
            )
        except jwt.PyJWTError:
            return None
        expires_at, identity, video = claims["exp"], claims["sub"], claims.get("video")
        if not isinstance(expires_at, int | float) or isinstance(expires_at, bool):
            return None
        if expires_at + expired_for_at_most <= time.time():
            return None
        if not (isinstance(identity, str) and identity and isinstance(video, dict)):
            return None
        if any(not isinstance(video[grant], bool) for grant in _BOOLEAN_GRANTS if grant in video):
            return None
        room = video.get("room")
        if video.get("roomJoin") is not True or not isinstance(room, str) or not room:
            return None
        role = _role_of(claims.get("metadata"))
        if role is None or (role == "moderator") != (video.get("roomAdmin") is True):
            return None
        return Participant(identity=identity, room=room, role=role, expires_at=expires_at)


def _token_problem(error: jwt.PyJWTError, expected: str) -> str:
    """Why PyJWT refused a token, as a phrase for the client ("has expired")."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return "has expired"
    if isinstance(error, jwt.InvalidSignatureError):
        return "is not signed by this server"
    if isinstance(error, jwt.InvalidAudienceError | jwt.InvalidIssuerError):
        return f"is not {expected}"
    if isinstance(error, jwt.DecodeError):
        return "is not a token"
    return f"is not valid ({error})"


def _role_of(metadata: Any) -> Role | None:
    if not isinstance(metadata, str):
        return None
    try:
        data: Any = json.loads(metadata)
    except ValueError:
        return None
    role = data.get("role") if isinstance(data, dict) else None
    return role if role in ("moderator", "publisher") else None


@functools.lru_cache(maxsize=4096)
def _room_claims(
    livekit_url: str,
    room_name: str,
    role: Role,
    preferences: RoomPreferences,
    max_participants: int,
) -> dict[str, Any]:
    """The claims every token for `role` in the room carries, in LiveKit's own shape (its
    AccessToken would build them for every token; only who and when change).

    `roomConfig` holds the room's size: LiveKit applies it to the room at every join and
    refuses a join beyond it, however many tokens were issued at once."""
    moderator = role == "moderator"
    metadata = {
        "livekitUrl": livekit_url,
        "role": role,
        "permissions": {
            "canPublishScreen": True,
            "canRecord": moderator and preferences.recording,
            "canChat": preferences.chat,
            "canChangeVirtualBackground": preferences.virtual_background,
        },
    }
    grants = VideoGrants(
        room_join=True,
        room=room_name,
        can_publish=True,
        can_subscribe=True,
        can_publish_data=True,
        can_update_own_metadata=True,
        room_admin=True if moderator else None,  # LiveKit holds it to `room`
    )
    room_config = RoomConfiguration(max_participants=max_participants) if max_participants else None
    claims = Claims(
        metadata=json.dumps(metadata, separators=(",", ":")), video=grants, room_config=room_config
    )
    return claims.asdict()
