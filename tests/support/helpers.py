"""Small client-side helpers, for a server process and for the in-process app alike."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx
from livekit.api import AccessToken, TokenVerifier, VideoGrants
from livekit.api.access_token import Claims
from playwright.sync_api import Browser, sync_playwright

from tests.support.processes import ADMIN, LIVEKIT_KEY, LIVEKIT_SECRET

# Headless Chromium on a machine with no network but loopback: no background fetches, no sync.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# A browser in a call: a fake camera and microphone, allowed without asking, and loopback ICE
# candidates (libwebrtc leaves them out otherwise; the test LiveKit server has only those).
CALL_FLAGS = [
    *CHROMIUM_FLAGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


@contextmanager
def chromium(flags: list[str]) -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright."""
    executable = shutil.which("chromium")
    assert executable, "chromium is required (make system-deps installs it)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=flags)
        try:
            yield launched
        finally:
            launched.close()


class Target(Protocol):
    """An ovmeet to talk to: its internal API's URL and a client (no cookie jar) to reach it."""

    @property
    def api(self) -> str: ...

    @property
    def client(self) -> httpx.Client: ...


def secret(room: dict[str, Any], role: str) -> str:
    url = room["moderatorRoomUrl"] if role == "moderator" else room["publisherRoomUrl"]
    return str(parse_qs(urlsplit(url).query)["secret"][0])


def token_body(room: dict[str, Any], name: str, role: str = "publisher") -> dict[str, str]:
    return {"roomName": room["roomName"], "participantName": name, "secret": secret(room, role)}


def set_cookies(response: httpx.Response) -> dict[str, dict[str, str]]:
    """Each Set-Cookie header as {name: {"value": ..., attribute (lower case): value}}."""
    cookies = {}
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        parsed = {"value": value}
        for attribute in attributes:
            key, _, attribute_value = attribute.partition("=")
            parsed[key.lower()] = attribute_value
        cookies[name] = parsed
    return cookies


def login(target: Target, credentials: tuple[str, str] = ADMIN) -> dict[str, str]:
    """Log in; the cookies it set, by name."""
    response = target.client.post(
        f"{target.api}/auth/login",
        json={"username": credentials[0], "password": credentials[1]},
        headers={"x-forwarded-for": "192.0.2.10"},  # keep the tests' own throttle bucket apart
    )
    assert response.status_code == 200, response.text
    return {name: c["value"] for name, c in set_cookies(response).items()}


def access_cookie(target: Target, credentials: tuple[str, str] = ADMIN) -> dict[str, str]:
    return {"OvMeetAccessToken": login(target, credentials)["OvMeetAccessToken"]}


def request_token(
    target: Target,
    body: dict[str, str],
    cookies: dict[str, str] | None = None,
    refresh: bool = False,
) -> httpx.Response:
    path = "/participants/token/refresh" if refresh else "/participants/token"
    return target.client.post(f"{target.api}{path}", json=body, headers=cookie_header(cookies))


def cookie_header(cookies: dict[str, str] | None) -> dict[str, str]:
    """A Cookie header (httpx's per-request `cookies=` is deprecated)."""
    if not cookies:
        return {}
    return {"cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def livekit_token(room: str, identity: str, *, moderator: bool = False, ttl: int = 3600) -> str:
    """A participant token as ovmeet would sign it (with the LiveKit secret); a negative
    `ttl` makes one that expired that many seconds ago."""
    role = "moderator" if moderator else "publisher"
    grants = VideoGrants(room_join=True, room=room, room_admin=True if moderator else None)
    return (
        AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
        .with_identity(identity)
        .with_metadata(json.dumps({"role": role}))
        .with_grants(grants)
        .with_ttl(timedelta(seconds=ttl))
        .to_jwt()
    )


def participant_claims(token: str) -> Claims:
    """What a participant token ovmeet issued says, its LiveKit signature checked."""
    return TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(token)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition `text` (0 if absent)."""
    wanted = {f'{k}="{v}"' for k, v in labels.items()}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            sample, _, value = line.rpartition(" ")
            found = set(re.findall(r'\w+="[^"]*"', sample))
            if wanted <= found and sample.split("{")[0] == name:
                return float(value)
    return 0.0


# What instances are told through Redis, they act on within this of the change's answer
# (measured: a few ms; without Redis, the caches' own bound is a second).
RELAYED_WITHIN = 0.25


def until(check: Callable[[], bool], within: float) -> float:
    """Seconds until `check()` holds (asked at once, then every 10 ms); fails after `within`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, f"not within {within} s"
        time.sleep(0.01)
    return time.monotonic() - started
