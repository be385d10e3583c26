"""Recording streams: ovmeet against nginx (local file) and a presigned SeaweedFS GET (S3).

One run, one 1 GiB recording: full-GET throughput (curl), median latency of 1 MiB random
ranges (keep-alive client; with the floor of this stack beside them, bench/floor.py), and
ovmeet's peak RSS growth while streaming the whole file and while serving 32 concurrent range
streams.
Usage: python -m bench.stream [--size-mib 1024] [--ranges 100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from minio import Minio

from bench.common import (
    REFERENCE,
    REPO,
    PeakRss,
    admin_cookie,
    free_port,
    reference_tree,
    rss_kib,
    running,
    table,
)
from bench.common import (
    nginx_conf as common_nginx_conf,
)
from tests.support.media import make_mp4, pad_mp4
from tests.support.processes import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    SeaweedFS,
    base_env,
    run_cli,
)

MIB = 1024 * 1024


def download_speed(url: str, headers: dict[str, str]) -> float:
    """MiB/s of one whole-file download with curl."""
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download} %{http_code}", url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    speed, status = subprocess.run(args, capture_output=True, text=True, check=True).stdout.split()
    assert status == "200", f"{url} answered {status}"
    return float(speed) / MIB


def full_gets(
    reference: str, ovmeet: str, headers: dict[str, str], pid: int, rounds: int
) -> tuple[float, float, PeakRss]:
    """Median speeds of the reference and of ovmeet, downloads interleaved (the machine drifts);
    ovmeet's peak RSS over its downloads."""
    ours, theirs = [], []
    with PeakRss(pid) as rss:
        for _ in range(rounds):
            theirs.append(download_speed(reference, {}))
            ours.append(download_speed(ovmeet, headers))
    return statistics.median(theirs), statistics.median(ours), rss


def range_latencies(
    targets: dict[str, tuple[str, dict[str, str]]], offsets: list[int]
) -> dict[str, tuple[float, float]]:
    """p50 and p99 ms to fetch 1 MiB at each offset, one keep-alive connection per target,
    the targets' requests interleaved (the machine drifts)."""
    connections = {}
    for name, (url, _) in targets.items():
        parts = urlsplit(url)
        connections[name] = (
            http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=60),
            parts.path + (f"?{parts.query}" if parts.query else ""),
        )
    times: dict[str, list[float]] = {name: [] for name in targets}
    for offset in offsets:
        for name, (connection, path) in connections.items():
            headers = {**targets[name][1], "Range": f"bytes={offset}-{offset + MIB - 1}"}
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            times[name].append((time.perf_counter() - started) * 1000)
            assert response.status == 206 and len(body) == MIB, (response.status, len(body))
    for connection, _ in connections.values():
        connection.close()
    return {name: _percentiles(values) for name, values in times.items()}


def _percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def memory_bursts(
    work: Path, env: dict[str, str], recording_id: str, size: int, bursts: int = 6
) -> dict[str, list[float]]:
    """MiB resident after each of `bursts` bursts of 32 concurrent range streams from S3, in
    a fresh ovmeet and a fresh ovmeet at REFERENCE (bursts interleaved)."""
    servers = {}
    with ExitStack() as stack:
        tree = stack.enter_context(reference_tree(work, REFERENCE))
        for name, cwd, extra in (
            ("ovmeet", REPO, {}),
            ("reference", tree, {"PYTHONPATH": str(tree)}),
        ):
            server_env = {**env, **extra, "SERVER_PORT": str(free_port())}
            command, health = ovmeet_server(server_env, work, name)
            log = work / f"bursts-{name}.log"
            process = stack.enter_context(running(command, health, server_env, log, cwd))
            base = health.removesuffix("/meet/health")
            url = f"{base}/meet/internal-api/v1/recordings/{recording_id}/stream"
            servers[name] = (url, admin_cookie(base), process.pid)
        curves: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(bursts):
            for name, (url, cookie, pid) in servers.items():
                concurrent_ranges(url, cookie, size)
                time.sleep(0.3)
                curves[name].append(rss_kib(pid) / 1024)
    return curves


def concurrent_ranges(url: str, headers: dict[str, str], size: int, streams: int = 32) -> float:
    """Start `streams` curl range downloads at once; aggregate MiB/s."""
    span = size // streams
    started = time.perf_counter()
    processes = []
    for n in range(streams):
        args = ["curl", "-sS", "-o", "/dev/null", "-r", f"{n * span}-{(n + 1) * span - 1}", url]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        processes.append(subprocess.Popen(args))
    for process in processes:
        assert process.wait() == 0
    return span * streams / MIB / (time.perf_counter() - started)


