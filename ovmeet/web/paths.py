"""Where each API is mounted: the one place base paths are spelled."""

from __future__ import annotations

INTERNAL_API = "/meet/internal-api/v1"
PUBLIC_API = "/meet/api/v1"
# Login lives in both: the release's front end uses the public one.
AUTH_APIS = (f"{PUBLIC_API}/auth", f"{INTERNAL_API}/auth")
LIVEKIT_API = "/livekit"
HEALTH = "/meet/health"
READY = "/meet/ready"
METRICS = "/metrics"
# Paths no front-end page may take: the single-page fallback answers JSON 404 below them.
API_PREFIXES = ("/meet/api/", "/meet/internal-api/", "/livekit/", HEALTH, READY, METRICS)

# Each spec of the `ovmeet.spec` package and the base paths it is served at. Connexion matches
# a more specific base path first only when base paths are given explicitly.
SPECS: dict[str, tuple[str, ...]] = {
    "ovmeet-auth-api.yaml": AUTH_APIS,
    "openvidu-meet-api.yaml": (PUBLIC_API,),
    "openvidu-meet-internal-api.yaml": (INTERNAL_API,),
    "livekit-webhook-api.yaml": (LIVEKIT_API,),
}
