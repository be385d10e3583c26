"""Request bodies where their bytes arrive, for every route: never more than MAX_BODY_BYTES read,
whatever the headers say; media types compared as RFC 9110 says; a body needs a media type."""

from __future__ import annotations

from collections.abc import AsyncIterator

from connexion.exceptions import BadRequestProblem, ProblemException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024


def payload_too_large() -> ProblemException:
    return ProblemException(
        status=413,
        title="Payload Too Large",
        detail=f"the request body exceeds {MAX_BODY_BYTES} bytes",
    )


def unsupported_media_type(detail: str) -> ProblemException:
    return ProblemException(status=415, title="Unsupported Media Type", detail=detail)


def normalized_media_type(value: bytes) -> bytes:
    """`Application/JSON; charset=utf-8` -> `application/json; charset=utf-8`: type and subtype
    are case-insensitive (RFC 9110 8.3.1), and Connexion looks them up as written."""
    media_type, separator, parameters = value.partition(b";")
    return media_type.strip().lower() + separator + parameters


class RequestBodyMiddleware:
    """413 before reading a body whose Content-Length is over the limit, and as soon as the
    bytes read pass it (chunked or lying); 415 for a body without Content-Type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers, length, chunked, typed = [], None, False, False
        for name, value in scope["headers"]:
            if name == b"content-type":
                value, typed = normalized_media_type(value), True
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            headers.append((name, value))
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            raise payload_too_large()
        if (chunked or (length is not None and int(length) > 0)) and not typed:
            raise unsupported_media_type("a request body needs a Content-Type (application/json)")
        scope = {**scope, "headers": headers}
        if chunked and length is None:  # read now (bounded): every route then sees its length
            receive, scope = await read_chunked(receive, scope)
        await self.app(scope, _bounded(receive), send)


def _bounded(receive: Receive) -> Receive:
    """`receive`, failing with 413 once the body passes MAX_BODY_BYTES."""
    received = 0

    async def bounded_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise payload_too_large()
        return message

    return bounded_receive


async def read_chunked(receive: Receive, scope: Scope) -> tuple[Receive, Scope]:
    """The whole body (at most MAX_BODY_BYTES) replayed as one message, with its length."""

    async def received() -> AsyncIterator[bytes]:
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                raise BadRequestProblem(detail="the client went away before the body ended")
            yield message.get("body", b"")
            more = message.get("more_body", False)

    body = await bounded(received())
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    framing = (b"content-length", b"transfer-encoding")
    headers = [(k, v) for k, v in scope["headers"] if k.lower() not in framing]
    headers.append((b"content-length", str(len(body)).encode()))
    return replay, {**scope, "headers": headers}


async def bounded(chunks: AsyncIterator[bytes]) -> bytes:
    """The chunks joined; 413 as soon as they exceed MAX_BODY_BYTES."""
    parts, size = [], 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise payload_too_large()
        parts.append(chunk)
    return b"".join(parts)
