"""The one error hierarchy: each error knows its HTTP status and renders as {name, message}.

The naming rule (docs/contract.md, "Errors"): `name` is the subject of the mistake followed by
"Error" (Request, Authentication, Room, Participant, Recording, Preferences, LiveKit, Storage,
Server); `message` is one sentence that starts with a capital letter, names what it is about,
says what to do where something can be done, and never repeats the status's reason phrase.
"""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """An error a client can act on; `status` is the HTTP status it is answered with."""

    status = 500
    default_name: str = "Server Error"

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

    def body(self) -> dict[str, object]:
        """What the client reads: {name, message}."""
        return {"name": self.name, "message": self.message}


class BadRequest(ApiError):
    status = 400
    default_name = "Request Error"


class Unauthorized(ApiError):
    status = 401
    default_name = "Authentication Error"


class Forbidden(ApiError):
    status = 403
    default_name = "Authentication Error"


class NotFound(ApiError):
    status = 404
    default_name = "Request Error"


class Conflict(ApiError):
    status = 409


class UnprocessableEntity(ApiError):
    """Input that is well-formed but invalid, field by field (the public API's 422 shape)."""

    status = 422

    def __init__(self, message: str, details: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.details = details

    def __str__(self) -> str:
        return "; ".join(
            [self.message, *(f"{field}: {text}" if field else text for field, text in self.details)]
        )

    def body(self) -> dict[str, object]:
        return {
            "error": "Unprocessable Entity",
            "message": self.message,
            "details": [{"field": field, "message": text} for field, text in self.details],
        }


class RangeNotSatisfiable(ApiError):
    status = 416
    default_name = "Recording Error"

    def __init__(self, size: int) -> None:
        super().__init__(
            "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"}
        )


class TooManyRequests(ApiError):
    status = 429
    default_name = "Authentication Error"

    def __init__(self, message: str, retry_after: int, *, name: str | None = None) -> None:
        super().__init__(message, name=name, headers={"Retry-After": str(retry_after)})


class DependencyError(ApiError):
    """A service ovmeet depends on (LiveKit, storage) failed: 503, as the same request may
    succeed once it is back.

    The client is told which one (`message`); where and why (`detail`: endpoints, paths, causes)
    goes only to the log and to the command line, which is also what `str()` gives.
    """

    status = 503

    def __init__(self, message: str, detail: str, *, name: str | None = None) -> None:
        super().__init__(message, name=name)
        self.detail = detail

    def __str__(self) -> str:
        return self.detail


class RoomNotFound(NotFound):
    default_name = "Room Error"

    def __init__(self, room_name: str) -> None:
        super().__init__(f"The room '{room_name}' does not exist")


class RoomFull(ApiError):
    """The room has as many participants as it allows. 406, as the release's front end shows
    that status as "You are not authorized to join this room" (409 would send the person back to
    choose another name, anything else says the room name is not valid)."""

    status = 406
    default_name = "Room Error"


class ParticipantError(ApiError):
    """Errors about a participant carry OpenVidu Meet's name 'Participant Error'."""

    default_name = "Participant Error"


class ParticipantNotFound(ParticipantError):
    status = 404


class ParticipantConflict(ParticipantError):
    status = 409
