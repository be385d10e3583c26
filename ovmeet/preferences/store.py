"""Global preferences (openvidu-meet-preferences.json): security, webhooks and appearance.

Every process reads them from storage and keeps them as `ovmeet.shared.change_markers` says: a
change made through any worker is honoured by every worker of the host on the next request, and by
other hosts sharing the bucket within CACHE_SECONDS.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass
from typing import Any, cast

from ovmeet.shared.cached_view import CachedView
from ovmeet.shared.change_markers import ChangeMarker
from ovmeet.storage import ObjectNotFound, Storage, StorageError
from ovmeet.storage.keys import PREFERENCES_KEY
from ovmeet.support.config import AUTH_MODES, AuthMode, Config

SECTIONS = ("security", "webhooks", "appearance")
# Each section of the API and where it lives in the stored document (OpenVidu Meet's names).
_STORED_AS = {
    "security": "securityPreferences",
    "webhooks": "webhooksPreferences",
    "appearance": "appearancePreferences",
}


@dataclass(frozen=True)
class Preferences:
    """The stored document, read-only, with typed access to what ovmeet acts on."""

    document: dict[str, Any]

    @property
    def auth_mode(self) -> AuthMode:
        return cast(AuthMode, self.security["authentication"]["authMode"])

    @property
    def allow_room_creation(self) -> bool:
        return bool(self.security["roomCreationPolicy"]["allowRoomCreation"])

    @property
    def room_creation_requires_login(self) -> bool:
        return bool(self.security["roomCreationPolicy"]["requireAuthentication"])

    @property
    def security(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.document[_STORED_AS["security"]])

    def section(self, name: str) -> dict[str, Any]:
        """One section as the API shows it: only the fields the API names (a copy)."""
        stored = self.document[_STORED_AS[name]]
        if name == "security":
            authentication = stored["authentication"]
            policy = stored["roomCreationPolicy"]
            return {
                "authentication": {
                    "authMode": authentication["authMode"],
                    "method": {"type": authentication["method"]["type"]},
                },
                "roomCreationPolicy": {
                    "allowRoomCreation": policy["allowRoomCreation"],
                    "requireAuthentication": policy["requireAuthentication"],
                },
            }
        if name == "webhooks":
            return {"enabled": stored["enabled"], "url": stored["url"]}
        return copy.deepcopy(cast(dict[str, Any], stored))


def initial_document(config: Config) -> dict[str, Any]:
    """The preferences a first start stores: the configured auth mode and webhook target."""
    return {
        "projectId": "openvidu-meet",
        _STORED_AS["webhooks"]: {"enabled": config.webhook_enabled, "url": config.webhook_url},
        _STORED_AS["security"]: {
            "roomCreationPolicy": {"allowRoomCreation": True, "requireAuthentication": True},
            "authentication": {"authMode": config.auth_mode, "method": {"type": "single-user"}},
        },
        _STORED_AS["appearance"]: {},
    }


def updated(document: dict[str, Any], section: str, change: dict[str, Any]) -> dict[str, Any]:
    """`document` with `change` (validated by the API's schema) applied to `section`.

    Security is a partial update (each of its two parts given replaces the stored one, as the
    release does); webhooks and appearance are replaced whole.
    """
    result = copy.deepcopy(document)
    stored = _STORED_AS[section]
    if section == "security":
        parts = {
            key: change[key] for key in ("authentication", "roomCreationPolicy") if key in change
        }
        result[stored] = {**result[stored], **copy.deepcopy(parts)}
    elif section == "webhooks":
        result[stored] = {"enabled": change["enabled"], "url": change["url"]}
    else:
        result[stored] = copy.deepcopy(change)
    return result


class GlobalPreferences:
    """Reads, caches and changes the stored preferences of one process."""

    def __init__(self, storage: Storage, config: Config) -> None:
        self._storage = storage
        self._config = config
        self._marker = ChangeMarker(storage.name, "preferences")
        self._view: CachedView[str, Preferences] = CachedView(self._marker, 1)
        self._writing = asyncio.Lock()

    async def ensure_stored(self) -> None:
        """On first start, store the initial preferences."""
        try:
            await self._storage.stat(PREFERENCES_KEY)
        except ObjectNotFound:
            await self._storage.write_json(PREFERENCES_KEY, initial_document(self._config))

    async def current(self) -> Preferences:
        """The preferences in force (see the module's note on how fresh they are)."""
        return await self._view.get(PREFERENCES_KEY, self._read)

    async def auth_mode(self) -> AuthMode:
        return (await self.current()).auth_mode

    async def update(self, section: str, change: dict[str, Any]) -> Preferences:
        """Apply `change` to `section`, store the document and tell this host's processes."""
        async with self._writing:
            document = updated((await self._read()).document, section, change)
            preferences = _checked(document)
            await self._storage.write_json(PREFERENCES_KEY, document)
            await self._marker.touch()
            self._view.put(PREFERENCES_KEY, preferences)
            return preferences

    async def _read(self) -> Preferences:
        try:
            document = await self._storage.read_json(PREFERENCES_KEY)
        except ObjectNotFound:
            document = initial_document(self._config)
        if not isinstance(document, dict):
            raise StorageError(f"{PREFERENCES_KEY} in storage is not a JSON object")
        # A document written by an older release may lack sections: take them from the start.
        return _checked({**initial_document(self._config), **document})


def _checked(document: dict[str, Any]) -> Preferences:
    """`document` as Preferences, or StorageError naming what is wrong with it."""
    preferences = Preferences(document)
    try:
        mode = preferences.auth_mode
        for name in SECTIONS:
            preferences.section(name)
    except (KeyError, TypeError) as error:
        raise StorageError(f"{PREFERENCES_KEY} in storage lacks {error}") from None
    if mode not in AUTH_MODES:
        raise StorageError(
            f"{PREFERENCES_KEY} in storage has authMode {mode!r}; expected one of "
            + ", ".join(AUTH_MODES)
        )
    return preferences
