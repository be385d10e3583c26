"""`make run`: everything a meeting needs, on loopback, and the link of a ready room.

Starts a local LiveKit server (`livekit-server` from PATH, or the one `make livekit` builds) with
a key pair generated once into `data/livekit.env`, then `ovmeet serve` on the embedded default
(local storage in ./data) with those credentials and LiveKit's webhooks pointed at it, and the
front end if one is configured (and, with the release's web component, the embedding example of
examples/ on the next port). Where neither Go nor `livekit-server` is there, it says so in one
line and starts ovmeet alone. A LIVEKIT_URL already set means "use that LiveKit": nothing local.
Ctrl-C stops both.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VERSION = (REPO / "scripts" / "livekit-version").read_text().strip()
BUILT = REPO / ".cache" / "livekit" / VERSION / "livekit-server"
# The release's front end beside the repository, where the team keeps it (see the README).
TEAM_FRONTEND = REPO.parent / "shared" / "frontend" / "openvidu-meet-fb0bf4b1"
TEAM_WEBCOMPONENT = (
    REPO.parent / "shared" / "frontend" / "webcomponent-fb0bf4b1" / "openvidu-meet.bundle.min.js"
)
FONTS = REPO / ".cache" / "fonts" / "node_modules"  # `make fonts`
LIVEKIT_PORT, LIVEKIT_UDP_PORT = 7880, 7882


def _stop(signum: int, _frame: object) -> None:
    """SIGTERM (`kill`, `timeout`, make passing on its own) stops everything as Ctrl-C does."""
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _stop)
    env = dict(os.environ)
    data = Path(env.get("MEET_DATA_DIR", "data"))
    port = int(env.get("SERVER_PORT", "6080"))
    children: list[subprocess.Popen[bytes]] = []
    if "LIVEKIT_URL" in env:
        print(f"make run: using the LiveKit at {env['LIVEKIT_URL']} (LIVEKIT_URL is set)")
    else:
        binary = _livekit_binary()
        if binary is None:
            print(
                "make run: no local LiveKit (neither Go nor livekit-server is installed): "
                "ovmeet starts without one; set LIVEKIT_URL, LIVEKIT_API_KEY and "
                "LIVEKIT_API_SECRET to use yours"
            )
        else:
            key, secret = _credentials(data)
            env.update(
                LIVEKIT_URL=f"ws://localhost:{LIVEKIT_PORT}",
                LIVEKIT_API_KEY=key,
                LIVEKIT_API_SECRET=secret,
            )
            children.append(_start_livekit(binary, data, key, secret, port))
    if "MEET_FRONTEND_DIR" not in env and (TEAM_FRONTEND / "index.html").exists():
        env["MEET_FRONTEND_DIR"] = str(TEAM_FRONTEND)
    if "MEET_FRONTEND_FONTS_DIR" not in env and (FONTS / ".installed").exists():
        env["MEET_FRONTEND_FONTS_DIR"] = str(FONTS)
    if "MEET_WEBCOMPONENT_FILE" not in env and TEAM_WEBCOMPONENT.exists():
        env["MEET_WEBCOMPONENT_FILE"] = str(TEAM_WEBCOMPONENT)
    example = None
    if env.get("MEET_WEBCOMPONENT_FILE") and "MEET_FRONTEND_DIR" in env:
        # The embedding example, on another site (127.0.0.1) than ovmeet's links (localhost).
        example = f"http://127.0.0.1:{port + 1}"
        env.setdefault("MEET_EMBED_ORIGINS", example)
        children.append(_serve_example(port + 1))
    ovmeet = str(Path(sys.executable).with_name("ovmeet"))
    children.append(subprocess.Popen([ovmeet, "serve"], env=env))
    try:
        _wait_for(f"http://127.0.0.1:{port}/meet/health", "ovmeet", children[-1])
        made = subprocess.run(
            [ovmeet, "rooms", "create", "--prefix", "demo"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        room = json.loads(made.stdout)
        print()
        print("make run: a room is ready; open it in two browser tabs to meet yourself:")
        print(f"  moderator: {room['moderatorRoomUrl']}")
        print(f"  publisher: {room['publisherRoomUrl']}")
        if "MEET_FRONTEND_DIR" not in env:
            print("  (no front end is configured: set MEET_FRONTEND_DIR, see the README)")
        if example is not None:
            query = urllib.parse.urlencode(
                {
                    "meet": f"http://localhost:{port}",
                    "room": room["moderatorRoomUrl"],
                    "name": "Ana",
                }
            )
            print(f"  embedded in another site's page: {example}/embed.html?{query}")
        print("Ctrl-C stops everything.")
        children[-1].wait()
    except KeyboardInterrupt:
        print("make run: stopping")
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
    return 0


def _serve_example(port: int) -> subprocess.Popen[bytes]:
    """examples/ on 127.0.0.1:`port`, with Python's own static file server."""
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    return subprocess.Popen(
        command, cwd=REPO / "examples", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _livekit_binary() -> Path | None:
    """livekit-server from PATH, else the pinned build (built now if Go is there)."""
    on_path = shutil.which("livekit-server")
    if on_path:
        return Path(on_path)
    if not BUILT.exists():
        if shutil.which("go") is None:
            return None
        subprocess.run([str(REPO / "scripts" / "build-livekit.sh")], check=True)
    return BUILT


def _credentials(data: Path) -> tuple[str, str]:
    """The local LiveKit's key pair: generated once, then read back (access cookies are signed
    with a key derived from the secret, so it must not change between runs)."""
    path = data / "livekit.env"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        key, secret = f"ovmeet-{secrets.token_hex(4)}", secrets.token_urlsafe(32)
        path.touch(mode=0o600)
        path.write_text(f"LIVEKIT_API_KEY={key}\nLIVEKIT_API_SECRET={secret}\n")
    values = dict(line.split("=", 1) for line in path.read_text().split())
    return values["LIVEKIT_API_KEY"], values["LIVEKIT_API_SECRET"]


def _start_livekit(
    binary: Path, data: Path, key: str, secret: str, ovmeet_port: int
) -> subprocess.Popen[bytes]:
    config = {
        "port": LIVEKIT_PORT,
        "bind_addresses": ["127.0.0.1"],
        "keys": {key: secret},
        "rtc": {
            "udp_port": LIVEKIT_UDP_PORT,
            "tcp_port": 0,
            "node_ip": "127.0.0.1",
            "use_external_ip": False,
            "enable_loopback_candidate": True,
            "ips": {"includes": ["127.0.0.1/32"]},
            "stun_servers": ["127.0.0.1:3478"],  # never a public STUN server
        },
        "webhook": {"api_key": key, "urls": [f"http://127.0.0.1:{ovmeet_port}/livekit/webhook"]},
    }
    path = data / "livekit.yaml"
    path.touch(mode=0o600)
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    log = (data / "livekit.log").open("ab")
    print(f"make run: LiveKit {binary} on ws://localhost:{LIVEKIT_PORT} (log: {data}/livekit.log)")
    process = subprocess.Popen([str(binary), "--config", str(path)], stdout=log, stderr=log)
    _wait_for(f"http://127.0.0.1:{LIVEKIT_PORT}/", "LiveKit", process)
    return process


def _wait_for(url: str, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"make run: {what} exited (status {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (loopback)
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"make run: {what} did not answer at {url} within 60 s")


if __name__ == "__main__":
    sys.exit(main())
