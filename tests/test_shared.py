"""A checkout without ../shared runs everything else and says what it left out."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.processes import REPO


def test_tests_needing_missing_material_are_left_out_with_a_notice() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OVMEET_REQUIRE_SHARED"}
    env["OVMEET_FRONTEND_DIR"] = "/nonexistent/front-end"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_frontend.py", "-n", "0", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "LEFT OUT (not run, not passed): tests needing frontend: /nonexistent/front-end" in (
        run.stdout
    ), run.stdout[-3000:]
    assert run.returncode == 5, run.stdout[-3000:]  # pytest: no test ran; never "passed"
    required = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_frontend.py", "-n", "0", "-q", "-x"],
        cwd=REPO,
        env={**env, "OVMEET_REQUIRE_SHARED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert required.returncode == 1, required.stdout[-3000:]  # CI: missing material fails
