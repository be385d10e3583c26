"""Joining a call: from the token request to "connected", with the LiveKit SDK, on the real
LiveKit server (make livekit), ovmeet on local storage, the Node reference (when built) on S3.

Each join asks a backend for a token (POST /participants/token: room, secret, the GetParticipant
check) and connects with it. Interleaved with them, join by join, the floor of the same path
without a backend: a token the benchmark signs itself, then the same connect. Prints p50/p99 of
each, their ratios, and each backend's share (the token request) of a join.
Usage: python -m bench.join [--joins 40] [--no-node]
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
from contextlib import ExitStack
from pathlib import Path

import httpx
from livekit import api, rtc

from bench import node_reference
from bench.common import REPO, percentile, running, table
from tests.support.helpers import token_body
from tests.support.livekit_server import LiveKitServer
from tests.support.processes import (
    LIVEKIT_KEY,
    LIVEKIT_SECRET,
    SeaweedFS,
    base_env,
    free_port,
    run_cli,
)

NODE = f"Node reference ({node_reference.COMMIT})"
FLOOR_ROOM = "join-floor"


async def connect(url: str, token: str) -> None:
    room = rtc.Room()
    await room.connect(url, token)
    await room.disconnect()


async def issued_join(
    client: httpx.AsyncClient, ws_url: str, room: dict[str, str], name: str
) -> tuple[float, float]:
    """A join through a backend: (whole join, token request) in ms."""
    started = time.perf_counter()
    answer = await client.post(
        "/meet/internal-api/v1/participants/token", json=token_body(room, name, "moderator")
    )
    answer.raise_for_status()
    issued = time.perf_counter()
    await connect(ws_url, answer.json()["token"])
    ended = time.perf_counter()
    return (ended - started) * 1000, (issued - started) * 1000


async def measure(
    backends: dict[str, tuple[str, dict[str, str]]], ws_url: str, joins: int
) -> dict[str, list[float]]:
    """Joins through each backend (name: base URL, room), and the floor, interleaved."""
    times: dict[str, list[float]] = {}
    for name in backends:
        times[name], times[f"{name}: token request"] = [], []
    times["floor"] = []
    clients = {name: httpx.AsyncClient(base_url=base) for name, (base, _) in backends.items()}
    try:
        for i in range(joins + 2):  # the first two warm up every path
            for name, (_, room) in backends.items():
                whole, request = await issued_join(clients[name], ws_url, room, f"person-{i}")
                if i >= 2:
                    times[name].append(whole)
                    times[f"{name}: token request"].append(request)
            floor_token = (
                api.AccessToken(LIVEKIT_KEY, LIVEKIT_SECRET)
                .with_identity(f"floor-{i}")
                .with_grants(api.VideoGrants(room_join=True, room=FLOOR_ROOM))
                .to_jwt()
            )
            floor_started = time.perf_counter()
            await connect(ws_url, floor_token)
            if i >= 2:
                times["floor"].append((time.perf_counter() - floor_started) * 1000)
    finally:
        for client in clients.values():
            await client.aclose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--joins", type=int, default=40, help="joins measured per path")
    parser.add_argument("--no-node", action="store_true", help="leave out the Node reference")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-join-"))
    node_missing = "left out (--no-node)" if args.no_node else node_reference.missing()
    with ExitStack() as stack:
        livekit = LiveKitServer(work / "livekit", LIVEKIT_KEY, LIVEKIT_SECRET, []).start()
        stack.callback(livekit.stop)
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
        command = [sys.executable, "-m", "ovmeet", "serve", "--port", str(port), "--no-access-log"]
        base = f"http://127.0.0.1:{port}"
        stack.enter_context(running(command, f"{base}/meet/health", env, work / "ovmeet.log"))
        backends = {"ovmeet": (base, json.loads(made.stdout))}
        if node_missing:
            print(f"the Node reference: {node_missing}")
        else:
            weed = SeaweedFS(work / "weed").start()
            stack.callback(weed.stop)
            node = stack.enter_context(
                node_reference.node_reference(
                    work / "node",
                    livekit.url,
                    LIVEKIT_KEY,
                    LIVEKIT_SECRET,
                    weed.storage_env("bench-node"),
                )
            )
            backends[NODE] = (node.url, node_reference.create_room(node, "join"))
        times = asyncio.run(measure(backends, livekit.ws_url, args.joins))
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
    floor = times["floor"]
    for name in backends:
        ours = times[name]
        print(
            f"{name} / floor: p50 {percentile(ours, 0.5) / percentile(floor, 0.5):.2f}x, "
            f"p99 {percentile(ours, 0.99) / percentile(floor, 0.99):.2f}x; the token request is "
            f"{statistics.mean(times[f'{name}: token request']) / statistics.mean(ours):.0%} "
            "of a join"
        )
    if NODE in backends:
        ours, theirs = times["ovmeet"], times[NODE]
        print(
            f"ovmeet / {NODE}: p50 {percentile(ours, 0.5) / percentile(theirs, 0.5):.2f}x, "
            f"p99 {percentile(ours, 0.99) / percentile(theirs, 0.99):.2f}x"
        )


if __name__ == "__main__":
    os.chdir(REPO)
    main()
