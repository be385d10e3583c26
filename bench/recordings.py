"""Listing recordings costs the page, not the bucket: the first and a later page of 10 from a
room with few recordings against one with many, on S3 (SeaweedFS), in one run.

Usage: python -m bench.recordings [--many 1000] [--few 20] [--calls 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import free_port, running, table
from ovmeet.recordings.store import Recording, RecordingStatus, write_recording
from ovmeet.rooms.store import RoomOptions, create_room
from ovmeet.storage import open_storage
from ovmeet.support.config import Config
from ovmeet.support.ids import RecordingId
from tests.support.processes import S3_ACCESS_KEY, S3_BUCKET, S3_SECRET_KEY, SeaweedFS, base_env

API_KEY = "bench-recordings-key"


async def fill(config: Config, prefix: str, count: int) -> str:
    """A room with `count` COMPLETE recordings (metadata and index; no media); its name."""
    storage = open_storage(config)
    try:
        room = await create_room(storage, config, RoomOptions(prefix))
        jobs = [
            write_recording(
                storage,
                Recording(
                    RecordingId(room.room_name, f"EG_{n}", f"u{n}"),
                    RecordingStatus.COMPLETE,
                    start_date=1_700_000_000_000 + n,
                ),
                new=True,
            )
            for n in range(count)
        ]
        for start in range(0, count, 32):
            await asyncio.gather(*jobs[start : start + 32])
        return room.room_name
    finally:
        await storage.aclose()


def page_ms(client: httpx.Client, url: str, room: str, calls: int, pages: int) -> float:
    """Median ms to get page number `pages` (1 = the first) of 10 recordings of `room`."""
    times = []
    for _ in range(calls):
        token = None
        for _ in range(pages):
            params: dict[str, Any] = {"roomId": room, "maxItems": 10}
            if token:
                params["nextPageToken"] = token
            began = time.perf_counter()
            answer = client.get(url, params=params, headers={"x-api-key": API_KEY})
            elapsed = time.perf_counter() - began
            assert answer.status_code == 200 and len(answer.json()["recordings"]) == 10
            token = answer.json()["pagination"].get("nextPageToken")
        times.append(elapsed * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--many", type=int, default=1000)
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-recordings-"))
    weed = SeaweedFS(work).start()
    try:
        port = free_port()
        env = {
            **base_env("http://127.0.0.1:1"),
            "MEET_API_KEY": API_KEY,
            "MEET_STORAGE": "s3",
            "MEET_S3_SERVICE_ENDPOINT": weed.endpoint,
            "MEET_S3_ACCESS_KEY": S3_ACCESS_KEY,
            "MEET_S3_SECRET_KEY": S3_SECRET_KEY,
            "MEET_S3_BUCKET": S3_BUCKET,
        }
        config = Config.from_env(env)
        asyncio.run(open_storage(config).check())
        few = asyncio.run(fill(config, "few", args.few))
        many = asyncio.run(fill(config, "many", args.many))
        command = [sys.executable, "-m", "ovmeet", "serve", "--port", str(port)]
        url = f"http://127.0.0.1:{port}"
        with running(command, f"{url}/meet/health", env), httpx.Client() as client:
            listing = f"{url}/meet/api/v1/recordings"
            rows: list[tuple[str, ...]] = [
                (
                    "page of 10",
                    f"{args.few} recordings (ms)",
                    f"{args.many} recordings (ms)",
                    "ratio",
                )
            ]
            for pages, name in ((1, "first"), (2, "second")):
                small = page_ms(client, listing, few, args.calls, pages)
                large = page_ms(client, listing, many, args.calls, pages)
                rows.append((name, f"{small:.1f}", f"{large:.1f}", f"{large / small:.2f}x"))
        print(table(rows))
    finally:
        weed.stop()


if __name__ == "__main__":
    main()
