"""Third-party material the team keeps beside the repository (`../shared`), never inside it.

Tests that need it carry `@needs_shared(NAME)`. Where it is missing (a clone on its own) they
are left out with a notice at the end of the run; with OVMEET_REQUIRE_SHARED=1 (.ci/run sets it)
they run and fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import REPO

SHARED = REPO.parent / "shared"
MATERIAL = {
    # The OpenVidu Meet web front end of the release (2025-03-31), built.
    "frontend": Path(
        os.environ.get("OVMEET_FRONTEND_DIR") or SHARED / "frontend" / "openvidu-meet-fb0bf4b1"
    ),
    # That release's <openvidu-meet> web component, built (what embedding pages load).
    "webcomponent": SHARED / "frontend" / "webcomponent-fb0bf4b1" / "openvidu-meet.bundle.min.js",
    # That release's public REST API document (the interface our public spec keeps).
    "reference-api": SHARED / "reference" / "openvidu-meet-api.yaml",
}


def needs_shared(name: str) -> pytest.MarkDecorator:
    assert name in MATERIAL, name
    return pytest.mark.needs_shared(name)


def missing(name: str) -> bool:
    return not MATERIAL[name].exists()


def required() -> bool:
    return os.environ.get("OVMEET_REQUIRE_SHARED") == "1"
