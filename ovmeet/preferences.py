"""Global preferences (openvidu-meet-preferences.json): where the auth mode lives at run time."""

from __future__ import annotations

import time
from typing import Any, cast

from ovmeet.config import AUTH_MODES, AuthMode
from ovmeet.storage import ObjectNotFound, Storage, StorageError
from ovmeet.storage.keys import PREFERENCES_KEY

CACHE_SECONDS = 1.0


class GlobalPreferences:
    """The stored preferences; the auth mode is re-read at most once per CACHE_SECONDS."""

    def __init__(self, storage: Storage, initial_auth_mode: AuthMode) -> None:
        self._storage = storage
        self._initial_auth_mode = initial_auth_mode
        self._cached: AuthMode | None = None
        self._cached_at = 0.0

    async def ensure_stored(self) -> None:
        """On first start, store the preferences with the configured auth mode."""
        try:
            await self._storage.stat(PREFERENCES_KEY)
        except ObjectNotFound:
            await self._storage.write_json(PREFERENCES_KEY, _document({}, self._initial_auth_mode))

    async def auth_mode(self) -> AuthMode:
        """The auth mode in force (stored value; the configured one if nothing is stored)."""
        now = time.monotonic()
        if self._cached is None or now - self._cached_at >= CACHE_SECONDS:
            self._cached = _auth_mode_of(await self._read())
            self._cached_at = now
        return self._cached

    async def _read(self) -> dict[str, Any]:
        try:
            document = await self._storage.read_json(PREFERENCES_KEY)
        except ObjectNotFound:
            return _document({}, self._initial_auth_mode)
        if not isinstance(document, dict):
            raise StorageError(f"{PREFERENCES_KEY} in storage is not a JSON object")
        return document


def _auth_mode_of(document: dict[str, Any]) -> AuthMode:
    mode = document.get("securityPreferences", {}).get("authentication", {}).get("authMode")
    if mode not in AUTH_MODES:
        raise StorageError(
            f"{PREFERENCES_KEY} in storage has authMode {mode!r}; expected one of "
            + ", ".join(AUTH_MODES)
        )
    return cast(AuthMode, mode)


def _document(document: dict[str, Any], mode: AuthMode) -> dict[str, Any]:
    """`document` with the auth mode set, keeping every other preference."""
    security = dict(document.get("securityPreferences") or {})
    authentication = dict(security.get("authentication") or {})
    authentication["authMode"] = mode
    authentication.setdefault("method", {"type": "single-user"})
    security["authentication"] = authentication
    return {**document, "securityPreferences": security}
