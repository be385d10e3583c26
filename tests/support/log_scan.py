"""After a test run: no ovmeet log of it may hold a secret, a token or a cookie value."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.processes import ADMIN, LIVEKIT_SECRET, S3_SECRET_KEY, USER

TESTS = Path(__file__).resolve().parents[1]
# Any JWT (access, refresh, participant, LiveKit call tokens: all start with {"alg"... or {"...).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}")
# A room secret in a URL, unless masked.
_ROOM_SECRET = re.compile(r"secret=(?!\*\*\*)[A-Za-z0-9_-]{4,}")
_API_KEY_CONSTANT = re.compile(r'(?:API_KEY = |"MEET_API_KEY": )"([^"]+)"')


def known_secrets() -> set[str]:
    """Every fixed secret the tests give ovmeet: passwords, the LiveKit and S3 secrets, and
    each API key a test module defines."""
    found = {ADMIN[1], USER[1], LIVEKIT_SECRET, S3_SECRET_KEY}
    for module in TESTS.glob("test_*.py"):
        found.update(_API_KEY_CONSTANT.findall(module.read_text()))
    return found


def findings(root: Path) -> list[str]:
    """'file: what' for each secret, token or room secret found in root's ovmeet-*.log files."""
    secrets = known_secrets()
    found = []
    for log in sorted(root.rglob("ovmeet*.log")):
        text = log.read_text(errors="replace")
        found += [f"{log}: the secret {s[:4]}..." for s in secrets if s in text]
        found += [f"{log}: a token {m[:12]}..." for m in _JWT.findall(text)]
        found += [f"{log}: a room secret {m[:10]}..." for m in _ROOM_SECRET.findall(text)]
    return found
