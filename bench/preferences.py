"""What the preferences cost a request: a cached read (which `stat`s the change marker) against
a read from storage, in one run, on local storage.

Usage: python -m bench.preferences [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable

from ovmeet.preferences.store import GlobalPreferences
from ovmeet.storage.local import LocalStorage
from ovmeet.support.config import Config


async def per_call(calls: int, work: Callable[[], Awaitable[object]]) -> float:
    """Microseconds per call of `work`, the best of three runs."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            await work()
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


async def run(calls: int) -> None:
    storage = LocalStorage(tempfile.mkdtemp(prefix="ovmeet-bench-preferences-"))
    config = Config(data_dir=str(storage.root))
    preferences = GlobalPreferences(storage, config)
    await preferences.ensure_stored()
    await preferences.current()
    cached = await per_call(calls, preferences.current)
    stored = await per_call(
        max(1, calls // 20), lambda: storage.read_json("openvidu-meet-preferences.json")
    )
    await storage.aclose()
    print(f"cached read (marker stat included): {cached:8.2f} us per call")
    print(f"read from local storage (reference): {stored:8.2f} us per call")
    print(f"cached / stored: {cached / stored:.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20000)
    asyncio.run(run(parser.parse_args().calls))


if __name__ == "__main__":
    main()
