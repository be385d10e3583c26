"""Recording delivery (MEET_RECORDING_DELIVERY): redirect and accel against their limits.

One run, one recording: `redirect` (ovmeet's 302, then the presigned GET) against a presigned
SeaweedFS GET alone, and `accel` (nginx in front of ovmeet, the docs/nginx example, nginx
sending the file) against nginx sending the same file alone; `proxy` beside them. For each: the
p50 / p99 of 1 MiB random ranges (each range pays its own redirect or access check), whole-file
GET speed, ovmeet's CPU per range request, and 32 concurrent viewers.
Usage: python -m bench.delivery [--size-mib 256] [--ranges 100]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from minio import Minio

from bench.common import REPO, admin_cookie, cpu_seconds, free_port, nginx_conf, running, table
from bench.stream import MIB, _percentiles, ovmeet_server
from bench.stream import nginx_conf as nginx_alone_conf
from tests.support.media import make_mp4, pad_mp4
from tests.support.processes import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    SeaweedFS,
    base_env,
    run_cli,
)
from tests.support.proxy import nginx_command

Fetch = Callable[[int], None]


class Client:
    """Keep-alive connections by host:port, as a browser keeps them."""

    def __init__(self) -> None:
        self.connections: dict[str, http.client.HTTPConnection] = {}

    def get(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        connection = self.connections.get(parts.netloc)
        if connection is None:
            connection = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=60)
            self.connections[parts.netloc] = connection
        connection.request(
            "GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers
        )
        response = connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()


def range_fetcher(url: str, headers: dict[str, str], client: Client) -> Fetch:
    """A function that fetches 1 MiB at an offset from `url`, following one redirect."""

    def fetch(offset: int) -> None:
        wanted = {**headers, "Range": f"bytes={offset}-{offset + MIB - 1}"}
        status, answer, body = client.get(url, wanted)
        if status == 302:  # the presigned URL: the browser's next request, with its Range
            status, answer, body = client.get(answer["location"], {"Range": wanted["Range"]})
        assert status == 206 and len(body) == MIB, (status, len(body))

    return fetch


def answer_fetcher(url: str, headers: dict[str, str], client: Client) -> Fetch:
    """Only ovmeet's answer (the 302, or the X-Accel-Redirect): the floor its check adds."""

    def fetch(offset: int) -> None:
        wanted = {**headers, "Range": f"bytes={offset}-{offset + MIB - 1}"}
        status, _, _ = client.get(url, wanted)
        assert status in (200, 302), status

    return fetch


def latencies(fetchers: dict[str, Fetch], offsets: list[int]) -> dict[str, tuple[float, float]]:
    """p50 and p99 ms of each fetcher over the offsets, the fetchers interleaved."""
    times: dict[str, list[float]] = {name: [] for name in fetchers}
    for offset in offsets:
        for name, fetch in fetchers.items():
            started = time.perf_counter()
            fetch(offset)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: _percentiles(values) for name, values in times.items()}


def cpu_per_request(pid: int, fetch: Fetch, offsets: list[int]) -> float:
    """ovmeet's CPU milliseconds per range request."""
    before = cpu_seconds(pid)
    for offset in offsets:
        fetch(offset)
    return (cpu_seconds(pid) - before) * 1000 / len(offsets)


def curl(url: str, headers: dict[str, str], *extra: str) -> list[str]:
    args = ["curl", "-sS", "-L", "-o", "/dev/null", *extra, url]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    return args


