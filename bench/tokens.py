"""Token issuing: ovmeet against a bare Starlette floor doing the same work, in one run.

16 concurrent clients (wrk, one thread), one server worker, a LiveKit stand-in process.
Prints requests/s and p50/p99 latency of both, and ovmeet's share of the floor.
Usage: python -m bench.tokens [--seconds 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench.common import REPO, WrkResult, free_port, running, table, wrk
from tests.processes import LIVEKIT_KEY, LIVEKIT_SECRET, base_env, run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-tokens-"))
    livekit_port, ovmeet_port, floor_port = free_port(), free_port(), free_port()
    env = {
        **base_env(f"http://127.0.0.1:{livekit_port}"),
        "MEET_DATA_DIR": str(work / "data"),
        "MEET_AUTH_MODE": "none",
        "MEET_VALIDATE_RESPONSES": "false",
    }
    standin = [sys.executable, "-m", "tests.livekit_standin", "--port", str(livekit_port)]
    standin += ["--api-key", LIVEKIT_KEY, "--api-secret", LIVEKIT_SECRET]
    ovmeet = [
        sys.executable,
        "-m",
        "ovmeet",
        "serve",
        "--port",
        str(ovmeet_port),
        "--no-access-log",
    ]
    floor = [sys.executable, "-m", "uvicorn", "bench.floor_tokens:create_app", "--factory"]
    floor += ["--port", str(floor_port), "--no-access-log", "--log-level", "warning"]

    with running(standin, f"http://127.0.0.1:{livekit_port}/_standin/calls", env):
        created = run_cli(env, "rooms", "create", "--prefix", "bench")
        room = json.loads(created.stdout)
        secret = room["publisherRoomUrl"].split("secret=")[1]
        script = work / "token.lua"
        body = json.dumps(
            {"roomName": room["roomName"], "participantName": "bench", "secret": secret}
        )
        script.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body)}\n"
        )
        path = "/meet/internal-api/v1/participants/token"
        results: dict[str, list[WrkResult]] = {"ovmeet": [], "floor": []}
        with (
            running(
                ovmeet, f"http://127.0.0.1:{ovmeet_port}/meet/health", env, work / "ovmeet.log"
            ) as server,
            running(floor, f"http://127.0.0.1:{floor_port}/meet/health", env, work / "floor.log"),
        ):
            urls = {
                "ovmeet": f"http://127.0.0.1:{ovmeet_port}{path}",
                "floor": f"http://127.0.0.1:{floor_port}{path}",
            }
            for name, url in urls.items():
                warm = wrk(url, script, 2)
                if warm.errors:
                    sys.exit(f"{name} answered errors while warming up; see {work}")
            for _ in range(args.rounds):
                for name, url in urls.items():
                    results[name].append(wrk(url, script, args.seconds))
            assert server.poll() is None

    def best(name: str) -> WrkResult:
        return max(results[name], key=lambda r: r.requests_per_second)

    ours, base = best("ovmeet"), best("floor")
    print(
        f"POST {path}, 16 connections, 1 worker, "
        f"best of {args.rounds} x {args.seconds} s (cpus: {os.cpu_count()})"
    )
    print(
        table(
            [
                ("server", "req/s", "p50 ms", "p99 ms", "non-2xx"),
                *[
                    (
                        name,
                        f"{r.requests_per_second:.0f}",
                        f"{r.p50_ms:.2f}",
                        f"{r.p99_ms:.2f}",
                        str(r.errors),
                    )
                    for name, r in (("ovmeet", ours), ("starlette floor", base))
                ],
            ]
        )
    )
    print(
        f"ovmeet / floor = {ours.requests_per_second / base.requests_per_second:.0%}"
        " (target >= 50%)"
    )


if __name__ == "__main__":
    os.chdir(REPO)
    main()
