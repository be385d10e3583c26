"""Configuration: OpenVidu Meet's names and defaults, one clear line for a bad value."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ovmeet.support.config import Config, ConfigError, declared_settings
from ovmeet.support.settings import parse_duration
from tests.support.helpers import request_token, token_body
from tests.support.processes import LIVEKIT_SECRET, REPO, Ovmeet, base_env, run_cli


def test_defaults_are_openvidu_meets() -> None:
    config = Config.from_env({})
    assert config.server_port == 6080
    assert config.livekit_url == config.livekit_url_private == "ws://localhost:7880"
    assert (config.livekit_api_key, config.livekit_api_secret) == ("devkey", "secret")
    assert config.participant_token_ttl == 6 * 3600
    assert config.access_token_ttl == 2 * 3600
    assert config.refresh_token_ttl == 24 * 3600
    assert config.storage == "local" and config.data_dir == "./data"
    assert (config.s3_bucket, config.s3_subbucket) == ("openvidu", "openvidu-meet")
    assert config.s3_region == "us-east-1" and config.s3_path_style is True
    assert config.auth_mode == "none"
    assert config.base_url == "http://localhost:6080"
    assert [(u.username, u.role) for u in config.users] == [("admin", "ADMIN")]


def test_values_are_read_from_the_environment() -> None:
    config = Config.from_env(
        {
            "SERVER_PORT": "7000",
            "LIVEKIT_URL": "wss://lk.example.com",
            "LIVEKIT_URL_PRIVATE": "http://livekit:7880",
            "MEET_PARTICIPANT_TOKEN_EXPIRATION": "30m",
            "MEET_ACCESS_TOKEN_EXPIRATION": "45s",
            "MEET_REFRESH_TOKEN_EXPIRATION": "2d",
            "MEET_USER": "bob",
            "MEET_SECRET": "pw",
            "MEET_AUTH_MODE": "all_users",
            "MEET_STORAGE": "s3",
            "MEET_S3_SERVICE_ENDPOINT": "http://127.0.0.1:9000/",
            "MEET_S3_WITH_PATH_STYLE_ACCESS": "false",
            "MEET_COOKIE_SECURE": "true",
        }
    )
    assert config.server_port == 7000
    assert config.base_url == "http://localhost:7000"
    assert config.livekit_url_private == "http://livekit:7880"
    assert (config.participant_token_ttl, config.access_token_ttl) == (1800, 45)
    assert config.refresh_token_ttl == 2 * 86400
    assert config.user("bob") is not None and config.user("bob").role == "USER"  # type: ignore[union-attr]
    assert config.auth_mode == "all_users" and config.cookie_secure is True
    assert config.s3_endpoint == "http://127.0.0.1:9000" and config.s3_path_style is False


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("30m", 1800), ("6h", 21600), ("1d", 86400), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "h", "0h", "-1h", "1.5h", "6 hours", "1y"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MEET_STORAGE": "disk"}, "MEET_STORAGE"),
        ({"MEET_STORAGE": "s3"}, "MEET_S3_SERVICE_ENDPOINT"),
        ({"MEET_ACCESS_TOKEN_EXPIRATION": "2 hours"}, "MEET_ACCESS_TOKEN_EXPIRATION"),
        ({"MEET_AUTH_MODE": "everyone"}, "MEET_AUTH_MODE"),
        ({"SERVER_PORT": "http"}, "SERVER_PORT"),
        ({"SERVER_PORT": "70000"}, "SERVER_PORT"),
        ({"LIVEKIT_URL": "localhost:7880"}, "LIVEKIT_URL"),
        ({"MEET_COOKIE_SECURE": "maybe"}, "MEET_COOKIE_SECURE"),
        ({"LIVEKIT_API_SECRET": " "}, "LIVEKIT_API_SECRET"),
        ({"MEET_USER": "admin", "MEET_SECRET": "x"}, "MEET_USER"),
        ({"MEET_USER": "bob"}, "MEET_SECRET"),
        ({"MEET_SECRET": "pw"}, "MEET_USER"),
        ({"MEET_S3_EGRESS_ACCESS_KEY": "egress"}, "MEET_S3_EGRESS_SECRET_KEY"),
        ({"MEET_S3_EGRESS_SECRET_KEY": "s3cret"}, "MEET_S3_EGRESS_ACCESS_KEY"),
        ({"MEET_USER": "bob", "MEET_SECRET": ""}, "MEET_SECRET"),
    ],
)
def test_bad_values_name_their_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")


def test_serve_stops_with_one_line_naming_the_variable(tmp_path: object) -> None:
    env = {**base_env("http://127.0.0.1:1"), "MEET_STORAGE": "bucket"}
    result = run_cli(env, "serve", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ovmeet: configuration error: MEET_STORAGE: 'bucket' is not one of local, s3"
    ]


def start_up_lines(env: dict[str, str], *serve_args: str) -> list[str]:
    """What `ovmeet serve` logs until it listens (at most 50 lines); then it is stopped."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ovmeet", "serve", *serve_args],
        env=env,
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Uvicorn running" in line or len(lines) > 50:
                break
    finally:
        process.terminate()
        process.wait(timeout=10)
    return lines


