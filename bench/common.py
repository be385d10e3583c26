"""What both benchmarks share: processes on loopback, wrk, RSS sampling, a figures table."""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.processes import ADMIN, free_port, stop_process

REPO = Path(__file__).resolve().parent.parent
# The last commit before the work of issue #11 (token path, seeks, memory): "today's ovmeet",
# which bench/tokens.py and bench/stream.py measure against in the same run.
REFERENCE = "3132f13"


@contextmanager
def reference_tree(work: Path, commit: str) -> Iterator[Path]:
    """A detached worktree of `commit`, removed afterwards. Its `ovmeet` package gets its own
    `handlers` and `spec` (installed, they are `ovmeet.handlers` and `ovmeet.spec`; otherwise the
    editable install of this checkout would supply them)."""
    tree = work / "reference"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(tree), commit], cwd=REPO, check=True
    )
    for part in ("handlers", "spec"):
        if (tree / part).is_dir() and not (tree / "ovmeet" / part).exists():
            (tree / "ovmeet" / part).symlink_to(tree / part, target_is_directory=True)
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextmanager
def running(
    command: list[str],
    url: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    cwd: Path = REPO,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `command` in `cwd`, wait until `url` answers, stop it afterwards."""
    out = log.open("wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(url, process)
        yield process
    finally:
        stop_process(process)
        if log:
            out.close()  # type: ignore[union-attr]


@dataclass(frozen=True)
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0
    wrk_cpu_seconds: float = 0.0  # what wrk itself used
    socket_errors: int = 0  # connect, read, write and timeout errors together


_SOCKET_ERRORS = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNIT_MS[unit]


def wrk(url: str, script: Path, seconds: int, connections: int = 16) -> WrkResult:
    """Run wrk (one thread) with a Lua script; requests/s and latency percentiles."""
    before = _children_cpu_seconds()
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    sockets = re.search(_SOCKET_ERRORS, output)
    return WrkResult(
        rps,
        p50,
        p99,
        int(errors.group(1)) if errors else 0,
        requests,
        _children_cpu_seconds() - before,
        sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def serve_each(
    stack: ExitStack, envs: dict[str, dict[str, str]], work: Path
) -> dict[str, subprocess.Popen[bytes]]:
    """`ovmeet serve` (one worker, no access log) for each environment, on a port of its own
    (`MEET_BENCH_URL` in the environment then says where); stopped with `stack`."""
    started = {}
    for name, env in envs.items():
        port = free_port()
        env["MEET_BENCH_URL"] = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "ovmeet", "serve", "--port", str(port), "--no-access-log"]
        log = work / f"{name}.log"
        started[name] = stack.enter_context(
            running(command, f"{env['MEET_BENCH_URL']}/meet/health", env, log)
        )
    return started


def interleaved_rounds(
    urls: dict[str, str], scripts: dict[str, Path], seconds: int, rounds: int
) -> dict[str, list[WrkResult]]:
    """wrk on every url in turn, `rounds` times (after a warm-up), the order reversed every
    other round; every round of each. Any error response or socket error stops the benchmark."""
    for name, url in urls.items():
        wrk(url, scripts[name], 2)
    results: dict[str, list[WrkResult]] = {name: [] for name in urls}
    for number in range(rounds):
        order = list(urls) if number % 2 == 0 else list(reversed(urls))
        for name in order:
            result = wrk(urls[name], scripts[name], seconds)
            if result.errors or result.socket_errors:
                sys.exit(f"{name}: {result.errors + result.socket_errors} errors (HTTP or socket)")
            results[name].append(result)
    return results


def best_of_interleaved(
    urls: dict[str, str], scripts: dict[str, Path], seconds: int, rounds: int
) -> dict[str, WrkResult]:
    """Each one's best round of `interleaved_rounds`."""
    results = interleaved_rounds(urls, scripts, seconds, rounds)
    return {name: max(runs, key=lambda r: r.requests_per_second) for name, runs in results.items()}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def median_of_rounds(runs: list[WrkResult]) -> WrkResult:
    """Each figure's median over the rounds (steadier than one best round's percentiles)."""
    return WrkResult(
        statistics.median(r.requests_per_second for r in runs),
        statistics.median(r.p50_ms for r in runs),
        statistics.median(r.p99_ms for r in runs),
        sum(r.errors for r in runs),
        sum(r.requests for r in runs),
    )


def get_script(work: Path, name: str, headers: dict[str, str]) -> Path:
    """A wrk script sending GET with `headers`."""
    script = work / f"get-{name}.lua"
    lines = ['wrk.method = "GET"'] + [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lines) + "\n")
    return script


def latency_table(labels: dict[str, str], best: dict[str, WrkResult]) -> str:
    rows: list[tuple[str, ...]] = [("", "req/s", "p50 ms", "p99 ms")]
    for name, result in best.items():
        rows.append(
            (
                labels[name],
                f"{result.requests_per_second:.0f}",
                f"{result.p50_ms:.2f}",
                f"{result.p99_ms:.2f}",
            )
        )
    return table(rows)


def admin_cookie(base: str) -> dict[str, str]:
    """A Cookie header with the access token of the tests' admin, logged in at `base`."""
    response = httpx.post(
        f"{base}/meet/internal-api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
    )
    response.raise_for_status()
    return {"Cookie": f"OvMeetAccessToken={response.cookies['OvMeetAccessToken']}"}


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a running process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


class PeakRss:
    """Samples a process's resident memory every 20 ms while in use; `.peak` in KiB."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline = rss_kib(pid)
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kib(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.baseline) / 1024


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


__all__ = [
    "REFERENCE",
    "REPO",
    "PeakRss",
    "WrkResult",
    "admin_cookie",
    "best_of_interleaved",
    "cpu_seconds",
    "free_port",
    "get_script",
    "latency_table",
    "reference_tree",
    "rss_kib",
    "running",
    "serve_each",
    "table",
    "wrk",
]


def nginx_conf(work: Path, name: str, servers: str) -> Path:
    """`work/{name}.conf`: nginx in the foreground, its pid, logs and temp files in `work`,
    sending files with sendfile, serving the `servers` blocks."""
    conf = work / f"{name}.conf"
    # As root, nginx's workers would run as nobody, who cannot read our private temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (work / f"{name}-tmp").mkdir(exist_ok=True)
    conf.write_text(
        user
        + f"""daemon off;
worker_processes 1;
pid {work}/{name}.pid;
error_log {work}/{name}-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {work}/{name}-tmp;
    proxy_temp_path {work}/{name}-tmp;
{servers}
}}
"""
    )
    return conf
