"""uvicorn's httptools protocol, bounded: head size, head and body time, open connections.

With httptools, uvicorn reads request heads of any size (a 50 MB Cookie header is buffered
whole) and waits for ever for a head that never comes. This protocol
- answers 431 once the request line and headers pass MAX_HEAD_BYTES;
- drops a connection whose request head has not arrived within the head timeout (408 if it had
  begun), or whose request body has not within the body timeout after its head;
- keeps at most `max_connections` open: a new one beyond that closes the connection that has
  waited longest for a request head, or is refused with 503 if every connection is busy;
- caps what the kernel buffers for each client (SO_SNDBUF): a recording streamed to a client
  that does not read stops being read from storage once that much waits for it, instead of
  the 4 MB or more the kernel would otherwise take, per connection;
- answers malformed requests with a JSON 400, like every other error.
Idle time between requests on a kept-alive connection is uvicorn's `timeout_keep_alive`.

uvicorn takes the protocol class through its public `http` option, but the state this class
works with is undocumented: it is listed in `ovmeet.support.reaches` (checked at start; uvicorn
is pinned to the version it was written against).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ovmeet.support.config import Config
from ovmeet.web.errors import sentence
from ovmeet.web.headers import NO_FRAMES, SECURITY_HEADERS

MAX_HEAD_BYTES = 32 * 1024
_REASONS = {
    400: "Bad Request",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class ConnectionLimits:
    head_timeout: float
    body_timeout: float
    max_connections: int
    send_buffer: int  # bytes the kernel may hold for a client (SO_SNDBUF); 0: its own choice

    @classmethod
    def of(cls, config: Config) -> ConnectionLimits:
        return cls(
            config.http_head_timeout,
            config.http_body_timeout,
            config.max_connections,
            config.http_send_buffer_kib * 1024,
        )


class _HeadTooLarge(Exception):
    """Raised in a parser callback; httptools turns it into a parser error."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits()
        self._head_done = False
        self._head_bytes = 0  # parsed: request line and headers of this request
        self._raw_bytes = 0  # received while the head is incomplete
        self._waiting_since = 0.0  # since when it has waited for a request head
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None and self._limits.send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._limits.send_buffer)
        self._wait_for_head()
        if len(self.connections) > self._limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._head_done:
            self._raw_bytes += len(data)
            if self._head_timer is None:  # the first bytes of the next request's head
                self._wait_for_head()
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
        self._cancel_timers()
        self._body_timer = self.loop.call_later(self._limits.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_timers()
        super().on_message_complete()
        self._head_done = False
        self._raw_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = self.loop.time()  # idle now: uvicorn's keep-alive timer runs

    def send_400_response(self, msg: str) -> None:
        self._send_error(431 if self._head_bytes > MAX_HEAD_BYTES else 400, msg)

    def _wait_for_head(self) -> None:
        self._waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self._limits.head_timeout, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._head_done:
            return
        if self._raw_bytes:
            self._send_error(
                408, f"the request head did not arrive within {_s(self._limits.head_timeout)}"
            )
        else:
            self.transport.close()

    def _body_late(self) -> None:
        self._body_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_started:
            self._send_error(
                408, f"the request body did not arrive within {_s(self._limits.body_timeout)}"
            )
        else:
            self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _idle(self) -> bool:
        """Whether no request of this connection is being answered."""
        return not self._head_done and (self.cycle is None or self.cycle.response_complete)

    def _make_room(self) -> None:
        """Close the connection that has waited longest for a request head; refuse this one
        with 503 if all the others are busy answering."""
        idle = [
            other
            for other in self.connections
            if other is not self and isinstance(other, BoundedHttpToolsProtocol) and other._idle()
        ]
        if idle:
            oldest = min(idle, key=lambda other: other._waiting_since)
            oldest.transport.close()
        else:
            self._send_error(503, f"more than {self._limits.max_connections} open connections")

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise _HeadTooLarge

    def _send_error(self, status: int, detail: str | None = None) -> None:
        if status == 431 or detail is None:
            detail = f"the request head exceeds {MAX_HEAD_BYTES} bytes"
        name = "Server Error" if status >= 500 else "Request Error"
        body = json.dumps({"name": name, "message": sentence(detail)}).encode()
        head = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n".encode()]
        head += [
            name + b": " + value + b"\r\n"
            for name, value in (*self.server_state.default_headers, *SECURITY_HEADERS, *NO_FRAMES)
        ]
        head.append(b"content-type: application/json\r\nconnection: close\r\n")
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _s(seconds: float) -> str:
    return f"{seconds:g} s"


@functools.cache
def _limits() -> ConnectionLimits:
    """From the environment `ovmeet serve` (and each of its worker processes) reads."""
    return ConnectionLimits.of(Config.from_env(os.environ))