def whole_speed(url: str, headers: dict[str, str], rounds: int) -> float:
    """Median MiB/s of whole-file downloads with curl (redirects followed)."""
    speeds = []
    for _ in range(rounds):
        out = subprocess.run(
            curl(url, headers, "-w", "%{speed_download} %{http_code}"),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        assert out[1] == "200", out
        speeds.append(float(out[0]) / MIB)
    return sorted(speeds)[len(speeds) // 2]


def viewers(url: str, headers: dict[str, str], size: int, streams: int = 32) -> float:
    """`streams` concurrent range downloads of distinct parts; aggregate MiB/s."""
    span = size // streams
    started = time.perf_counter()
    processes = [
        subprocess.Popen(curl(url, headers, "-r", f"{n * span}-{(n + 1) * span - 1}"))
        for n in range(streams)
    ]
    assert all(process.wait() == 0 for process in processes)
    return span * streams / MIB / (time.perf_counter() - started)


def accel_site(port: int, ovmeet_port: int, data: Path) -> str:
    """docs/nginx/accel-local.conf with the bench's values."""
    text = (REPO / "docs" / "nginx" / "accel-local.conf").read_text()
    text = text.replace("listen 127.0.0.1:8080;", f"listen 127.0.0.1:{port};")
    text = text.replace("http://127.0.0.1:6080", f"http://127.0.0.1:{ovmeet_port}")
    return text.replace("/srv/ovmeet/data/", f"{data}/")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256, help="recording size (MiB)")
    parser.add_argument("--ranges", type=int, default=100, help="1 MiB ranges per path")
    parser.add_argument("--rounds", type=int, default=3, help="whole-file downloads per path")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-delivery-"))
    try:
        run(work, args.size_mib * MIB, args.ranges, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, size: int, ranges: int, rounds: int) -> None:
    print(f"building a {size // MIB} MiB recording ...", file=sys.stderr)
    clip = pad_mp4(make_mp4(work / "clip.mp4", seconds=2), work / "big.mp4", size)
    weed = SeaweedFS(work / "seaweedfs").start()
    try:
        common = {**base_env("http://127.0.0.1:9"), "MEET_VALIDATE_RESPONSES": "false"}
        data = work / "data"
        envs = {
            "proxy": {**common, **weed.storage_env("bench")},
            "redirect": {
                **common,
                **weed.storage_env("bench"),
                "MEET_RECORDING_DELIVERY": "redirect",
                "MEET_RECORDING_URL_TTL": "1h",
            },
            "accel": {
                **common,
                "MEET_DATA_DIR": str(data),
                "MEET_RECORDING_DELIVERY": "accel",
                "MEET_TRUSTED_PROXIES": "127.0.0.1",
            },
        }
        for env in envs.values():
            env["SERVER_PORT"] = str(free_port())
        ids = {}
        for name in ("proxy", "accel"):  # proxy and redirect share the bucket's recording
            room = json.loads(run_cli(envs[name], "rooms", "create").stdout)["roomName"]
            imported = run_cli(envs[name], "recordings", "import", str(clip), "--room", room)
            assert imported.returncode == 0, imported.stderr
            ids[name] = json.loads(imported.stdout)["recordingId"]
        ids["redirect"] = ids["proxy"]
        clip.unlink()
        s3_room, _, s3_uid = ids["proxy"].split("--")
        presigned = Minio(
            urlsplit(weed.endpoint).netloc, S3_ACCESS_KEY, S3_SECRET_KEY, secure=False
        ).presigned_get_object(
            S3_BUCKET,
            f"bench/recordings/{s3_room}/{s3_room}--{s3_uid}.mp4",
            expires=timedelta(hours=1),
        )
        room_id, _, uid = ids["accel"].split("--")
        nginx_port, front_port = free_port(), free_port()
        alone = nginx_alone_conf(work, data, nginx_port)
        nginx_alone = [nginx_command(), "-c", str(alone), "-p", str(work)]
        site = accel_site(front_port, int(envs["accel"]["SERVER_PORT"]), data)
        front = [nginx_command(), "-c", str(nginx_conf(work, "front", site)), "-p", str(work)]
        commands = {name: ovmeet_server(env, work, name) for name, env in envs.items()}
        rng = random.Random(7)
        offsets = [rng.randrange(0, size - MIB) for _ in range(ranges)]
        with (
            running(nginx_alone, f"http://127.0.0.1:{nginx_port}/meet/health"),
            running(*commands["proxy"], envs["proxy"], work / "proxy.log") as proxy,
            running(*commands["redirect"], envs["redirect"], work / "redirect.log") as redirect,
            running(*commands["accel"], envs["accel"], work / "accel.log") as accel,
            running(front, f"http://127.0.0.1:{front_port}/meet/health"),
        ):
            stream = "/meet/internal-api/v1/recordings/{}/stream"
            bases = {name: f"http://127.0.0.1:{env['SERVER_PORT']}" for name, env in envs.items()}
            cookies = {name: admin_cookie(base) for name, base in bases.items()}
            urls = {
                "direct S3 (reference)": (presigned, {}),
                "redirect": (
                    bases["redirect"] + stream.format(ids["redirect"]),
                    cookies["redirect"],
                ),
                "proxy, S3": (bases["proxy"] + stream.format(ids["proxy"]), cookies["proxy"]),
                "nginx alone (reference)": (
                    f"http://127.0.0.1:{nginx_port}/recordings/{room_id}/{room_id}--{uid}.mp4",
                    {},
                ),
                "accel, nginx + ovmeet": (
                    f"http://127.0.0.1:{front_port}" + stream.format(ids["accel"]),
                    cookies["accel"],
                ),
            }
            client = Client()
            fetchers = {name: range_fetcher(url, h, client) for name, (url, h) in urls.items()}
            redirect_url = urls["redirect"]
            accel_direct = (bases["accel"] + stream.format(ids["accel"]), cookies["accel"])
            fetchers["  ovmeet's 302 alone"] = answer_fetcher(*redirect_url, client)
            fetchers["  ovmeet's X-Accel-Redirect alone"] = answer_fetcher(*accel_direct, client)
            print("1 MiB ranges ...", file=sys.stderr)
            s3_names = ["direct S3 (reference)", "redirect", "  ovmeet's 302 alone", "proxy, S3"]
            local_names = [
                "nginx alone (reference)",
                "accel, nginx + ovmeet",
                "  ovmeet's X-Accel-Redirect alone",
            ]
            latency = latencies({n: fetchers[n] for n in s3_names}, offsets) | latencies(
                {n: fetchers[n] for n in local_names}, offsets
            )
            print("CPU per request ...", file=sys.stderr)
            pids = {
                "redirect": redirect.pid,
                "proxy, S3": proxy.pid,
                "accel, nginx + ovmeet": accel.pid,
            }
            cpu = {
                name: cpu_per_request(pid, fetchers[name], offsets) for name, pid in pids.items()
            }
            client.close()
            print("whole GETs and 32 viewers ...", file=sys.stderr)
            speed = {name: whole_speed(url, h, rounds) for name, (url, h) in urls.items()}
            many = {name: viewers(url, h, size) for name, (url, h) in urls.items()}
    finally:
        weed.stop()

    print(
        f"\n{size // MIB} MiB recording; {ranges} random 1 MiB ranges (each with its own "
        f"redirect or access check), interleaved with the reference; whole file: median of "
        f"{rounds} curl downloads; cpus: {os.cpu_count()}\n"
    )
    reference = {name: "direct S3 (reference)" for name in s3_names}
    reference |= {name: "nginx alone (reference)" for name in local_names}
    rows: list[tuple[str, ...]] = [
        (
            "path",
            "range p50 / p99 ms",
            "x ref",
            "GET MiB/s",
            "x ref",
            "ovmeet CPU ms/req",
            "32 viewers MiB/s",
        )
    ]
    for name in [*s3_names, *local_names]:
        ref = reference[name]
        (p50, p99), (r50, r99) = latency[name], latency[ref]
        own = name == ref
        rows.append(
            (
                name,
                f"{p50:.2f} / {p99:.2f}",
                "" if own else f"{p50 / r50:.2f}x / {p99 / r99:.2f}x",
                f"{speed[name]:.0f}" if name in speed else "",
                "" if own or name not in speed else f"{speed[name] / speed[ref]:.2f}x",
                f"{cpu[name]:.2f}" if name in cpu else "",
                f"{many[name]:.0f}" if name in many else "",
            )
        )
    print(table(rows))
    print("\ntargets: redirect and accel range p50 <= 1.2x their reference; whole GET >= 0.95x")


if __name__ == "__main__":
    os.chdir(REPO)
    main()
