"""Where each API is mounted: the one place base paths are spelled."""

from __future__ import annotations

INTERNAL_API = "/meet/internal-api/v1"
AUTH_API = f"{INTERNAL_API}/auth"
LIVEKIT_API = "/livekit"
HEALTH = "/meet/health"

# Each spec of the `ovmeet.spec` package and its base path. Connexion matches a more specific
# base path first only when base paths are given explicitly.
SPECS = {
    "ovmeet-auth-api.yaml": AUTH_API,
    "openvidu-meet-internal-api.yaml": INTERNAL_API,
    "livekit-webhook-api.yaml": LIVEKIT_API,
}
