"""MEET_FRONTEND_DIR: the front end's files at `/`, index.html for every other page, never a
file outside the folder, and JSON (not the page) wherever an API lives."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from ovmeet.support.config import Config, ConfigError
from tests.conftest import Servers
from tests.support.processes import Ovmeet

INDEX = "<!doctype html><title>front end</title><app-root></app-root>"


@pytest.fixture(scope="module")
def site(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Ovmeet:
    folder = tmp_path_factory.mktemp("site") / "www"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "main-abc.js").write_text("console.log('app')")
    (folder / "assets" / "logo.svg").write_text("<svg/>")
    (folder.parent / "secret.txt").write_text("outside the front end")
    (folder / ".env").write_text("MEET_ADMIN_SECRET=leaked")
    (folder / ".git").mkdir()
    (folder / ".git" / "config").write_text("[remote] url = leaked")
    return servers.start("local", MEET_FRONTEND_DIR=str(folder))


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/room/team-abc?secret=xyz",
        "/room/team-abc/participant-name",
        "/console/rooms",
        "/x.js",
    ],
)
def test_pages_are_the_index(site: Ovmeet, path: str) -> None:
    response = site.client.get(f"{site.base_url}{path}")
    assert response.status_code == 200
    assert response.text == INDEX
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/assets/../.env", "/.well-known/x"])
def test_no_dot_file_is_served(site: Ovmeet, path: str) -> None:
    response = site.client.get(f"{site.base_url}{path}")
    assert response.status_code == 404, response.text
    assert "leaked" not in response.text
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/", "/index.html", "/room/x", "/assets/../index.html"])
def test_the_index_is_never_cached_however_it_is_reached(site: Ovmeet, path: str) -> None:
    response = site.client.get(f"{site.base_url}{path}")
    assert response.status_code == 200 and response.text == INDEX
    assert response.headers["cache-control"] == "no-cache"


def test_files_are_served_as_they_are(site: Ovmeet) -> None:
    script = site.client.get(f"{site.base_url}/main-abc.js")
    assert script.text == "console.log('app')"
    assert "javascript" in script.headers["content-type"]
    assert site.client.get(f"{site.base_url}/assets/logo.svg").text == "<svg/>"
    head = site.client.head(f"{site.base_url}/main-abc.js")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len("console.log('app')"))


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "//../secret.txt",
    ],
)
def test_nothing_outside_the_folder_is_served(site: Ovmeet, path: str) -> None:
    with socket.create_connection(("127.0.0.1", site.port)) as raw:  # the path as sent
        raw.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    assert b"outside the front end" not in answer
    assert answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 404", b"HTTP/1.1 400"))


@pytest.mark.parametrize(
    "path", ["/meet/api/v1/nothing", "/meet/api/v2/rooms", "/meet/internal-api/v1/x", "/livekit/x"]
)
def test_api_paths_never_fall_back_to_the_page(site: Ovmeet, path: str) -> None:
    response = site.client.get(f"{site.base_url}{path}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["name"] == "Request Error"
    assert response.json()["message"].endswith("is not part of this API")


def test_other_methods_on_pages_are_405(site: Ovmeet) -> None:
    response = site.client.post(f"{site.base_url}/console")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/json"


def test_without_a_front_end_the_root_says_where_to_find_one(server: Ovmeet) -> None:
    root = server.client.get(f"{server.base_url}/")
    assert root.status_code == 200
    assert "MEET_FRONTEND_DIR" in root.json()["message"]
    assert server.client.get(f"{server.base_url}/console").status_code == 404


def test_a_folder_without_an_index_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MEET_FRONTEND_DIR"):
        Config.from_env({"MEET_FRONTEND_DIR": str(tmp_path)})
    (tmp_path / "index.html").write_text(INDEX)
    assert Config.from_env({"MEET_FRONTEND_DIR": str(tmp_path)}).frontend_dir == str(tmp_path)


def test_room_links_open_the_front_ends_room_page(site: Ovmeet) -> None:
    room = site.create_room("linked")
    url = httpx.URL(room["moderatorRoomUrl"])
    assert url.path == f"/room/{room['roomName']}"
    page = site.client.get(f"{site.base_url}{url.raw_path.decode()}")
    assert page.text == INDEX
