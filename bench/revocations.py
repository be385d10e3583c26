"""What logouts cost every cookie request: `GET /auth/profile` with 100,000 revoked sessions
stored against the same server with none, in one run, interleaved rounds.

The revocations are spread as the server keeps them: 1,000 (its bound per user) for each of
100 users, the measured admin among them. wrk, one thread, 16 connections, one worker each.
Usage: python -m bench.revocations [--storage s3|local] [--revoked 100000] [--seconds 8]
       [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import (
    admin_cookie,
    best_of_interleaved,
    free_port,
    get_script,
    latency_table,
    serve_each,
)
from ovmeet.auth.revocations import MAX_PER_USER
from ovmeet.storage import open_storage
from ovmeet.storage.keys import revoked_session_key
from ovmeet.support.config import Config
from tests.support.processes import ADMIN, SeaweedFS, base_env

PATH = "/meet/internal-api/v1/auth/profile"


async def store_revocations(env: dict[str, str], count: int) -> float:
    """`count` revoked, unexpired sessions in that storage; the seconds it took."""
    started = time.monotonic()
    storage = open_storage(Config.from_env(env))
    expires = int(time.time()) + 86400
    users = [ADMIN[0]] + [f"user{n}" for n in range(count // MAX_PER_USER)]
    keys = [
        revoked_session_key(users[n // MAX_PER_USER], expires, expires - 3600, secrets.token_hex(8))
        for n in range(count)
    ]
    try:
        for start in range(0, count, 256):
            batch = keys[start : start + 256]
            await asyncio.gather(*(storage.write_json(key, {}) for key in batch))
    finally:
        await storage.aclose()
    return time.monotonic() - started


def storage_env(weed: SeaweedFS | None, work: Path, name: str) -> dict[str, str]:
    if weed is not None:
        return weed.storage_env(f"bench-{name}")
    return {"MEET_STORAGE": "local", "MEET_DATA_DIR": str(work / f"data-{name}")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--storage", choices=("s3", "local"), default="s3")
    parser.add_argument("--revoked", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-revocations-"))
    common = {**base_env(f"http://127.0.0.1:{free_port()}"), "MEET_VALIDATE_RESPONSES": "false"}
    with ExitStack() as stack:
        weed = None
        if args.storage == "s3":
            weed = SeaweedFS(work / "weed").start()
            stack.callback(weed.stop)
        envs = {name: {**common, **storage_env(weed, work, name)} for name in ("none", "many")}
        took = asyncio.run(store_revocations(envs["many"], args.revoked))
        print(f"stored {args.revoked} revocations on {args.storage} in {took:.0f} s")
        serve_each(stack, envs, work)
        urls = {name: env["MEET_BENCH_URL"] + PATH for name, env in envs.items()}
        scripts = {
            name: get_script(work, name, admin_cookie(env["MEET_BENCH_URL"]))
            for name, env in envs.items()
        }
        best = best_of_interleaved(urls, scripts, args.seconds, args.rounds)
    print(f"GET {PATH} on {args.storage}, wrk 16 connections, best of {args.rounds} rounds")
    labels = {"none": "no revoked session", "many": f"{args.revoked} revoked sessions"}
    print(latency_table(labels, best))
    many, none = best["many"], best["none"]
    print(
        f"{args.revoked} revoked / none: p50 {many.p50_ms / none.p50_ms:.2f}x, "
        f"p99 {many.p99_ms / none.p99_ms:.2f}x, "
        f"req/s {many.requests_per_second / none.requests_per_second:.2f}x"
    )


if __name__ == "__main__":
    main()