def ovmeet_server(env: dict[str, str], work: Path, name: str) -> tuple[list[str], str]:
    port = env["SERVER_PORT"]
    return [sys.executable, "-m", "ovmeet", "serve", "--port", port, "--no-access-log"], (
        f"http://127.0.0.1:{port}/meet/health"
    )


def floor_server(env: dict[str, str]) -> tuple[list[str], str, dict[str, str]]:
    """Command, URL and environment of bench.floor's bare app (see there) on a free port."""
    port = str(free_port())
    command = [sys.executable, "-m", "uvicorn", "bench.floor:app", "--port", port]
    command += ["--no-access-log", "--log-level", "warning"]
    return command, f"http://127.0.0.1:{port}/", {**os.environ, **env}


def nginx_conf(work: Path, root: Path, port: int) -> Path:
    """nginx sending the files under `root` on `port` (the reference of local streaming)."""
    server = f"""    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /meet/health {{ return 200 "UP"; }}
    }}"""
    return common_nginx_conf(work, "nginx", server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024, help="recording size (MiB)")
    parser.add_argument("--ranges", type=int, default=100, help="1 MiB ranges per server")
    parser.add_argument("--rounds", type=int, default=5, help="whole-file downloads per server")
    args = parser.parse_args()
    size = args.size_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-stream-"))
    try:
        run(work, size, args.ranges, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size: int, ranges: int, rounds: int) -> None:
    print(f"building a {size // MIB} MiB recording ...", file=sys.stderr)
    clip = pad_mp4(make_mp4(work / "clip.mp4", seconds=2), work / "big.mp4", size)
    weed = SeaweedFS(work / "seaweedfs").start()
    try:
        common = {**base_env("http://127.0.0.1:9"), "MEET_VALIDATE_RESPONSES": "false"}
        local_env = {**common, "MEET_DATA_DIR": str(work / "data"), "SERVER_PORT": str(free_port())}
        s3_env = {**common, "SERVER_PORT": str(free_port()), **weed.storage_env("bench")}
        ids = {}
        for name, env in (("local", local_env), ("s3", s3_env)):
            room = json.loads(run_cli(env, "rooms", "create", "--prefix", "bench").stdout)[
                "roomName"
            ]
            imported = run_cli(env, "recordings", "import", str(clip), "--room", room)
            assert imported.returncode == 0, imported.stderr
            ids[name] = json.loads(imported.stdout)["recordingId"]
        clip.unlink()
        nginx_port = free_port()
        room_id, _, uid = ids["local"].split("--")
        media = f"/recordings/{room_id}/{room_id}--{uid}.mp4"
        s3_room, _, s3_uid = ids["s3"].split("--")
        minio = Minio(
            urlsplit(weed.endpoint).netloc,
            S3_ACCESS_KEY,
            S3_SECRET_KEY,
            secure=False,
            region="us-east-1",
        )
        presigned = minio.presigned_get_object(
            S3_BUCKET,
            f"bench/recordings/{s3_room}/{s3_room}--{s3_uid}.mp4",
            expires=timedelta(hours=1),
        )
        nginx = ["nginx", "-c", str(nginx_conf(work, work / "data", nginx_port)), "-p", str(work)]
        local_cmd, local_health = ovmeet_server(local_env, work, "local")
        s3_cmd, s3_health = ovmeet_server(s3_env, work, "s3")
        floor_local = floor_server({"FLOOR_FILE": str(work / "data" / media.lstrip("/"))})
        floor_s3 = floor_server(
            {
                "FLOOR_S3_ENDPOINT": weed.endpoint,
                "FLOOR_S3_ACCESS_KEY": S3_ACCESS_KEY,
                "FLOOR_S3_SECRET_KEY": S3_SECRET_KEY,
                "FLOOR_S3_BUCKET": S3_BUCKET,
                "FLOOR_S3_OBJECT": f"bench/recordings/{s3_room}/{s3_room}--{s3_uid}.mp4",
            }
        )
        rng = random.Random(7)
        offsets = [rng.randrange(0, size - MIB) for _ in range(ranges)]
        with (
            running(nginx, f"http://127.0.0.1:{nginx_port}/meet/health"),
            running(local_cmd, local_health, local_env, work / "ovmeet-local.log") as local,
            running(s3_cmd, s3_health, s3_env, work / "ovmeet-s3.log") as s3,
            running(*floor_local, work / "floor-local.log"),
            running(*floor_s3, work / "floor-s3.log"),
        ):
            local_base = local_health.removesuffix("/meet/health")
            s3_base = s3_health.removesuffix("/meet/health")
            local_url = f"{local_base}/meet/internal-api/v1/recordings/{ids['local']}/stream"
            s3_url = f"{s3_base}/meet/internal-api/v1/recordings/{ids['s3']}/stream"
            local_cookie, s3_cookie = admin_cookie(local_base), admin_cookie(s3_base)
            nginx_url = f"http://127.0.0.1:{nginx_port}{media}"

            print("full GETs ...", file=sys.stderr)
            speed: dict[str, float] = {}
            speed["nginx"], speed["local"], local_full_rss = full_gets(
                nginx_url, local_url, local_cookie, local.pid, rounds
            )
            speed["direct"], speed["s3"], s3_full_rss = full_gets(
                presigned, s3_url, s3_cookie, s3.pid, rounds
            )

            print("1 MiB ranges ...", file=sys.stderr)
            # Each path interleaved with its own reference only: right after an S3 read,
            # SeaweedFS and the S3 worker are still busy and would slow what comes next.
            latency = range_latencies(
                {
                    "nginx": (nginx_url, {}),
                    "local": (local_url, local_cookie),
                    "floor_local": (floor_local[1], {}),
                },
                offsets,
            ) | range_latencies(
                {
                    "direct": (presigned, {}),
                    "s3": (s3_url, s3_cookie),
                    "floor_s3": (floor_s3[1], {}),
                },
                offsets,
            )

            print("32 concurrent range streams ...", file=sys.stderr)
            with PeakRss(local.pid) as local_many_rss:
                many_local = concurrent_ranges(local_url, local_cookie, size)
            with PeakRss(s3.pid) as s3_many_rss:
                many_s3 = concurrent_ranges(s3_url, s3_cookie, size)
        print("RSS over bursts of 32 concurrent S3 range streams ...", file=sys.stderr)
        curves = memory_bursts(work, s3_env, ids["s3"], size)
    finally:
        weed.stop()

    print(
        f"\n{size // MIB} MiB recording; whole file: median of {rounds} curl downloads, "
        f"interleaved with the reference; {ranges} random 1 MiB ranges, interleaved; "
        f"cpus: {os.cpu_count()}\n"
    )

    def row(name: str, ours: str, reference: str, target: str) -> tuple[str, ...]:
        (p50, p99), (ref50, ref99) = latency[ours], latency[reference]
        return (
            name,
            f"{speed[ours]:.0f}",
            f"{speed[ours] / speed[reference]:.2f}x",
            f"{p50:.2f} / {p99:.2f}",
            f"{p50 / ref50:.2f}x / {p99 / ref99:.2f}x",
            target,
        )

    def reference_row(name: str, key: str) -> tuple[str, ...]:
        return (
            name,
            f"{speed[key]:.0f}",
            "",
            f"{latency[key][0]:.2f} / {latency[key][1]:.2f}",
            "",
            "",
        )

    def floor_row(key: str, reference: str) -> tuple[str, ...]:
        (p50, p99), (ref50, ref99) = latency[key], latency[reference]
        ratio = f"{p50 / ref50:.2f}x / {p99 / ref99:.2f}x"
        return ("  bare app, same stack (floor)", "", "", f"{p50:.2f} / {p99:.2f}", ratio, "")

    print(
        table(
            [
                ("path", "GET MiB/s", "x ref", "1 MiB range p50 / p99 ms", "x ref", "target"),
                reference_row("nginx, sendfile (reference)", "nginx"),
                row("ovmeet, local storage", "local", "nginx", "GET >= 0.9x, range <= 2x"),
                floor_row("floor_local", "nginx"),
                reference_row("SeaweedFS presigned GET (reference)", "direct"),
                row("ovmeet, S3 storage", "s3", "direct", "GET >= 0.9x, range <= 1.3x"),
                floor_row("floor_s3", "direct"),
            ]
        )
    )
    print()
    print(
        table(
            [
                ("ovmeet RSS growth (peak - before)", "local", "S3", "target"),
                (
                    "streaming the whole file",
                    f"{local_full_rss.growth_mib:.1f} MiB",
                    f"{s3_full_rss.growth_mib:.1f} MiB",
                    "<= 64 MiB",
                ),
                (
                    "32 concurrent range streams",
                    f"{local_many_rss.growth_mib:.1f} MiB",
                    f"{s3_many_rss.growth_mib:.1f} MiB",
                    "<= 64 MiB",
                ),
            ]
        )
    )
    print(
        f"\n32 concurrent range streams, aggregate: local {many_local:.0f} MiB/s, "
        f"S3 {many_s3:.0f} MiB/s"
    )
    for label, rss in (("local", local_full_rss), ("S3", s3_full_rss)):
        print(f"ovmeet ({label}) RSS before streaming: {rss.baseline / 1024:.0f} MiB")
    print("\nRSS (MiB) after each burst of 32 concurrent S3 range streams, fresh processes:")
    for name, curve in curves.items():
        label = "ovmeet" if name == "ovmeet" else f"ovmeet at {REFERENCE} (reference)"
        print(f"  {label}: " + " -> ".join(f"{mib:.0f}" for mib in curve))


if __name__ == "__main__":
    os.chdir(REPO)
    main()
