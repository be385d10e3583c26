"""ovmeet's reaches into libraries' private parts (ovmeet/support/reaches.py): each library is
the version the reach was written against, pinned exactly, its private names used in one module
only; and the suites that matter pass on Connexion's own classes too."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from ovmeet.support.reaches import REACHES, LibraryChanged, Reach, check
from tests.support.processes import REPO

SOURCES = sorted([*(REPO / "ovmeet").rglob("*.py"), *(REPO / "handlers").rglob("*.py")])


def module_of(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    name = ".".join(parts).removesuffix(".__init__")
    return "ovmeet." + name if parts[0] == "handlers" else name


def leaf(name: str) -> str:
    return name.rpartition(".")[2]


def test_the_installed_libraries_are_the_ones_the_reaches_were_written_against() -> None:
    check()


def test_each_reached_library_is_pinned_to_exactly_that_version() -> None:
    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dependency in dependencies:
        found = re.fullmatch(r"([A-Za-z0-9_-]+)(\[[^\]]*\])?==([\w.]+)", dependency)
        if found:
            pins[found.group(1)] = found.group(3)
    assert {reach.library: reach.version for reach in REACHES} == {
        reach.library: pins.get(reach.library) for reach in REACHES
    }


def test_another_version_or_a_missing_name_stops_the_start_naming_the_library() -> None:
    newer = Reach("connexion", "9.9.9", "ovmeet.web.operations", (), "")
    with pytest.raises(LibraryChanged, match=r"^connexion 3\.3\.0 is installed, but .*==9\.9\.9$"):
        check([newer])
    renamed = Reach("minio", "7.2.20", "ovmeet.storage.s3", ("minio:Minio._put_object2",), "")
    with pytest.raises(LibraryChanged, match=r"^minio 7\.2\.20 lacks minio:Minio\._put_object2"):
        check([renamed])


def test_a_library_that_changed_stops_ovmeet_at_start_with_one_line(tmp_path: Path) -> None:
    """What an upgrade past a pin looks like: the reach check runs before anything else."""
    shadow = tmp_path / "shadow"
    fake = shadow / "minio-9.9.9.dist-info"
    fake.mkdir(parents=True)
    (fake / "METADATA").write_text("Metadata-Version: 2.1\nName: minio\nVersion: 9.9.9\n")
    env = {**os.environ, "PYTHONPATH": str(shadow), "MEET_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "ovmeet", "rooms", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "ovmeet: minio 9.9.9 is installed, but ovmeet.storage.s3 reaches into the internals "
        "of minio 7.2.20: install minio==7.2.20"
    ]


def private_attributes(path: Path) -> set[str]:
    """Private names read on anything but `self`, `cls` or `super()` in one module."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super":
            continue
        found.add(name)
    return found


def methods(path: Path) -> set[str]:
    """The names of the methods a module's classes define (an override of a library's)."""
    return {
        item.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
    }


def defined_names(path: Path) -> set[str]:
    """Private names a module defines: functions, classes, attributes it assigns."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            found.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
    return {name for name in found if name.startswith("_")}


def test_a_reachs_private_names_appear_in_its_own_module_only() -> None:
    wrong = []
    for reach in REACHES:
        private = {leaf(name) for name in reach.names if leaf(name).startswith("_")}
        for path in SOURCES:
            if not private or module_of(path) in (reach.module, "ovmeet.support.reaches"):
                continue
            if used := (private_attributes(path) | methods(path)) & private:
                wrong.append(f"{module_of(path)} uses {sorted(used)} of {reach.library}")
    assert wrong == []


def test_no_private_name_of_a_library_is_read_outside_a_reach() -> None:
    reached: dict[str, set[str]] = {reach.module: set() for reach in REACHES}
    for reach in REACHES:
        reached[reach.module] |= {leaf(name) for name in reach.names}
    ours = set().union(*(defined_names(path) for path in SOURCES)) - set().union(*reached.values())
    wrong = []
    for path in SOURCES:
        allowed = ours | reached.get(module_of(path), set())
        if foreign := private_attributes(path) - allowed:
            wrong.append(f"{module_of(path)} reads {sorted(foreign)}")
    assert wrong == []


def test_the_fence_check_sees_a_private_read_and_not_ours(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("import minio\nminio.Minio('x')._put_object()\nself._ours()\n")
    assert private_attributes(module) == {"_put_object"}


SUITES = ("tests/test_access.py", "tests/test_contract.py")
# Connexion's part is the same whatever the storage and however a recording's bytes leave:
# the local storage and the default delivery are enough.
LEAVE_OUT = "not s3 and not every_delivery_mode"


def test_the_access_and_contract_suites_pass_on_connexions_own_classes() -> None:
    """MEET_PREPARED_OPERATIONS=false: what a Connexion upgrade would run on, shown at once."""
    env = {**os.environ, "OVMEET_TEST_PREPARED_OPERATIONS": "false"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n0",
            "-p",
            "no:cacheprovider",
            "-k",
            LEAVE_OUT,
            *SUITES,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in summary and "failed" not in summary and "skipped" not in summary
