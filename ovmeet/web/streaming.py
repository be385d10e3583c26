"""A streaming response that fails cleanly before its first byte and always releases its source."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ovmeet.storage import ByteStream
from ovmeet.support.metrics import BYTES_STREAMED, OPEN_STREAMS


class ByteStreamResponse(StreamingResponse):
    """Streams a ByteStream.

    The first chunk is read before the status line is sent, so a storage that cannot deliver
    still gets a JSON error; later failures close the connection (a short body, never a wrong
    one). The file or S3 connection is released however the response ends, client gone included.
    A body of one chunk (most seeks) is sent as it is, without the streaming machinery.
    """

    def __init__(self, stream: ByteStream, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(stream, status_code=status_code, headers=headers)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        OPEN_STREAMS.inc()
        try:
            first = await anext(self.stream, b"")
            if self.stream.exhausted:
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                await send({"type": "http.response.body", "body": first})
                BYTES_STREAMED.inc(len(first))
                return
            self.body_iterator = _counted(_prepend(first, self.stream))
            await super().__call__(scope, receive, send)
        finally:
            OPEN_STREAMS.dec()
            with anyio.CancelScope(shield=True):  # runs even when the client's leaving cancels us
                await self.stream.aclose()


async def _prepend(first: bytes, rest: ByteStream) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


async def _counted(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield chunk
        BYTES_STREAMED.inc(len(chunk))  # once handed to the server: sent, or the client left
