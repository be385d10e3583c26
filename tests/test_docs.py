"""The README and docs say only what is true: their commands, settings and endpoints exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ovmeet.cli import build_parser
from ovmeet.support.config import declared_settings, settings_table
from ovmeet.web.app import load_spec
from ovmeet.web.paths import FONTS, HEALTH, METRICS, READY, SPECS, WEBCOMPONENT
from tests.support.processes import REPO

README = REPO / "README.md"
DOCS = [README, *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]
SETTING = re.compile(r"\b(MEET_[A-Z0-9_]+|LIVEKIT_[A-Z0-9_]+|SERVER_PORT)\b")


def settings_read_by_config() -> set[str]:
    """Every variable `Config` declares: the one place settings are declared."""
    return {declared.variable for _, declared in declared_settings()}


def test_the_readme_fits_on_a_few_screens() -> None:
    assert len(README.read_text().splitlines()) <= 160


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_setting_a_doc_names_is_one_ovmeet_reads(doc: Path) -> None:
    known = settings_read_by_config()
    named = set(SETTING.findall(doc.read_text()))
    prefixes = {name for name in named if name.endswith("_")}  # MEET_ADMIN_* and the like
    assert all(any(k.startswith(p) for k in known) for p in prefixes), prefixes
    assert sorted(named - prefixes - known) == []


def test_the_configuration_table_is_the_one_the_declarations_make() -> None:
    """Regenerate it with `python -c 'from ovmeet.support.config import settings_table;
    print(settings_table())'` after changing a setting."""
    doc = (REPO / "docs" / "configuration.md").read_text()
    table = "\n".join(line for line in doc.splitlines() if line.startswith("|")) + "\n"
    assert table == settings_table()
    listed = [name for row in table.splitlines()[2:] for name in SETTING.findall(row.split("|")[1])]
    assert sorted(listed) == sorted(settings_read_by_config()), "a setting has two rows, or none"


def test_every_make_target_named_exists() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.M))
    for doc in DOCS:
        named = set(re.findall(r"`make ([a-z][a-z-]*)", doc.read_text()))
        named |= set(re.findall(r"^make ([a-z][a-z-]*)", doc.read_text(), re.M))
        assert named <= targets, (doc.name, named - targets)


# What the README's placeholders stand for, to parse its command lines as written.
SAMPLES = {"P": "team", "N": "2", "NAME": "room-x", "FILE": "clip.mp4", "ROOM": "room-x"}
SAMPLES |= {"ID": "EG_x", "SECTION": "security", "JSON": "{}"}


def test_every_command_of_the_readme_parses_as_written() -> None:
    block = README.read_text().split("## The command line", 1)[1].split("```")[1]
    commands = [
        alternative.split()
        for line in block.strip().splitlines()
        for alternative in line.split("#")[0].split("|")
    ]
    assert len(commands) >= 8
    for words in commands:
        args = [SAMPLES.get(word.strip("[]"), word.strip("[]")) for word in words]
        parsed = build_parser().parse_args(args[1:] if args[0] == "ovmeet" else args)
        assert parsed.command in ("serve", "rooms", "recordings", "preferences", "gc"), words


def test_every_endpoint_of_the_readme_is_served() -> None:
    served = {HEALTH, READY, METRICS, WEBCOMPONENT, FONTS}
    for spec, base_paths in SPECS.items():
        for base in base_paths:
            served |= {f"{base}/ui/", f"{base}/openapi.json"}
            served |= {base + path for path in load_spec(spec)["paths"]}
    patterns = [
        re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(p)) + "$") for p in served
    ]
    named = re.findall(r"localhost:6080(/[^\s`'\"?]*)", README.read_text())
    assert named, "the README names no endpoint"
    for path in named:
        assert any(pattern.match(path) for pattern in patterns), path


def test_the_readme_quotes_no_figure_that_goes_stale() -> None:
    text = README.read_text()
    assert not re.search(r"\b\d+ (tests|passed)\b", text)
    assert "not served yet" not in text and "not yet" not in text
