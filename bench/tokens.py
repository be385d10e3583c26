"""Token issuing: ovmeet as it is against ovmeet as it was (a git worktree of `--reference`),
in one run, on local storage and on S3 (SeaweedFS).

wrk, one thread, 16 connections, one server worker each, one LiveKit stand-in process; rounds
interleave the servers. Also measured, on local storage: ovmeet with `--workers 2`, and ovmeet
with `--many-rooms` rooms stored. Prints requests/s, p50/p99, CPU per token and every ratio,
and what two workers could reach on this machine (its cores shared with the stand-in and wrk);
and --workers 2 against one worker on an operation without a LiveKit call.
With --livekit real, the 409 check calls the real LiveKit server's GetParticipant (make livekit).
On S3 the Node backend ovmeet replaces runs beside them when built (bench/node_reference.py).
Usage: python -m bench.tokens [--seconds 10] [--rounds 3] [--reference COMMIT] [--livekit real]
       [--storage local|s3|both] [--no-node]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench import node_reference
from bench.common import (
    REFERENCE,
    REPO,
    WrkResult,
    cpu_seconds,
    free_port,
    reference_tree,
    running,
    table,
    wrk,
)
from ovmeet.rooms.store import RoomOptions, new_room, store_room
from ovmeet.storage import open_storage
from ovmeet.support.config import Config
from tests.support.livekit_server import LiveKitServer
from tests.support.processes import (
    LIVEKIT_KEY,
    LIVEKIT_SECRET,
    SeaweedFS,
    base_env,
    run_cli,
)

PATH = "/meet/internal-api/v1/participants/token"
NODE = f"Node reference ({node_reference.COMMIT})"


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path = REPO
    port: int = field(default_factory=free_port)
    results: list[WrkResult] = field(default_factory=list)
    pid: int = 0
    # CPU ms per token of this server's process, of the LiveKit stand-in and of wrk, per round
    cpu_ms: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def best(self) -> WrkResult:
        return max(self.results, key=lambda r: r.requests_per_second)


def serve(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ovmeet", "serve", "--port", str(port), "--no-access-log", *extra]


def storage_env(kind: str, work: Path, name: str, weed: SeaweedFS | None) -> dict[str, str]:
    if kind == "local":
        return {"MEET_STORAGE": "local", "MEET_DATA_DIR": str(work / f"data-{name}")}
    assert weed is not None
    return weed.storage_env(f"bench-{name}")


def bench_room(env: dict[str, str]) -> tuple[str, str]:
    """A fresh room of that storage: its name and publisher secret."""
    room = json.loads(run_cli(env, "rooms", "create", "--prefix", "bench").stdout)
    return room["roomName"], room["publisherRoomUrl"].split("secret=")[1]


def token_script(work: Path, env: dict[str, str], name: str) -> Path:
    """A wrk script asking for a publisher token of a fresh room of that storage."""
    room, secret = bench_room(env)
    body = json.dumps({"roomName": room, "participantName": "bench", "secret": secret})
    script = work / f"token-{name}.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    return script


async def store_rooms(env: dict[str, str], count: int) -> None:
    """`count` more rooms in that storage, as ovmeet stores them."""
    config = Config.from_env(env)
    storage = open_storage(config)
    try:
        for start in range(0, count, 500):
            batch = [new_room(config, RoomOptions("many")) for _ in range(min(500, count - start))]
            await asyncio.gather(*(store_room(storage, room) for room in batch))
    finally:
        await storage.aclose()


def node_token_script(work: Path, reference: node_reference.NodeReference) -> Path:
    """The same request, for a fresh room of the Node reference."""
    room = node_reference.create_room(reference, "bench")
    body = {
        "roomName": room["roomName"],
        "participantName": "bench",
        "secret": room["publisherRoomUrl"].split("secret=")[1],
    }
    script = work / "token-node.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(json.dumps(body))}\n"
    )
    return script


def check_reference_imports(tree: Path, env: dict[str, str]) -> None:
    """The reference server must run the worktree's code, not this checkout's."""
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ovmeet, ovmeet.handlers.participants as h, ovmeet.spec as s; "
            "print(ovmeet.__file__, h.__file__, *s.__path__)",
        ],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not all(Path(path).is_relative_to(tree) for path in where):
        sys.exit(f"the reference imports {where}, not the worktree {tree}")


def measure(
    servers: list[Server], scripts: dict[str, Path], seconds: int, rounds: int, standin: int
) -> None:
    for server in servers:
        warm = wrk(server.url + PATH, scripts[server.name], 2)
        if warm.errors:
            sys.exit(f"{server.name} answered errors while warming up")
    for _ in range(rounds):
        for server in servers:
            before = cpu_seconds(server.pid), cpu_seconds(standin)
            result = wrk(server.url + PATH, scripts[server.name], seconds)
            used = cpu_seconds(server.pid) - before[0], cpu_seconds(standin) - before[1]
            server.results.append(result)
            per_token = 1000 / max(1, result.requests)
            server.cpu_ms.append(
                (used[0] * per_token, used[1] * per_token, result.wrk_cpu_seconds * per_token)
            )


def workers_ceiling(one: Server) -> str:
    """What two workers could reach on this machine: all its cores busy with tokens, each
    token costing what one worker's best round measured in ovmeet, the stand-in and wrk."""
    best = one.results.index(one.best())
    ours, standin, load = one.cpu_ms[best]
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / (ours + standin + load)
    return (
        f"this machine's ceiling for it: {cores} cores / CPU per token (ovmeet {ours:.2f} ms"
        f" + LiveKit {standin:.2f} ms + wrk {load:.2f} ms) = {ceiling:.0f} req/s"
        f" = {ceiling / one.best().requests_per_second:.2f}x one worker"
    )


