"""uvicorn's httptools protocol with a cap on the request head and JSON protocol errors.

With httptools, uvicorn reads request heads of any size (a 50 MB Cookie header is buffered
whole). This protocol answers 431 once the request line and headers pass MAX_HEAD_BYTES, and
answers malformed requests with a JSON 400 like every other error.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 32 * 1024
_REASONS = {400: "Bad Request", 431: "Request Header Fields Too Large"}


class _HeadTooLarge(Exception):
    """Raised in a parser callback; httptools turns it into a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_done = False
        self._head_bytes = 0  # parsed: request line and headers of this request
        self._raw_bytes = 0  # received while the head is incomplete

    def data_received(self, data: bytes) -> None:
        if not self._head_done:
            self._raw_bytes += len(data)
        super().data_received(data)
        # One header still unfinished after MAX_HEAD_BYTES: httptools would keep buffering it.
        too_long = not self._head_done and self._raw_bytes > MAX_HEAD_BYTES
        if too_long and not self.transport.is_closing():
            self._send_error(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._head_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_done = False
        self._raw_bytes = 0

    def send_400_response(self, msg: str) -> None:
        self._send_error(431 if self._head_bytes > MAX_HEAD_BYTES else 400, msg)

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge

    def _send_error(self, status: int, detail: str | None = None) -> None:
        detail = (
            detail
            if status == 400 and detail
            else f"the request head exceeds {MAX_HEAD_BYTES} bytes"
        )
        body = json.dumps({"message": f"{_REASONS[status]}: {detail}"}).encode()
        head = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()]
        head += [
            name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers
        ]
        head.append(b"content-type: application/json\r\nconnection: close\r\n")
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()
