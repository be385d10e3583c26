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
WEBCOMPONENT = "/meet/v1/openvidu-meet.js"  # the release's <openvidu-meet> element, to embed
FONTS = "/meet/fonts"  # the front end's web fonts, when ovmeet serves them
# Paths no front-end page may take: the single-page fallback answers JSON 404 below them.
NOT_FRONT_END = ("/meet", "/livekit", METRICS)


def is_front_end(path: str) -> bool:
    """Whether `path` is the front end's (a page, or one of its files), not ovmeet's own."""
    return not any(path == prefix or path.startswith(prefix + "/") for prefix in NOT_FRONT_END)


# Each spec of the `ovmeet.spec` package and the base paths it is served at. Connexion matches
# a more specific base path first only when base paths are given explicitly.
SPECS: dict[str, tuple[str, ...]] = {
    "ovmeet-auth-api.yaml": AUTH_APIS,
    "openvidu-meet-api.yaml": (PUBLIC_API,),
    "openvidu-meet-internal-api.yaml": (INTERNAL_API,),
    "livekit-webhook-api.yaml": (LIVEKIT_API,),
}
