"""A TCP relay that counts what flows through it and can cut every connection on demand.

Put between ovmeet and SeaweedFS, it shows how much ovmeet really reads from S3, whether a
connection was closed, and turns S3 off mid-request, all over real sockets. With a rate, it is
a slow network: a browser behind it cannot have fetched a whole file before it seeks.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Relayed:
    """One client connection: bytes sent down to the client, and whether it has ended."""

    bytes_down: int = 0
    closed: bool = False
    sockets: list[socket.socket] = field(default_factory=list)


class Relay:
    def __init__(self, target_port: int, *, bytes_per_second: int | None = None) -> None:
        self.target = ("127.0.0.1", target_port)
        self.bytes_per_second = bytes_per_second
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.connections: list[Relayed] = []
        self.accepting = True
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.accepting:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            relayed = Relayed(sockets=[client, upstream])
            with self._lock:
                self.connections.append(relayed)
            for source, sink, down in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(
                    target=self._pump, args=(source, sink, relayed, down), daemon=True
                ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, relayed: Relayed, down: bool
    ) -> None:
        """Copy until either side ends (downstream at the rate, if any), then end both."""
        started = time.monotonic()
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
                if down:
                    relayed.bytes_down += len(data)
                    if self.bytes_per_second:
                        due = started + relayed.bytes_down / self.bytes_per_second
                        time.sleep(max(0.0, due - time.monotonic()))
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        relayed.closed = True

    def cut(self, *, refuse_new: bool) -> None:
        """Drop every open connection; with `refuse_new`, drop new ones as they come."""
        self.accepting = not refuse_new
        with self._lock:
            for relayed in self.connections:
                for sock in relayed.sockets:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.cut(refuse_new=True)
        self.listener.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
