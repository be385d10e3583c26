"""One typed client of ovmeet's APIs for the tests: the calls the release's clients make, by
name, on a server process or an in-process app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from tests.support.helpers import cookie_header, request_token, token_body

FAR_FUTURE_MS = 4_000_000_000_000  # a room's expirationDate that no test outlives


class Server(Protocol):
    """An ovmeet: where it listens and a client (no cookie jar) to reach it."""

    @property
    def base_url(self) -> str: ...

    @property
    def client(self) -> httpx.Client: ...


@dataclass(frozen=True)
class MeetClient:
    """The public API with `api_key` (when given), and what a participant does."""

    server: Server
    api_key: str | None = None

    @property
    def public_api(self) -> str:
        return f"{self.server.base_url}/meet/api/v1"

    @property
    def internal_api(self) -> str:
        return f"{self.server.base_url}/meet/internal-api/v1"

    def public(self, method: str, path: str, **options: Any) -> httpx.Response:
        """A call to the public API, with the API key unless `headers` say otherwise."""
        key = {"x-api-key": self.api_key} if self.api_key else {}
        headers = {**key, **options.pop("headers", {})}
        return self.server.client.request(
            method, f"{self.public_api}{path}", headers=headers, **options
        )

    def create_room(self, **body: Any) -> dict[str, Any]:
        """A room made through the public API (it lasts beyond the test by default)."""
        made = self.public("POST", "/rooms", json={"expirationDate": FAR_FUTURE_MS, **body})
        assert made.status_code == 200, made.text
        return made.json()  # type: ignore[no-any-return]

    def participant_token(self, room: dict[str, Any], name: str, role: str = "publisher") -> str:
        """A participant token for `name` in `room`, with the secret of `role`."""
        answer = request_token(self, token_body(room, name, role))
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def moderator(self, room: dict[str, Any], name: str = "mod") -> dict[str, str]:
        """The Cookie header of a moderator of `room`."""
        token = self.participant_token(room, name, "moderator")
        return cookie_header({"OvMeetParticipantToken": token})

    def start_recording(self, room: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        return self.public(
            "POST", "/recordings", json={"roomId": room["roomName"]}, headers=headers
        )

    def stop_recording(self, recording_id: str, headers: dict[str, str]) -> httpx.Response:
        return self.public("PUT", f"/recordings/{recording_id}", json={}, headers=headers)

    def recording(self, recording_id: str) -> httpx.Response:
        return self.public("GET", f"/recordings/{recording_id}")

    # What `request_token` and `login` need of a target.
    @property
    def api(self) -> str:
        return self.internal_api

    @property
    def client(self) -> httpx.Client:
        return self.server.client