def test_start_up_log_masks_secrets_and_warns_about_default_credentials(tmp_path: object) -> None:
    env = {
        **base_env("http://127.0.0.1:1"),
        "MEET_ADMIN_USER": "admin",
        "MEET_ADMIN_SECRET": "admin",
        "MEET_DATA_DIR": str(tmp_path),
        "MEET_API_KEY": "an-api-key-value",
        "MEET_S3_EGRESS_ACCESS_KEY": "egress-key",
        "MEET_S3_EGRESS_SECRET_KEY": "the-egress-secret-value",
    }
    log = "".join(start_up_lines(env, "--port", "0"))
    assert "configuration:" in log
    assert LIVEKIT_SECRET not in log and "an-api-key-value" not in log
    assert "the-egress-secret-value" not in log and "egress-key" in log
    assert "DEFAULT CREDENTIALS: the admin user is admin/admin" in log
    assert "Uvicorn running" in log


def test_each_default_or_weak_credential_is_named() -> None:
    defaults = Config.from_env({}).credential_warnings()
    assert len(defaults) == 2
    assert "admin/admin" in defaults[0] and "development secret" in defaults[1]
    own = {
        "MEET_ADMIN_USER": "boss",
        "MEET_ADMIN_SECRET": "long-password",
        "LIVEKIT_API_KEY": "devkey",  # the key alone is no secret
        "LIVEKIT_API_SECRET": "s" * 32,
    }
    assert Config.from_env(own).credential_warnings() == []
    short = Config.from_env({**own, "LIVEKIT_API_SECRET": "s" * 31}).credential_warnings()
    assert len(short) == 1 and "LIVEKIT_API_SECRET is 31 bytes long" in short[0]


def test_a_short_livekit_secret_is_one_start_up_warning_not_a_library_warning(
    tmp_path: Path,
) -> None:
    env = {**base_env("http://127.0.0.1:1"), "LIVEKIT_API_SECRET": "short-secret"}
    env["MEET_DATA_DIR"] = str(tmp_path)
    room = json.loads(run_cli(env, "rooms", "create").stdout)
    server = Ovmeet(env, tmp_path / "ovmeet.log").start()
    try:
        # Signing a LiveKit call token with the short secret is what PyJWT used to warn about;
        # no LiveKit listens here, so the call itself then fails.
        response = request_token(server, token_body(room, "Ana"))
        assert response.json()["message"] == "LiveKit is not available: GetParticipant failed"
    finally:
        server.stop()
    log = server.log()
    assert log.count("WEAK CREDENTIALS: LIVEKIT_API_SECRET is 12 bytes long") == 1
    assert "InsecureKeyLengthWarning" not in log and "short-secret" not in log


@pytest.mark.parametrize(
    ("env", "variable", "rule"),
    [
        ({"MEET_S3_BUCKET": "Recordings_2025"}, "MEET_S3_BUCKET", "lower-case letters"),
        ({"MEET_S3_BUCKET": "10.0.0.1"}, "MEET_S3_BUCKET", "not an IP address"),
        ({"MEET_S3_BUCKET": "ab"}, "MEET_S3_BUCKET", "3 to 63"),
        ({"MEET_S3_SUBBUCKET": "meet/../other"}, "MEET_S3_SUBBUCKET", "'.' or '..'"),
        ({"MEET_S3_SUBBUCKET": "meet\\x"}, "MEET_S3_SUBBUCKET", "backslashes"),
    ],
)
@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("rooms", "list")])
def test_a_bucket_or_prefix_s3_refuses_is_one_line_naming_the_setting_and_its_rule(
    env: dict[str, str], variable: str, rule: str, command: tuple[str, ...]
) -> None:
    s3 = {"MEET_STORAGE": "s3", "MEET_S3_SERVICE_ENDPOINT": "http://127.0.0.1:9", **env}
    result = run_cli({**base_env("http://127.0.0.1:1"), **s3}, *command)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ovmeet: configuration error: {variable}: ")
    assert rule in lines[0]


@pytest.mark.parametrize("below", ["", "data"])
def test_a_data_folder_that_is_a_file_is_named_as_such(tmp_path: Path, below: str) -> None:
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    folder = taken / below if below else taken
    result = run_cli(
        {**base_env("http://127.0.0.1:1"), "MEET_DATA_DIR": str(folder)}, "rooms", "list"
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ovmeet: configuration error: MEET_DATA_DIR: {str(folder)!r} "
        + ("is a file" if not below else f"is under a file ({taken})")
        + "; name a folder (made if missing)"
    ]


@pytest.mark.parametrize("how", ["--port", "SERVER_PORT"])
def test_a_port_in_use_is_one_line_and_status_1(tmp_path: Path, how: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**base_env("http://127.0.0.1:1"), "MEET_DATA_DIR": str(tmp_path)}
        if how == "SERVER_PORT":
            result = run_cli({**env, "SERVER_PORT": str(port)}, "serve")
        else:
            result = run_cli(env, "serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"ovmeet: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(see --host, --port, SERVER_PORT)"
    ]


def test_server_port_0_is_any_free_port_as_with_the_option(tmp_path: Path) -> None:
    env = {**base_env("http://127.0.0.1:1"), "MEET_DATA_DIR": str(tmp_path), "SERVER_PORT": "0"}
    running = start_up_lines(env)[-1]
    assert "Uvicorn running on" in running
    port = int(running.rsplit(":", 1)[1].split()[0])
    assert port not in (0, 6080)


def test_a_config_built_by_hand_has_the_defaults_the_environment_gives() -> None:
    assert Config() == Config.from_env({})


def test_every_setting_is_declared_once_with_its_help() -> None:
    declared = [setting for _, setting in declared_settings()]
    variables = [setting.variable for setting in declared]
    assert len(variables) == len(set(variables))
    assert all(setting.help and not setting.help.endswith(".") for setting in declared)
