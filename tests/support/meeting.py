"""People in a call: the PyPI `livekit` SDK joins a real LiveKit server with a token ovmeet
issued, and keeps what it sees (data messages, who came and went, why it was disconnected)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc

WAIT = 15.0


@dataclass
class Message:
    topic: str
    payload: Any
    from_server: bool


@dataclass
class Attendee:
    """One SDK client in a room."""

    room: rtc.Room
    messages: list[Message] = field(default_factory=list)
    disconnect_reason: int | None = None
    subscribed: list[str] = field(default_factory=list)  # identities whose track arrived
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def identity(self) -> str:
        return str(self.room.local_participant.identity)

    def topics(self) -> list[str]:
        return [message.topic for message in self.messages]

    async def until(self, check: Callable[[], Any], within: float = WAIT) -> Any:
        """The first truthy `check()`, re-checked on every event; TimeoutError after `within` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (result := check()):
            if loop.time() >= deadline:
                raise TimeoutError
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)
        return result

    async def message(self, topic: str, within: float = WAIT) -> Message:
        def found() -> Message | None:
            return next((m for m in self.messages if m.topic == topic), None)

        try:
            return await self.until(found, within)  # type: ignore[no-any-return]
        except TimeoutError:
            raise AssertionError(
                f"{self.identity} got no {topic!r} within {within} s (got {self.topics()})"
            ) from None

    async def disconnected(self, within: float = WAIT) -> int:
        try:
            await self.until(lambda: self.disconnect_reason is not None, within)
        except TimeoutError:
            raise AssertionError(f"{self.identity} is still connected after {within} s") from None
        assert self.disconnect_reason is not None
        return self.disconnect_reason

    async def sees(self, identity: str, within: float = WAIT) -> None:
        try:
            await self.until(lambda: identity in self.room.remote_participants, within)
        except TimeoutError:
            raise AssertionError(
                f"{self.identity} does not see {identity} "
                f"(sees {list(self.room.remote_participants)})"
            ) from None

    async def receives_track_of(self, identity: str, within: float = WAIT) -> None:
        try:
            await self.until(lambda: identity in self.subscribed, within)
        except TimeoutError:
            raise AssertionError(f"{self.identity} got no track of {identity}") from None

    async def leave(self) -> None:
        await self.room.disconnect()

    def _note(self) -> None:
        self._changed.set()


async def join(url: str, token: str) -> Attendee:
    """Connect to the room the token names (auto-subscribe on)."""
    room = rtc.Room()
    attendee = Attendee(room)

    @room.on("data_received")
    def _data(packet: rtc.DataPacket) -> None:
        try:
            payload: Any = json.loads(packet.data)
        except ValueError:
            payload = packet.data
        attendee.messages.append(Message(packet.topic or "", payload, packet.participant is None))
        attendee._note()

    @room.on("disconnected")
    def _gone(reason: int) -> None:
        attendee.disconnect_reason = reason
        attendee._note()

    @room.on("track_subscribed")
    def _track(_track: Any, _publication: Any, participant: rtc.RemoteParticipant) -> None:
        attendee.subscribed.append(participant.identity)
        attendee._note()

    for event in ("participant_connected", "participant_disconnected"):
        room.on(event, lambda *_: attendee._note())
    await room.connect(url, token)
    return attendee


async def publish_tone(attendee: Attendee) -> rtc.AudioSource:
    """Publish a synthetic microphone track (a 440 Hz tone) and keep feeding it."""
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await attendee.room.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )
    frame = rtc.AudioFrame.create(48000, 1, 480)
    samples = frame.data  # 16-bit samples
    for i in range(480):  # a 444 Hz square wave
        samples[i] = 8000 if (i // 54) % 2 else -8000

    async def feed() -> None:
        while True:
            await source.capture_frame(frame)

    task = asyncio.ensure_future(feed())
    attendee.room.on("disconnected", lambda *_: task.cancel())
    return source
