"""The wheel holds every package and spec (scripts/wheel-smoke.sh installs and runs one)."""

from __future__ import annotations

import tomllib

from ovmeet.web.paths import SPECS
from tests.support.processes import REPO


def test_every_package_directory_is_listed_for_the_wheel() -> None:
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for init in (REPO / "ovmeet").rglob("__init__.py")
    }
    mapped = {package: REPO / folder for package, folder in setuptools["package-dir"].items()}
    assert mapped == {"ovmeet.handlers": REPO / "handlers", "ovmeet.spec": REPO / "spec"}
    assert listed == on_disk | set(mapped)
    assert all((folder / "__init__.py").is_file() for folder in mapped.values())
    assert setuptools["package-data"] == {"ovmeet.spec": ["*.yaml"]}


def test_every_spec_file_is_served() -> None:
    assert {path.name for path in (REPO / "spec").glob("*.yaml")} == set(SPECS)