def role_scaling(one: Server, two: Server, work: Path, seconds: int, rounds: int) -> str:
    """--workers 2 against one worker where LiveKit takes no part: the role a secret opens
    (getParticipantRole, the front end's call before it asks for a token)."""
    room, secret = bench_room(one.env)
    script = work / "role.lua"
    script.write_text('wrk.method = "GET"\n')
    path = f"/meet/internal-api/v1/rooms/{room}/participant-role?secret={secret}"
    best = {one.name: 0.0, two.name: 0.0}
    for server in (one, two):
        wrk(server.url + path, script, 2)
    for _ in range(rounds):
        for server in (one, two):
            result = wrk(server.url + path, script, seconds)
            if result.errors:
                sys.exit(f"{server.name} answered errors to getParticipantRole")
            best[server.name] = max(best[server.name], result.requests_per_second)
    return (
        f"GET participant-role (no LiveKit call): 1 worker {best[one.name]:.0f} req/s, "
        f"--workers 2 {best[two.name]:.0f} req/s = {best[two.name] / best[one.name]:.2f}x"
    )


def report(title: str, servers: list[Server], reference: Server) -> None:
    base = reference.best()
    rows: list[tuple[str, ...]] = [
        ("server", "req/s", "p50 ms", "p99 ms", "non-2xx", "x ref", "CPU ms/token")
    ]
    for server in servers:
        r = server.best()
        # The CPU of one process: a --workers server's work is in its children.
        cpu = (
            "-"
            if "--workers" in server.name
            else f"{server.cpu_ms[server.results.index(r)][0]:.2f}"
        )
        rows.append(
            (
                server.name,
                f"{r.requests_per_second:.0f}",
                f"{r.p50_ms:.2f}",
                f"{r.p99_ms:.2f}",
                str(r.errors),
                f"{r.requests_per_second / base.requests_per_second:.2f}x",
                cpu,
            )
        )
    ours = servers[0].best()
    print(f"\n{title}")
    print(table(rows))
    print(
        f"p99 {ours.p99_ms:.1f} ms against {base.p99_ms:.1f} ms: "
        f"{ours.p99_ms / base.p99_ms:.0%} of the reference's"
    )
    for node in (server for server in servers if server.name == NODE):
        theirs = node.best()
        print(
            f"ovmeet / {NODE}: {ours.requests_per_second / theirs.requests_per_second:.2f}x "
            f"req/s, p99 {ours.p99_ms:.1f} ms against {theirs.p99_ms:.1f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="measured seconds per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server")
    parser.add_argument("--reference", default=REFERENCE, help="the commit to compare with")
    parser.add_argument("--many-rooms", type=int, default=100_000, help="0 to skip")
    parser.add_argument("--storage", choices=("local", "s3", "both"), default="both")
    parser.add_argument(
        "--no-node",
        action="store_true",
        help="leave out the Node reference (on S3; scripts/build-node-reference.sh builds it)",
    )
    parser.add_argument(
        "--livekit",
        choices=("standin", "real"),
        default="standin",
        help="answer GetParticipant with the stand-in, or the real server (make livekit)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ovmeet-bench-tokens-"))
    real = LiveKitServer(work / "livekit", LIVEKIT_KEY, LIVEKIT_SECRET, [])
    livekit_port = real.port if args.livekit == "real" else free_port()
    common = {
        **base_env(f"http://127.0.0.1:{livekit_port}"),
        "MEET_AUTH_MODE": "none",
        "MEET_VALIDATE_RESPONSES": "false",
    }
    standin = [sys.executable, "-m", "tests.support.livekit_standin", "--port", str(livekit_port)]
    standin += ["--api-key", LIVEKIT_KEY, "--api-secret", LIVEKIT_SECRET]
    kinds = ("local", "s3") if args.storage == "both" else (args.storage,)
    print(
        f"POST {PATH}, wrk 16 connections, best of {args.rounds} interleaved rounds x "
        f"{args.seconds} s, cpus: {os.cpu_count()}; reference: ovmeet at {args.reference}; "
        f"LiveKit: {'the real server' if args.livekit == 'real' else 'the stand-in'}"
    )
    with ExitStack() as stack:
        tree = stack.enter_context(reference_tree(work, args.reference))
        if args.livekit == "real":
            real.start()
            stack.callback(real.stop)
            assert real.process is not None
            standin_pid = real.process.pid
        else:
            standin_pid = stack.enter_context(
                running(standin, f"http://127.0.0.1:{livekit_port}/_standin/calls")
            ).pid
        node_missing = "left out (--no-node)" if args.no_node else node_reference.missing()
        if "s3" in kinds and node_missing:
            print(f"the Node reference: {node_missing}")
        weed = SeaweedFS(work / "weed").start() if "s3" in kinds else None
        if weed is not None:
            stack.callback(weed.stop)
        for kind in kinds:
            env = {
                name: {**common, **storage_env(kind, work, name, weed)} for name in ("new", "ref")
            }
            env["ref"]["PYTHONPATH"] = str(tree)
            check_reference_imports(tree, env["ref"])
            scripts = {"ovmeet": token_script(work, env["new"], "new")}
            scripts["reference"] = token_script(work, env["ref"], "ref")
            ours = Server("ovmeet", [], env["new"])
            reference = Server("reference", [], env["ref"], cwd=tree)
            servers = [ours, reference]
            if kind == "local":
                two = Server("ovmeet --workers 2", [], env["new"])
                scripts[two.name] = scripts["ovmeet"]
                two.command = serve(two.port, "--workers", "2")
                servers.append(two)
                if args.many_rooms:
                    many_env = {**common, **storage_env(kind, work, "many", weed)}
                    many = Server(f"ovmeet, {args.many_rooms} rooms", [], many_env)
                    scripts[many.name] = token_script(work, many_env, "many")
                    asyncio.run(store_rooms(many_env, args.many_rooms))
                    many.command = serve(many.port)
                    servers.append(many)
            ours.command, reference.command = serve(ours.port), serve(reference.port)
            with ExitStack() as running_servers:
                for server in servers:
                    log = work / f"{server.name.replace(' ', '_')}-{kind}.log"
                    server.pid = running_servers.enter_context(
                        running(
                            server.command, f"{server.url}/meet/health", server.env, log, server.cwd
                        )
                    ).pid
                if kind == "s3" and not node_missing:
                    assert weed is not None
                    node = running_servers.enter_context(
                        node_reference.node_reference(
                            work / "node",
                            f"http://127.0.0.1:{livekit_port}",
                            LIVEKIT_KEY,
                            LIVEKIT_SECRET,
                            weed.storage_env("bench-node"),
                        )
                    )
                    node_server = Server(NODE, [], {}, port=int(node.url.rpartition(":")[2]))
                    node_server.pid = node.pid
                    scripts[NODE] = node_token_script(work, node)
                    servers.append(node_server)
                measure(servers, scripts, args.seconds, args.rounds, standin_pid)
                if kind == "local":
                    roles = role_scaling(ours, servers[2], work, args.seconds, args.rounds)
            report(f"{kind} storage", servers, reference)
            if kind == "local":
                one, two_best = ours.best(), servers[2].best()
                print(
                    f"--workers 2 / 1 worker: "
                    f"{two_best.requests_per_second / one.requests_per_second:.2f}x; "
                    + workers_ceiling(ours)
                )
                print(roles)
                if args.many_rooms:
                    big = servers[3].best()
                    print(
                        f"p50 with {args.many_rooms} rooms stored / with 1: "
                        f"{big.p50_ms / one.p50_ms:.2f}x"
                    )


if __name__ == "__main__":
    os.chdir(REPO)
    main()
