"""An air-gapped front end has its icons: ovmeet serves the web fonts (MEET_FRONTEND_FONTS_DIR)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from ovmeet.support.fonts import STYLESHEETS
from tests.conftest import Servers
from tests.support.helpers import CHROMIUM_FLAGS, chromium
from tests.support.processes import REPO, Ovmeet, base_env, run_cli
from tests.support.shared import MATERIAL

pytestmark = pytest.mark.needs_shared("frontend")

FONTS_DIR = Path(os.environ.get("OVMEET_FONTS_DIR") or REPO / ".cache" / "fonts" / "node_modules")
# No name resolves but loopback's: the machine as an air-gapped deployment sees the internet.
OFFLINE = [*CHROMIUM_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
FACES = {
    "Material Icons": "videocam",
    "Material Symbols Outlined": "settings",
    "Roboto": "Join",
}


@pytest.fixture(scope="module")
def fonts_dir() -> Path:
    assert (FONTS_DIR / ".installed").exists(), f"{FONTS_DIR}: run `make fonts`"
    return FONTS_DIR


@pytest.fixture(scope="module")
def with_fonts(servers: Servers, fonts_dir: Path) -> Ovmeet:
    return servers.start(
        "local",
        MEET_FRONTEND_DIR=str(MATERIAL["frontend"]),
        MEET_FRONTEND_FONTS_DIR=str(fonts_dir),
    )


@pytest.fixture(scope="module")
def without_fonts(servers: Servers) -> Ovmeet:
    return servers.starting("local", MEET_FRONTEND_DIR=str(MATERIAL["frontend"])).result()


@pytest.fixture(scope="module")
def offline_browser() -> Iterator[Browser]:
    with chromium(OFFLINE) as launched:
        yield launched


def test_the_page_links_ovmeets_fonts_and_each_is_served(with_fonts: Ovmeet) -> None:
    page = httpx.get(f"{with_fonts.base_url}/room/anything?secret=x").text
    assert "fonts.googleapis.com" not in page and "fonts.gstatic.com" not in page
    links = re.findall(r'<link rel="stylesheet" href="(/meet/fonts/[^"]+)">', page)
    assert links == [f"/meet/fonts/{sheet}" for sheet in STYLESHEETS]
    for link in links:
        sheet = httpx.get(f"{with_fonts.base_url}{link}")
        assert sheet.status_code == 200 and sheet.headers["content-type"].startswith("text/css")
        font = re.search(r"url\(\"?\./([^\")]+\.woff2)", sheet.text)
        assert font, link
        base = link.rsplit("/", 1)[0]
        answer = httpx.get(f"{with_fonts.base_url}{base}/{font.group(1)}")
        assert answer.status_code == 200 and answer.content[:4] == b"wOF2", (link, font)


@pytest.mark.parametrize(
    "path",
    [
        "material-icons/package.json",
        "material-icons/README.md",
        "other-package/x.css",
        "%2e%2e/%2e%2e/pyproject.toml",
        "material-icons/%2e%2e/%2e%2e/%2e%2e/index.css",
    ],
)
def test_nothing_but_the_fonts_is_served_from_the_folder(with_fonts: Ovmeet, path: str) -> None:
    answer = httpx.get(f"{with_fonts.base_url}/meet/fonts/{path}")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/json"


def test_without_the_setting_the_page_is_the_releases(without_fonts: Ovmeet) -> None:
    page = httpx.get(f"{without_fonts.base_url}/").text
    assert page == (MATERIAL["frontend"] / "index.html").read_text()
    answer = httpx.get(f"{without_fonts.base_url}/meet/fonts/{STYLESHEETS[0]}")
    assert answer.status_code == 404


def _loaded_faces(browser: Browser, server: Ovmeet) -> dict[str, int]:
    """How many faces of each family the page could load (0: the words show, not icons)."""
    page = browser.new_page()
    try:
        page.goto(f"{server.base_url}/", wait_until="load")
        return {
            family: page.evaluate(
                '([family, text]) => document.fonts.load(`24px "${family}"`, text)'
                ".then(faces => faces.length, () => 0)",
                [family, text],
            )
            for family, text in FACES.items()
        }
    finally:
        page.close()


def test_offline_the_icons_load_only_from_ovmeet(
    offline_browser: Browser, with_fonts: Ovmeet, without_fonts: Ovmeet
) -> None:
    assert all(_loaded_faces(offline_browser, with_fonts).values())
    assert not any(_loaded_faces(offline_browser, without_fonts).values())


def test_a_fonts_folder_without_the_packages_is_one_line(tmp_path: Path) -> None:
    env = {**base_env("http://127.0.0.1:1"), "MEET_FRONTEND_FONTS_DIR": str(tmp_path)}
    result = run_cli(env, "serve", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("ovmeet: configuration error: MEET_FRONTEND_FONTS_DIR: ")
    assert "make fonts" in lines[0]
