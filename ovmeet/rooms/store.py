"""Rooms: creation, lookup (an expired room does not exist), and the secret that gives a role."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit

from ovmeet.livekit.gateway import LiveKitError, LiveKitGateway
from ovmeet.rooms.index import RoomIndex, added_marker, removed_marker
from ovmeet.shared.cached_view import CachedView
from ovmeet.shared.change_markers import ChangeMarker
from ovmeet.storage import ObjectNotFound, Storage, StorageError, index_once
from ovmeet.storage.keys import ROOM_INDEX_BUILT, ROOMS, room_index_key, room_key, room_of_key
from ovmeet.support.config import Config
from ovmeet.support.errors import BadRequest, RoomNotFound, UnprocessableEntity
from ovmeet.support.ids import MAX_ID_LENGTH, is_id, random_id

logger = logging.getLogger("ovmeet.rooms")

Role = Literal["moderator", "publisher"]

# Names are `{prefix}-{random}`, an id of ovmeet.support.ids: single dashes only.
MAX_PREFIX = 64
DEFAULT_PREFIX = "room"


@dataclass(frozen=True)
class RoomPreferences:
    chat: bool = True
    recording: bool = True
    virtual_background: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "chatPreferences": {"enabled": self.chat},
            "recordingPreferences": {"enabled": self.recording},
            "virtualBackgroundPreferences": {"enabled": self.virtual_background},
        }

    @classmethod
    def from_json(
        cls, data: dict[str, Any], defaults: RoomPreferences | None = None
    ) -> RoomPreferences:
        """Preferences from their JSON form; a preference not given is taken from `defaults`
        (all enabled if none)."""
        base = defaults or cls()

        def enabled(key: str, default: bool) -> bool:
            return bool((data.get(key) or {}).get("enabled", default))

        return cls(
            enabled("chatPreferences", base.chat),
            enabled("recordingPreferences", base.recording),
            enabled("virtualBackgroundPreferences", base.virtual_background),
        )


@dataclass(frozen=True)
class Room:
    """A meeting room as OpenVidu Meet stores it (MeetRoom)."""

    room_name: str
    room_name_prefix: str
    creation_date: int
    moderator_room_url: str
    publisher_room_url: str
    expiration_date: int | None = None
    max_participants: int | None = None
    preferences: RoomPreferences = field(default_factory=RoomPreferences)

    @property
    def moderator_secret(self) -> str:
        return _secret_of(self.moderator_room_url)

    @property
    def publisher_secret(self) -> str:
        return _secret_of(self.publisher_room_url)

    def is_expired(self, now_ms: int | None = None) -> bool:
        now_ms = _now_ms() if now_ms is None else now_ms
        return self.expiration_date is not None and self.expiration_date <= now_ms

    def to_json(self, base_url: str | None = None) -> dict[str, Any]:
        """The room as stored, or as served when `base_url` is given: its links then lead to
        that base URL (MEET_BASE_URL now, not when the room was created)."""
        moderator, publisher = self.moderator_room_url, self.publisher_room_url
        if base_url is not None:
            moderator = room_url(base_url, self.room_name, self.moderator_secret)
            publisher = room_url(base_url, self.room_name, self.publisher_secret)
        data: dict[str, Any] = {
            "roomName": self.room_name,
            "roomNamePrefix": self.room_name_prefix,
            "creationDate": self.creation_date,
        }
        if self.expiration_date is not None:
            data["expirationDate"] = self.expiration_date
        if self.max_participants is not None:
            data["maxParticipants"] = self.max_participants
        data["preferences"] = self.preferences.to_json()
        data["moderatorRoomUrl"] = moderator
        data["publisherRoomUrl"] = publisher
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Room:
        return cls(
            room_name=data["roomName"],
            room_name_prefix=data.get("roomNamePrefix", ""),
            creation_date=int(data["creationDate"]),
            moderator_room_url=data["moderatorRoomUrl"],
            publisher_room_url=data["publisherRoomUrl"],
            expiration_date=_optional_int(data.get("expirationDate")),
            max_participants=_optional_int(data.get("maxParticipants")),
            preferences=RoomPreferences.from_json(data.get("preferences") or {}),
        )


def role_for_secret(room: Room, secret: str) -> Role | None:
    """The role `secret` opens in `room`, compared in constant time; None if it opens none."""
    if not secret:
        return None
    given = secret.encode()
    moderator = hmac.compare_digest(given, room.moderator_secret.encode())
    publisher = hmac.compare_digest(given, room.publisher_secret.encode())
    if moderator:
        return "moderator"
    if publisher:
        return "publisher"
    return None


def sanitize_prefix(prefix: str) -> str:
    """Whitespace runs become '-'; keep `[A-Za-z0-9_-]`, collapse dash runs, trim dashes; at
    most MAX_PREFIX characters; `room` if nothing is left."""
    kept = re.sub(r"[^A-Za-z0-9_-]", "", re.sub(r"\s+", "-", prefix))
    kept = re.sub(r"-{2,}", "-", kept).strip("-")[:MAX_PREFIX].rstrip("-")
    return kept or DEFAULT_PREFIX


@dataclass(frozen=True)
class RoomOptions:
    """What a new room is made with. It expires `expires_in` seconds after creation, or at
    `expiration_date` (ms since the epoch), or never; `created_at` (ms, default now) places it
    in time."""

    prefix: str = ""
    expires_in: int | None = None
    expiration_date: int | None = None
    max_participants: int | None = None
    preferences: RoomPreferences | None = None
    created_at: int | None = None


def new_room(config: Config, options: RoomOptions) -> Room:
    """A fresh room (not stored): random name suffix, 128-bit secrets, one per role."""
    if options.expires_in is not None and options.expires_in <= 0:
        raise BadRequest("The lifetime must be a positive number of seconds", name="Room Error")
    max_participants = options.max_participants
    if max_participants is not None and max_participants <= 0:
        raise BadRequest("maxParticipants must be a positive number", name="Room Error")
    clean_prefix = sanitize_prefix(options.prefix)
    name = f"{clean_prefix}-{random_id()}"
    moderator_secret = secrets.token_urlsafe(16)
    publisher_secret = secrets.token_urlsafe(16)
    while publisher_secret == moderator_secret:  # pragma: no cover - 2**-128
        publisher_secret = secrets.token_urlsafe(16)
    now = _now_ms() if options.created_at is None else options.created_at
    expiration_date = options.expiration_date
    if options.expires_in is not None:
        expiration_date = now + options.expires_in * 1000
    return Room(
        room_name=name,
        room_name_prefix=clean_prefix,
        creation_date=now,
        expiration_date=expiration_date,
        max_participants=max_participants,
        preferences=options.preferences or RoomPreferences(),
        moderator_room_url=room_url(config.base_url, name, moderator_secret),
        publisher_room_url=room_url(config.base_url, name, publisher_secret),
    )


async def create_room(storage: Storage, config: Config, options: RoomOptions) -> Room:
    """Create and store a room with a name no other room has."""
    while True:
        room = new_room(config, options)
        try:
            await storage.stat(room_key(room.room_name))
        except ObjectNotFound:
            break
    await store_room(storage, room)
    return room


async def store_room(storage: Storage, room: Room) -> None:
    """Store a new room and its index entry. The entry goes first: an entry whose room is
    missing is skipped (and dropped) by listings, while a room without one would not be listed."""
    await storage.write_json(_index_key(room), {})
    await storage.write_json(room_key(room.room_name), room.to_json())
    await added_marker(storage).touch()


def options_from_api(body: dict[str, Any], now_ms: int | None = None) -> RoomOptions:
    """The options of a createRoom body (its schema already checked): the checks a schema
    cannot make are a 422 naming the field."""
    now_ms = _now_ms() if now_ms is None else now_ms
    expiration = body["expirationDate"]
    if expiration <= now_ms:
        raise UnprocessableEntity(
            "Invalid request body", [("expirationDate", "Expiration date must be in the future")]
        )
    return RoomOptions(
        prefix=body.get("roomNamePrefix", ""),
        expiration_date=int(expiration),
        max_participants=body.get("maxParticipants"),
        preferences=RoomPreferences.from_json(body.get("preferences") or {}),
    )


def with_fields(room: dict[str, Any], fields: str | None) -> dict[str, Any]:
    """`room` with only the comma-separated `fields` (all without them; unknown ones ignored)."""
    if not fields:
        return room
    wanted = {name.strip() for name in fields.split(",")}
    return {key: value for key, value in room.items() if key in wanted}


async def role_of_secret(rooms: RoomCache, room_name: str, secret: str) -> Role:
    """The role `secret` opens in the room (as fresh as the token path sees it); BadRequest if
    it opens none."""
    room = await rooms.get(room_name)
    role = role_for_secret(room, secret)
    if role is None:
        raise BadRequest(f"Invalid secret for room '{room.room_name}'", name="Room Error")
    return role


async def update_preferences(storage: Storage, room_name: str, change: dict[str, Any]) -> Room:
    """Replace the preferences named in `change`, keep the others."""
    if not change.keys() & set(RoomPreferences().to_json()):
        raise UnprocessableEntity(
            "Invalid request body", [("", "name at least one of the room's preferences")]
        )
    room = await get_room(storage, room_name)
    updated = replace(room, preferences=RoomPreferences.from_json(change, room.preferences))
    await storage.write_json(room_key(room_name), updated.to_json())
    await _changed(storage)
    return updated


async def get_room(storage: Storage, room_name: str) -> Room:
    """The stored room; RoomNotFound if there is none or it has expired."""
    if not is_id(room_name):
        raise RoomNotFound(room_name[:MAX_ID_LENGTH])
    try:
        room = _parse_room(room_name, await storage.read_json(room_key(room_name)))
    except ObjectNotFound:
        raise RoomNotFound(room_name) from None
    if room.is_expired():
        raise RoomNotFound(room_name)
    return room


async def list_rooms(storage: Storage) -> list[Room]:
    """Every stored room that has not expired, oldest first (fresh from storage)."""
    return await RoomIndex(storage, lambda name: get_room(storage, name)).all()


async def index_stored_rooms(storage: Storage) -> int:
    """Index the rooms stored before the room index existed (by an earlier ovmeet or by
    OpenVidu Meet itself), once per storage; how many it indexed."""

    async def index() -> int:
        indexed = 0
        for key in await storage.list(ROOMS):
            name = room_of_key(key)
            if name is None or not is_id(name):
                continue
            try:
                room = _parse_room(name, await storage.read_json(key))
            except (ObjectNotFound, StorageError):
                continue  # gone meanwhile, or not a room document: nothing to list
            await storage.write_json(_index_key(room), {})
            indexed += 1
        return indexed

    return await index_once(storage, ROOM_INDEX_BUILT, index)


async def room_is_stored(storage: Storage, room_name: str) -> bool:
    """Whether a room of this name is stored, expired or not."""
    if not is_id(room_name):
        return False
    try:
        await storage.stat(room_key(room_name))
    except ObjectNotFound:
        return False
    return True


async def delete_room(storage: Storage, livekit: LiveKitGateway, room_name: str) -> None:
    """Delete the room, expired or not (RoomNotFound if there is none); if it is live, LiveKit
    closes it first, so nobody stays in a room that no longer exists. When LiveKit cannot be
    reached the room goes all the same (and the log says so); when it answers with an error the
    room stays. Recordings stay."""
    if not is_id(room_name):
        raise RoomNotFound(room_name[:MAX_ID_LENGTH])
    try:
        document = await storage.read_json(room_key(room_name))
    except ObjectNotFound:
        raise RoomNotFound(room_name) from None
    try:
        room: Room | None = _parse_room(room_name, document)
    except StorageError:  # not a room document: it goes all the same (listings drop its entry)
        room = None
    try:
        await livekit.close_room(room_name)
    except LiveKitError as error:
        if not error.unreachable:  # LiveKit answered, and may hold a call: try again later
            raise
        logger.warning(
            "room '%s' deleted without closing it in LiveKit (%s): whoever may still be in its "
            "call stays until they leave, and gets no new token",
            room_name,
            error.detail,
        )
    await storage.delete(room_key(room_name))
    if room is not None:
        await storage.delete(_index_key(room))
    await _changed(storage)
    await removed_marker(storage).touch()


class RoomCache:
    """Rooms read in the last CACHE_SECONDS, for the token path and the participant role (see
    `ovmeet.shared.change_markers`).

    Only rooms that exist are kept, at most `size` of them (least recently used go first):
    unknown names always reach the storage, cannot push real rooms out, and a room created
    anywhere is found at once. Expiry is checked on every use.
    """

    def __init__(self, storage: Storage, size: int = 10_000) -> None:
        self._storage = storage
        self._rooms: CachedView[str, Room] = CachedView(_marker(storage), size)

    async def get(self, room_name: str) -> Room:
        """As `get_room`, from the cache when it is fresh."""
        room = await self._rooms.get(room_name, lambda: get_room(self._storage, room_name))
        if room.is_expired():
            raise RoomNotFound(room_name)
        return room


def _marker(storage: Storage) -> ChangeMarker:
    return ChangeMarker(storage.name, "rooms")


def _index_key(room: Room) -> str:
    return room_index_key(room.room_name, room.creation_date, room.expiration_date)


async def _changed(storage: Storage) -> None:
    """Tell the room caches that a stored room changed or went."""
    await _marker(storage).touch()


def _parse_room(name: str, data: Any) -> Room:
    try:
        return Room.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise StorageError(f"the stored room '{name}' is not a valid room document") from None


def room_url(base_url: str, name: str, secret: str) -> str:
    """The link that opens room `name` with the role of `secret`."""
    return f"{base_url}/room/{name}?{urlencode({'secret': secret})}"


def _secret_of(url: str) -> str:
    values = parse_qs(urlsplit(url).query).get("secret")
    return values[0] if values else ""


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
