"""The one error hierarchy: each error knows its HTTP status and renders as {name?, message}."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An error a client can act on; `status` is the HTTP status it is answered with."""

    status = 500
    default_name: str | None = None

    def __init__(
        self,
        message: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.name = name if name is not None else self.default_name
        self.headers = dict(headers or {})

    def body(self) -> dict[str, str]:
        """The JSON body: `message`, and `name` when the error has one."""
        if self.name:
            return {"name": self.name, "message": self.message}
        return {"message": self.message}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class RangeNotSatisfiable(ApiError):
    status = 416

    def __init__(self, size: int) -> None:
        super().__init__(
            "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"}
        )


class TooManyRequests(ApiError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


class DependencyError(ApiError):
    """A service ovmeet depends on (LiveKit, storage) failed; the message names it."""

    status = 500


class RoomNotFound(NotFound):
    default_name = "Room Error"

    def __init__(self, room_name: str) -> None:
        super().__init__(f"The room '{room_name}' does not exist")


class ParticipantError(ApiError):
    """Errors about a participant carry OpenVidu Meet's name 'Participant Error'."""

    default_name = "Participant Error"


class ParticipantNotFound(ParticipantError):
    status = 404


class ParticipantConflict(ParticipantError):
    status = 409
