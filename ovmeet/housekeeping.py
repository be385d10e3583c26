"""Periodic work: recordings LiveKit no longer runs are ended, expired rooms deleted, and
revocations of expired tokens forgotten; every MEET_GC_INTERVAL in each process, or once from
the command line. Safe in every process at once."""

from __future__ import annotations

import asyncio
import logging
import time

from ovmeet.auth.revocations import Revocations
from ovmeet.livekit.gateway import LiveKitGateway
from ovmeet.recordings.recorder import Recorder
from ovmeet.rooms.index import read_index
from ovmeet.rooms.store import delete_room
from ovmeet.storage import Storage
from ovmeet.support.errors import DependencyError, RoomNotFound

logger = logging.getLogger("ovmeet.housekeeping")


class Housekeeping:
    """The clean-up one process runs in the background."""

    def __init__(
        self,
        storage: Storage,
        livekit: LiveKitGateway,
        recorder: Recorder,
        revocations: Revocations,
        interval: float,
    ) -> None:
        self._storage, self._livekit = storage, livekit
        self._recorder, self._revocations = recorder, revocations
        self._interval = interval

    async def collect_garbage(self) -> dict[str, list[str] | int]:
        """One round: what it ended, freed, removed and forgot."""
        abandoned = await self._recorder.end_abandoned()
        return {
            "abortedRecordings": abandoned.aborted,
            "endedRecordings": abandoned.ended,
            "releasedRooms": abandoned.released,
            "removedRooms": await self._remove_expired_rooms(),
            "forgottenRevocations": await self._revocations.forget_expired(),
        }

    async def run(self) -> None:
        """A round every interval, for as long as the app runs."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                done = await self.collect_garbage()
            except Exception:  # the next round tries again
                logger.exception("garbage collection failed")
                continue
            if any(done.values()):
                logger.info("garbage collection: %s", done)

    async def _remove_expired_rooms(self) -> list[str]:
        """Delete the rooms past their expiration date (their recordings stay)."""
        removed = []
        now_ms = time.time_ns() // 1_000_000
        for entry in await read_index(self._storage):  # the index names expiry: no room is read
            if not entry.is_expired(now_ms):
                continue
            try:
                await delete_room(self._storage, self._livekit, entry.room_name)
            except RoomNotFound:  # deleted meanwhile, or its storing failed: the entry goes
                await self._storage.delete(entry.key)
                continue
            except DependencyError as error:
                logger.warning("clean-up: expired room %s stays: %s", entry.room_name, error)
                continue
            removed.append(entry.room_name)
        return removed
