"""Soak: mixed load on one ovmeet worker for `--minutes` (10), at a fixed concurrency.

Each request of the mix, in turn: participant tokens, participant token refreshes, 1 MiB
ranges of a recording, whole-recording streams and signed LiveKit webhooks (wrk, one Lua
script cycling through them), on S3 (SeaweedFS) or local storage, with the LiveKit stand-in.
Per minute it prints requests/s, errors (non-2xx and socket errors: must be 0), the worker's
RSS and open file descriptors (must stay flat), and draws them in a PNG (matplotlib).
Usage: python -m bench.soak [--minutes 10] [--connections 16] [--storage s3|local]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from livekit.protocol.webhook import WebhookEvent

from bench.common import REPO, admin_cookie, free_port, rss_kib, running, table, wrk
from tests.support.helpers import livekit_token, token_body
from tests.support.livekit_webhooks import signed
from tests.support.media import make_mp4, pad_mp4
from tests.support.processes import (
    LIVEKIT_KEY,
    LIVEKIT_SECRET,
    SeaweedFS,
    base_env,
    run_cli,
)

MIB = 1024 * 1024
RECORDING_MIB = 16
PRESENT = "soak-present"  # in the LiveKit room from the start: whose token is refreshed


@dataclass(frozen=True)
class Minute:
    number: int
    requests_per_second: float
    errors: int
    rss_mib: float
    open_fds: int


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def lua_requests(requests: list[tuple[str, str, dict[str, str], str]]) -> str:
    """A wrk script that sends `requests` (method, path, headers, body) in turn, forever."""
    lines = ["local requests = {}"]
    for method, path, headers, body in requests:
        fields = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
        lines.append(
            f"table.insert(requests, wrk.format({json.dumps(method)}, {json.dumps(path)}, "
            f"{{{fields}}}, {json.dumps(body) if body else 'nil'}))"
        )
    lines += [
        "local i = 0",
        "request = function()",
        "  i = i % #requests + 1",
        "  return requests[i]",
        "end",
    ]
    return "\n".join(lines) + "\n"


def the_mix(
    env: dict[str, str], base: str, work: Path
) -> list[tuple[str, str, dict[str, str], str]]:
    """The requests of one round of the mix, against what this sets up in ovmeet's storage."""
    room = json.loads(run_cli(env, "rooms", "create", "--prefix", "soak").stdout)
    name = room["roomName"]
    clip = pad_mp4(make_mp4(work / "clip.mp4", seconds=1), work / "soak.mp4", RECORDING_MIB * MIB)
    imported = run_cli(env, "recordings", "import", str(clip), "--room", name)
    recording_id = json.loads(imported.stdout)["recordingId"]
    admin = admin_cookie(base)
    json_type = {"Content-Type": "application/json"}
    stream = f"/meet/internal-api/v1/recordings/{recording_id}/stream"
    expired = livekit_token(name, PRESENT, ttl=-5)
    mix: list[tuple[str, str, dict[str, str], str]] = []
    for n in range(8):
        offset = (n * 1_999_993) % ((RECORDING_MIB - 1) * MIB)
        mix += [
            (
                "POST",
                "/meet/internal-api/v1/participants/token",
                json_type,
                json.dumps(token_body(room, f"soak-{n}")),
            ),
            (
                "POST",
                "/meet/internal-api/v1/participants/token/refresh",
                {**json_type, "Cookie": f"OvMeetParticipantToken={expired}"},
                json.dumps(token_body(room, PRESENT)),
            ),
            ("GET", stream, {**admin, "Range": f"bytes={offset}-{offset + MIB - 1}"}, ""),
        ]
        body, headers = signed(_room_finished(name), ttl=24 * 3600)
        mix.append(("POST", "/livekit/webhook", headers, body.decode()))
    mix.append(("GET", stream, admin, ""))  # one whole recording per round
    return mix


def _room_finished(room: str) -> WebhookEvent:
    event = WebhookEvent(event="room_finished")
    event.room.name = room
    return event


