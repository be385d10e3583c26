"""A streaming response that always releases its byte stream, even when the client leaves."""

from __future__ import annotations

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ovmeet.storage import ByteStream


class ByteStreamResponse(StreamingResponse):
    """Streams a ByteStream; the file or S3 connection is closed however the response ends."""

    def __init__(self, stream: ByteStream, status_code: int, headers: dict[str, str]) -> None:
        super().__init__(stream, status_code=status_code, headers=headers)
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.stream.aclose()
