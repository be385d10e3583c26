"""Smoke test of an installed ovmeet (run by the Python of a fresh venv; stdlib only).

Starts `ovmeet serve --port 0` on local storage outside the repository, then checks that every
spec, the Swagger UI, login at both APIs, a room made with the API key and one with the CLI,
the security preferences and a token request are served.
Usage: python scripts/wheel_smoke.py   (exits non-zero and says why on any failure)
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def request(
    url: str, body: dict[str, object] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {**(headers or {}), **({"content-type": "application/json"} if data else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers)) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"wheel smoke test FAILED: {what}")
    print(f"ok: {what}")


def main() -> None:
    ovmeet = str(Path(sys.executable).with_name("ovmeet"))
    check(importlib.util.find_spec("handlers") is None, "no top-level 'handlers' is installed")
    work = Path(tempfile.mkdtemp(prefix="ovmeet-wheel-"))
    env = {
        **os.environ,
        "MEET_DATA_DIR": str(work / "data"),
        "MEET_ADMIN_SECRET": "smoke-pw",
        "MEET_API_KEY": "smoke-key",
    }
    log_path = work / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [ovmeet, "serve", "--port", "0"], env=env, cwd=work, stdout=log, stderr=log
        )
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline and server.poll() is None:
            found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log_path.read_text())
            port = found.group(1) if found else None
            time.sleep(0.1)
        failure = "" if port else f" (log: {log_path.read_text()[-2000:]})"
        check(port is not None, f"ovmeet serve listens{failure}")
        base = f"http://127.0.0.1:{port}"
        check(request(f"{base}/meet/health") == (200, b'{"status":"UP"}'), "health")
        apis = (
            "/meet/api/v1",
            "/meet/api/v1/auth",
            "/meet/internal-api/v1",
            "/meet/internal-api/v1/auth",
            "/livekit",
        )
        for api in apis:
            status, spec = request(f"{base}{api}/openapi.json")
            check(status == 200 and b'"openapi"' in spec, f"{api}/openapi.json is served")
            status, page = request(f"{base}{api}/ui/")
            check(status == 200 and b"swagger" in page.lower(), f"{api}/ui/ is served")
        login = {"username": "admin", "password": "smoke-pw"}
        for api in ("/meet/api/v1", "/meet/internal-api/v1"):
            status, _ = request(f"{base}{api}/auth/login", login)
            check(status == 200, f"login at {api}/auth")
        status, answer = request(
            f"{base}/meet/api/v1/rooms",
            {"expirationDate": 4_000_000_000_000, "roomNamePrefix": "api"},
            {"x-api-key": "smoke-key"},
        )
        check(status == 200 and b'"moderatorRoomUrl"' in answer, "a room made with the API key")
        status, answer = request(f"{base}/meet/api/v1/preferences/security")
        check(status == 200 and b'"roomCreationPolicy"' in answer, "the security preferences")
        created = subprocess.run(
            [ovmeet, "rooms", "create", "--prefix", "smoke"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
        )
        said = f" ({created.stderr.strip()})" if created.returncode else ""
        check(created.returncode == 0, f"ovmeet rooms create{said}")
        room = json.loads(created.stdout)
        secret = room["publisherRoomUrl"].split("secret=")[1]
        body = {"roomName": room["roomName"], "participantName": "p", "secret": secret}
        status, answer = request(f"{base}/meet/internal-api/v1/participants/token", body)
        # No LiveKit here: the request reaches the handler, which refuses to guess.
        unavailable = {
            "name": "LiveKit Error",
            "message": "LiveKit is not available: GetParticipant failed",
        }
        check(
            status == 503 and json.loads(answer) == unavailable,
            f"a token request reaches LiveKit ({status} {answer!r})",
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