def plot(minutes: list[Minute], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [m.number for m in minutes]
    figure, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    axes[0].plot(x, [m.requests_per_second for m in minutes], marker="o")
    axes[0].set_ylabel("requests/s")
    axes[0].set_ylim(bottom=0)
    axes[1].plot(x, [m.rss_mib for m in minutes], marker="o", color="tab:red")
    axes[1].set_ylabel("RSS (MiB)")
    axes[1].set_ylim(bottom=0)
    axes[2].plot(x, [m.open_fds for m in minutes], marker="o", color="tab:green")
    axes[2].set_ylabel("open fds")
    axes[2].set_ylim(bottom=0)
    axes[2].set_xlabel("minute")
    figure.suptitle("ovmeet soak: mixed load, one worker")
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--interval", type=int, default=60, help="seconds per sample (a minute)")
    parser.add_argument("--storage", choices=("s3", "local"), default="s3")
    parser.add_argument("--plot", type=Path, default=REPO / "test-artifacts" / "soak.png")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-soak-"))
    livekit_port, port = free_port(), free_port()
    env = {
        **base_env(f"http://127.0.0.1:{livekit_port}"),
        "MEET_VALIDATE_RESPONSES": "false",
        "MEET_ACCESS_LOG": "false",
        "MEET_DATA_DIR": str(work / "data"),
    }
    minutes: list[Minute] = []
    with ExitStack() as stack:
        if args.storage == "s3":
            weed = SeaweedFS(work / "weed").start()
            stack.callback(weed.stop)
            env |= weed.storage_env("soak")
        base = f"http://127.0.0.1:{port}"
        standin = [
            sys.executable,
            "-m",
            "tests.support.livekit_standin",
            "--port",
            str(livekit_port),
        ]
        standin += ["--api-key", LIVEKIT_KEY, "--api-secret", LIVEKIT_SECRET]
        serve = [sys.executable, "-m", "ovmeet", "serve", "--port", str(port)]
        server = stack.enter_context(
            running(serve, f"{base}/meet/health", env, work / "ovmeet.log")
        )
        mix = the_mix(env, base, work)
        room_name = json.loads(mix[0][3])["roomName"]
        standin += ["--participant", f"{room_name}/{PRESENT}"]
        stack.enter_context(running(standin, f"http://127.0.0.1:{livekit_port}/_standin/calls"))
        script = work / "mix.lua"
        script.write_text(lua_requests(mix))
        print(
            f"soak: {args.minutes} min, {args.connections} connections, {args.storage} storage, "
            f"{len(mix)} requests per round (tokens, refreshes, 1 MiB ranges, webhooks, one "
            f"{RECORDING_MIB} MiB stream); cpus: {os.cpu_count()}",
            flush=True,
        )
        for number in range(1, args.minutes + 1):
            result = wrk(base, script, args.interval, args.connections)
            rps, errors = result.requests_per_second, result.errors + result.socket_errors
            minute = Minute(number, rps, errors, rss_kib(server.pid) / 1024, open_fds(server.pid))
            minutes.append(minute)
            print(
                f"minute {number}: {rps:.0f} req/s, {errors} errors, "
                f"RSS {minute.rss_mib:.0f} MiB, {minute.open_fds} fds",
                flush=True,
            )
    print(
        table(
            [
                ("minute", "req/s", "errors", "RSS MiB", "open fds"),
                *[
                    (
                        str(m.number),
                        f"{m.requests_per_second:.0f}",
                        str(m.errors),
                        f"{m.rss_mib:.0f}",
                        str(m.open_fds),
                    )
                    for m in minutes
                ],
            ]
        )
    )
    total_errors = sum(m.errors for m in minutes)
    rss = [m.rss_mib for m in minutes]
    print(
        f"errors: {total_errors} (must be 0); RSS first/last/max: {rss[0]:.0f}/{rss[-1]:.0f}/"
        f"{max(rss):.0f} MiB; fds first/last: {minutes[0].open_fds}/{minutes[-1].open_fds}"
    )
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(minutes, args.plot)
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    os.chdir(REPO)
    main()
