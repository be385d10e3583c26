"""A LiveKit stand-in that speaks LiveKit's real server API protocol.

Twirp over HTTP (`POST /twirp/livekit.RoomService/<Method>`), protobuf bodies from
livekit-protocol, `Authorization: Bearer <jwt>` verified as the LiveKit server does (signature
with the API secret, the roomAdmin grant for the request's room, 401 `unauthenticated`
otherwise), and LiveKit's Twirp error JSON. Tests seed participants and inject faults through
its methods; `GET /_standin/calls` lists the calls it answered (bench/tokens.py waits on it).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from google.protobuf.message import DecodeError
from livekit.api import TokenVerifier
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.room import (
    DeleteRoomRequest,
    DeleteRoomResponse,
    ListParticipantsRequest,
    ListParticipantsResponse,
    RemoveParticipantResponse,
    RoomParticipantIdentity,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PROTOBUF = "application/protobuf"


@dataclass
class Fault:
    status: int = 0  # answer every RoomService call with this status (0: behave)
    delay: float = 0.0  # seconds to hang before answering 503


@dataclass
class LiveKitStandIn:
    api_key: str
    api_secret: str
    participants: dict[str, dict[str, ParticipantInfo]] = field(default_factory=dict)
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    fault: Fault = field(default_factory=Fault)

    def add_participant(self, room: str, identity: str) -> None:
        self.participants.setdefault(room, {})[identity] = ParticipantInfo(
            sid=f"PA_{identity}", identity=identity, name=identity, state=ParticipantInfo.ACTIVE
        )

    def has_participant(self, room: str, identity: str) -> bool:
        return identity in self.participants.get(room, {})

    def reset(self) -> None:
        self.participants.clear()
        self.calls.clear()
        self.fault = Fault()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/twirp/livekit.RoomService/{method}", self._twirp, methods=["POST"]),
                Route("/_standin/calls", self._calls, methods=["GET"]),
            ]
        )

    async def _twirp(self, request: Request) -> Response:
        method = request.path_params["method"]
        if request.headers.get("content-type", "").split(";")[0] != PROTOBUF:
            return _error(400, "malformed", "this stand-in speaks application/protobuf")
        body = await request.body()
        fault = self.fault
        if fault.delay:  # a hung server: answer late, and without touching any state
            await asyncio.sleep(fault.delay)
            return _error(503, "unavailable", "injected delay")
        if fault.status:
            return _error(fault.status, "internal", "injected fault")
        handler = {
            "GetParticipant": self._get_participant,
            "RemoveParticipant": self._remove_participant,
            "ListParticipants": self._list_participants,
            "DeleteRoom": self._delete_room,
        }.get(method)
        if handler is None:
            return _error(404, "bad_route", f"no handler for RoomService/{method}")
        try:
            return handler(request, body)
        except DecodeError:
            return _error(400, "malformed", "the body is not a protobuf message")

    def _authorized(self, request: Request, room: str) -> bool:
        """A token signed with the API secret, with the roomAdmin grant for `room`."""
        video = self._grants(request)
        return bool(video and video.room_admin and video.room == room)

    def _grants(self, request: Request) -> Any:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None
        try:
            return TokenVerifier(self.api_key, self.api_secret).verify(header[7:]).video
        except Exception:
            return None

    def _get_participant(self, request: Request, body: bytes) -> Response:
        ask = RoomParticipantIdentity.FromString(body)
        if not self._authorized(request, ask.room):
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("GetParticipant", ask.room, ask.identity))
        found = self.participants.get(ask.room, {}).get(ask.identity)
        if found is None:
            return _error(404, "not_found", "participant not found")
        return _protobuf(found)

    def _remove_participant(self, request: Request, body: bytes) -> Response:
        ask = RoomParticipantIdentity.FromString(body)
        if not self._authorized(request, ask.room):
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("RemoveParticipant", ask.room, ask.identity))
        if self.participants.get(ask.room, {}).pop(ask.identity, None) is None:
            return _error(404, "not_found", "participant not found")
        return _protobuf(RemoveParticipantResponse())

    def _list_participants(self, request: Request, body: bytes) -> Response:
        ask = ListParticipantsRequest.FromString(body)
        if not self._authorized(request, ask.room):
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("ListParticipants", ask.room, ""))
        people = list(self.participants.get(ask.room, {}).values())
        return _protobuf(ListParticipantsResponse(participants=people))

    def _delete_room(self, request: Request, body: bytes) -> Response:
        ask = DeleteRoomRequest.FromString(body)
        video = self._grants(request)
        if not (video and video.room_create):  # LiveKit asks for roomCreate here
            return _error(401, "unauthenticated", "permissions denied")
        self.calls.append(("DeleteRoom", ask.room, ""))
        if self.participants.pop(ask.room, None) is None:
            return _error(404, "not_found", "room not found")
        return _protobuf(DeleteRoomResponse())

    async def _calls(self, _request: Request) -> Response:
        return JSONResponse([list(call) for call in self.calls])


def _protobuf(message: Any) -> Response:
    return Response(message.SerializeToString(), media_type=PROTOBUF)


def _error(status: int, code: str, msg: str) -> Response:
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


class ThreadedServer:
    """Runs an ASGI app with uvicorn on a background thread, on 127.0.0.1 (port 0: any)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self) -> ThreadedServer:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread ended before it listened")
            threading.Event().wait(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description="LiveKit RoomService stand-in")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--api-secret", required=True)
    args = parser.parse_args()
    standin = LiveKitStandIn(args.api_key, args.api_secret)
    uvicorn.run(standin.app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
