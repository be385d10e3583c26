"""What a page of rooms costs as rooms pile up: `GET /rooms?limit=10` with 10,000 rooms stored
against the same server with 10, in one run, interleaved rounds; and the clean-up round (which
finds expired rooms through the index) on each.

wrk, one thread, 16 connections, one worker each, the public API with an API key.
Usage: python -m bench.rooms [--storage s3|local] [--rooms 10000] [--seconds 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import best_of_interleaved, free_port, get_script, latency_table, serve_each
from bench.revocations import storage_env
from ovmeet.rooms.store import RoomOptions, new_room, store_room
from ovmeet.storage import open_storage
from ovmeet.support.config import Config
from tests.support.processes import SeaweedFS, base_env, run_cli

PATH = "/meet/api/v1/rooms?limit=10"
API_KEY = "bench-rooms-key-0123456789abcdef0123"


async def store_rooms(env: dict[str, str], count: int) -> float:
    """`count` rooms (expiring in a day) in that storage, as ovmeet stores them; seconds taken."""
    started = time.monotonic()
    config = Config.from_env(env)
    storage = open_storage(config)
    try:
        for start in range(0, count, 256):
            batch = [
                new_room(config, RoomOptions("bench", expires_in=86400))
                for _ in range(min(256, count - start))
            ]
            await asyncio.gather(*(store_room(storage, room) for room in batch))
    finally:
        await storage.aclose()
    return time.monotonic() - started


def clean_up_seconds(env: dict[str, str]) -> float:
    started = time.monotonic()
    done = run_cli(env, "gc")
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", choices=("s3", "local"), default="s3")
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-rooms-"))
    common = {
        **base_env(f"http://127.0.0.1:{free_port()}"),
        "MEET_VALIDATE_RESPONSES": "false",
        "MEET_API_KEY": API_KEY,
    }
    counts = {"few": 10, "many": args.rooms}
    with ExitStack() as stack:
        weed = None
        if args.storage == "s3":
            weed = SeaweedFS(work / "weed").start()
            stack.callback(weed.stop)
        envs = {name: {**common, **storage_env(weed, work, name)} for name in counts}
        for name, count in counts.items():
            took = asyncio.run(store_rooms(envs[name], count))
            print(f"stored {count} rooms on {args.storage} in {took:.0f} s")
        gc = {name: clean_up_seconds(env) for name, env in envs.items()}
        serve_each(stack, envs, work)
        urls = {name: env["MEET_BENCH_URL"] + PATH for name, env in envs.items()}
        scripts = {name: get_script(work, name, {"X-API-KEY": API_KEY}) for name in envs}
        best = best_of_interleaved(urls, scripts, args.seconds, args.rounds)
    print(f"GET {PATH} on {args.storage}, wrk 16 connections, best of {args.rounds} rounds")
    print(latency_table({name: f"{count} rooms" for name, count in counts.items()}, best))
    many, few = best["many"], best["few"]
    print(
        f"{args.rooms} rooms / 10: p50 {many.p50_ms / few.p50_ms:.2f}x, "
        f"p99 {many.p99_ms / few.p99_ms:.2f}x, "
        f"req/s {many.requests_per_second / few.requests_per_second:.2f}x"
    )
    print(
        f"clean-up round (`ovmeet gc`, process start included): 10 rooms {gc['few']:.2f} s, "
        f"{args.rooms} rooms {gc['many']:.2f} s"
    )


if __name__ == "__main__":
    main()
