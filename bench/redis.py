"""What Redis costs and what it buys, in one run: token and profile p50/p99 with and without
Redis, and how long a change made through one host takes to be in force on another.

Costs: `POST /participants/token` (the real LiveKit server answers its 409 check) and
`GET /auth/profile` (a session cookie: the revocation check), wrk, one thread, 16 connections,
one worker each, local storage, rounds interleaving the servers, the median of each figure over
the rounds; a twin of the server without Redis is measured too, as what noise alone gives.
Reach: two instances as two hosts (a temporary folder each: no shared change-marker file), one
with Redis beside them and one pair without; `--changes` times, the security preferences change
through the first, and the second is asked every 5 ms until it answers the new policy.
Usage: python -m bench.redis [--seconds 8] [--rounds 3] [--changes 40]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.common import (
    admin_cookie,
    get_script,
    interleaved_rounds,
    latency_table,
    median_of_rounds,
    percentile,
    serve_each,
    table,
)
from bench.tokens import token_script
from tests.support.livekit_server import LiveKitServer
from tests.support.processes import LIVEKIT_KEY, LIVEKIT_SECRET, RedisServer, base_env

TOKEN = "/meet/internal-api/v1/participants/token"
PROFILE = "/meet/internal-api/v1/auth/profile"
SECURITY = "/meet/api/v1/preferences/security"
API_KEY = "bench-redis-key-5b3e9d0c7a1f4e2b8c6d"


def reach(first: str, second: str, changes: int) -> list[float]:
    """Seconds from each change's answer on `first` until `second` applies it."""
    delays = []
    with httpx.Client(timeout=10, headers={"x-api-key": API_KEY}) as client:
        for n in range(changes):
            allowed = n % 2 == 0
            policy = {"allowRoomCreation": allowed, "requireAuthentication": True}
            client.get(second + SECURITY)  # the second has it cached now
            changed = client.put(first + SECURITY, json={"roomCreationPolicy": policy})
            changed.raise_for_status()
            answered = time.monotonic()
            while (
                client.get(second + SECURITY).json()["roomCreationPolicy"]["allowRoomCreation"]
                != allowed
            ):
                time.sleep(0.005)
            delays.append(time.monotonic() - answered)
            time.sleep(0.05)
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changes", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-redis-"))
    with ExitStack() as stack:
        livekit = LiveKitServer(work / "livekit", LIVEKIT_KEY, LIVEKIT_SECRET, []).start()
        stack.callback(livekit.stop)
        redis = RedisServer(work / "redis").start()
        stack.callback(redis.stop)
        common = {
            **base_env(livekit.url),
            "MEET_VALIDATE_RESPONSES": "false",
            "MEET_API_KEY": API_KEY,
            "MEET_STORAGE": "local",
        }
        envs: dict[str, dict[str, str]] = {}
        for name, extra in (("without", {}), ("with", redis.env())):
            for host in ("a", "b"):
                tmp = work / f"{name}-{host}-tmp"
                tmp.mkdir()
                data = str(work / f"data-{name}")
                envs[f"{name}-{host}"] = {
                    **common,
                    **extra,
                    "MEET_DATA_DIR": data,
                    "TMPDIR": str(tmp),
                }
        serve_each(stack, envs, work)
        # The twin is a second server without Redis: its ratio is what noise alone gives.
        measured = {"without": envs["without-a"], "twin": envs["without-b"], "with": envs["with-a"]}
        labels = {"without": "without Redis", "twin": "without Redis (twin)", "with": "with Redis"}

        def profile_script(name: str, env: dict[str, str]) -> Path:
            return get_script(work, name, admin_cookie(env["MEET_BENCH_URL"]))

        def room_token_script(name: str, env: dict[str, str]) -> Path:
            return token_script(work, env, name)

        for path, script_of in ((TOKEN, room_token_script), (PROFILE, profile_script)):
            urls = {name: env["MEET_BENCH_URL"] + path for name, env in measured.items()}
            scripts = {name: script_of(name, env) for name, env in measured.items()}
            rounds = interleaved_rounds(urls, scripts, args.seconds, args.rounds)
            median = {name: median_of_rounds(runs) for name, runs in rounds.items()}
            print(
                f"\n{path}, wrk 16 connections, median of {args.rounds} rounds x {args.seconds} s"
            )
            print(latency_table(labels, median))
            without = median["without"]
            for name in ("with", "twin"):
                other = median[name]
                print(
                    f"{labels[name]} / without Redis: p50 {other.p50_ms / without.p50_ms:.2f}x, "
                    f"p99 {other.p99_ms / without.p99_ms:.2f}x, "
                    f"req/s {other.requests_per_second / without.requests_per_second:.2f}x"
                )
        rows: list[tuple[str, ...]] = [("two hosts", "p50 ms", "p99 ms", "max ms")]
        for name in ("without", "with"):
            delays = reach(
                envs[f"{name}-a"]["MEET_BENCH_URL"],
                envs[f"{name}-b"]["MEET_BENCH_URL"],
                args.changes,
            )
            rows.append(
                (
                    labels[name],
                    f"{statistics.median(delays) * 1000:.1f}",
                    f"{percentile(delays, 0.99) * 1000:.1f}",
                    f"{max(delays) * 1000:.1f}",
                )
            )
        print(f"\nA preference change on one host in force on the other ({args.changes} changes)")
        print(table(rows))


if __name__ == "__main__":
    main()
