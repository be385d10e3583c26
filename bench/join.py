"""Joining a call: from the token request to "connected", with the LiveKit SDK, on the real
LiveKit server (make livekit), ovmeet on local storage.

Each join asks ovmeet for a token (POST /participants/token: room, secret, the GetParticipant
check) and connects with it; the reference, interleaved join by join, is the floor of the same
path without ovmeet: a token the benchmark signs itself, then the same connect. Prints p50/p99
of each and their ratio, and ovmeet's share (the token request) of a join.
Usage: python -m bench.join [--joins 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from livekit import api, rtc

from bench.common import REPO, running, table
from tests.helpers import token_body
from tests.livekit_server import LiveKitServer
from tests.processes import LIVEKIT_KEY, LIVEKIT_SECRET, base_env, free_port, run_cli


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def connect(url: str, token: str) -> None:
    room = rtc.Room()
    await room.connect(url, token)
    await room.disconnect()


async def measure(
    base: str, ws_url: str, room: dict[str, str], joins: int
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"ovmeet": [], "token request": [], "floor": []}
    async with httpx.AsyncClient(base_url=base) as client:
        for i in range(joins + 2):  # the first two warm up both paths
            started = time.perf_counter()
            body = token_body(room, f"person-{i}", "moderator")
            answer = await client.post("/meet/internal-api/v1/participants/token", json=body)
            answer.raise_for_status()
            issued = time.perf_counter()
            await connect(ws_url, answer.json()["token"])
            ended = time.perf_counter()
            floor_token = (
                api.AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
                .with_identity(f"floor-{i}")
                .with_grants(api.VideoGrants(room_join=True, room=room["roomName"]))
                .to_jwt()
            )
            floor_started = time.perf_counter()
            await connect(ws_url, floor_token)
            floor_ended = time.perf_counter()
            if i >= 2:
                times["ovmeet"].append((ended - started) * 1000)
                times["token request"].append((issued - started) * 1000)
                times["floor"].append((floor_ended - floor_started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--joins", type=int, default=40, help="joins measured per path")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-join-"))
    livekit = LiveKitServer(work / "livekit", LIVEKIT_KEY, LIVEKIT_SECRET, []).start()
    try:
        port = free_port()
        env = {
            **base_env(livekit.url),
            "LIVEKIT_URL": livekit.ws_url,
            "MEET_STORAGE": "local",
            "MEET_DATA_DIR": str(work / "data"),
            "MEET_VALIDATE_RESPONSES": "false",
        }
        made = run_cli(env, "rooms", "create", "--prefix", "join")
        assert made.returncode == 0, made.stderr
        room = json.loads(made.stdout)
        command = [sys.executable, "-m", "ovmeet", "serve", "--port", str(port), "--no-access-log"]
        base = f"http://127.0.0.1:{port}"
        with running(command, f"{base}/meet/health", env, work / "ovmeet.log"):
            times = asyncio.run(measure(base, livekit.ws_url, room, args.joins))
    finally:
        livekit.stop()
    rows: list[tuple[str, ...]] = [("path", "p50 ms", "p99 ms", "mean ms")]
    for name, values in times.items():
        rows.append(
            (
                name,
                f"{percentile(values, 0.5):.1f}",
                f"{percentile(values, 0.99):.1f}",
                f"{statistics.mean(values):.1f}",
            )
        )
    print(f"{args.joins} joins per path, interleaved, LiveKit {livekit.url} (real server)")
    print(table(rows))
    ours, floor = times["ovmeet"], times["floor"]
    print(
        f"ovmeet / floor: p50 {percentile(ours, 0.5) / percentile(floor, 0.5):.2f}x, "
        f"p99 {percentile(ours, 0.99) / percentile(floor, 0.99):.2f}x; the token request is "
        f"{statistics.mean(times['token request']) / statistics.mean(ours):.0%} of a join"
    )


if __name__ == "__main__":
    os.chdir(REPO)
    main()
