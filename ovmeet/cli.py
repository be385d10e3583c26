"""The `ovmeet` command: serve the API, and manage rooms and recordings with the same config."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from ovmeet.livekit.gateway import LiveKitGateway
from ovmeet.preferences.store import SECTIONS, GlobalPreferences
from ovmeet.recordings import store as recordings
from ovmeet.rooms import store as rooms
from ovmeet.services import Services
from ovmeet.shared import redis_state
from ovmeet.storage import Storage, open_storage
from ovmeet.support import logs, reaches
from ovmeet.support.config import Config, ConfigError
from ovmeet.support.errors import ApiError, UnprocessableEntity
from ovmeet.support.metrics import MULTIPROCESS_DIR
from ovmeet.support.reaches import LibraryChanged
from ovmeet.support.settings import parse_duration

logger = logging.getLogger("ovmeet")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logs.quiet_libraries()
    try:
        reaches.check_installed()
        if args.command == "serve" and args.port:
            # --port is SERVER_PORT for this run: the default MEET_BASE_URL follows it (the
            # workers of --workers read the same environment).
            os.environ["SERVER_PORT"] = str(args.port)
        if args.command == "serve" and args.no_access_log:
            os.environ["MEET_ACCESS_LOG"] = "false"
        config = Config.from_env(os.environ)
        if args.command == "serve":
            logs.configure(config.log_format)
            return serve(config, args.host, args.port, args.workers)
        result = asyncio.run(_run(config, args))
    except ConfigError as error:
        print(f"ovmeet: configuration error: {error}", file=sys.stderr)
        return 2
    except (ApiError, LibraryChanged) as error:  # a DependencyError says where and why
        print(f"ovmeet: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"ovmeet: {error}", file=sys.stderr)
        return 1
    if result is not None:
        return _print(json.dumps(result, indent=2))
    return 0


def _print(text: str) -> int:
    """Print `text`; a reader that stopped early (`| head -1`) is not an error of ours."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would flush again at exit and fail on the closed pipe: point stdout elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


class CannotListen(OSError):
    """ovmeet cannot listen where it is told to; the message says where and why."""


def _port_to_listen_on(host: str, port: int) -> int:
    """`port`, or for 0 a free one, once a bind to it succeeded: what is wrong (in use, not an
    address of this machine) is said in one line before anything starts, not by uvicorn's log."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind((host, port))
            return int(probe.getsockname()[1])
    except OSError as error:
        reason = error.strerror or str(error)
        raise CannotListen(
            f"cannot listen on {host}:{port}: {reason} (see --host, --port, SERVER_PORT)"
        ) from None


def serve(config: Config, host: str, port: int | None, workers: int) -> int:
    """Check configuration and storage, then run uvicorn (one app per worker)."""
    import uvicorn

    from ovmeet.services import check_livekit, check_redis, prepare_storage
    from ovmeet.web.app import create_served_app
    from ovmeet.web.protocol import BoundedHttpToolsProtocol

    wanted = config.server_port if port is None else port
    port = _port_to_listen_on(host, wanted)
    if port != wanted:
        # Any free port: the default MEET_BASE_URL (and every worker) follows the one chosen.
        os.environ["SERVER_PORT"] = str(port)
        config = Config.from_env(os.environ)
    logger.info("configuration: %s", json.dumps(config.describe()))
    for warning in config.credential_warnings():
        logger.warning("%s", warning)
    for warning in config.embedding_warnings():
        logger.warning("%s", warning)
    if config.webcomponent_file is None:
        logger.info(
            "embedding's script is not served: set MEET_WEBCOMPONENT_FILE to the release's "
            "openvidu-meet.bundle.min.js to serve it at /meet/v1/openvidu-meet.js"
        )
    asyncio.run(check_redis(config))
    asyncio.run(prepare_storage(config))
    asyncio.run(check_livekit(config))
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,  # ovmeet's own access log (ovmeet.web.observe) replaces uvicorn's
        "log_config": None,  # the logging of ovmeet.support.logs, in every worker
        "http": BoundedHttpToolsProtocol,
        # SIGTERM: stop accepting, let what is in flight finish for up to this long, then close.
        "timeout_graceful_shutdown": config.shutdown_grace,
        "timeout_keep_alive": config.http_keepalive_timeout,
        "server_header": False,
        # X-Forwarded-For and -Proto count only from the proxies the configuration names.
        "proxy_headers": bool(config.trusted_proxies),
        "forwarded_allow_ips": list(config.trusted_proxies),
    }
    if workers == 1:
        uvicorn.run(create_served_app(config), **options)
        return 0
    # Each worker reads the same environment and builds its own app; their metrics meet in
    # files of one folder, which /metrics adds up.
    metrics_dir = None
    if not os.environ.get(MULTIPROCESS_DIR):
        metrics_dir = tempfile.mkdtemp(prefix="ovmeet-metrics-")
        os.environ[MULTIPROCESS_DIR] = metrics_dir
    try:
        uvicorn.run("ovmeet.web.app:create_served_app", factory=True, workers=workers, **options)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


async def _run(config: Config, args: argparse.Namespace) -> Any:
    storage = open_storage(config)
    try:
        async with redis_state.changes_told(config, storage.name):
            if args.command == "gc":
                return await _collect_garbage(config)
            await storage.check()
            if args.command == "rooms":
                return await _rooms(config, storage, args)
            if args.command == "preferences":
                return await _preferences(config, storage, args)
            recording = await recordings.import_recording(
                storage, args.file, room_name=args.room, egress_id=args.egress_id
            )
            return recording.to_json()
    finally:
        await storage.aclose()


async def _rooms(config: Config, storage: Storage, args: argparse.Namespace) -> Any:
    if args.room_command == "create":
        options = rooms.RoomOptions(
            args.prefix, expires_in=args.expires_in, max_participants=args.max_participants
        )
        room = await rooms.create_room(storage, config, options)
        return room.to_json(config.base_url)
    if args.room_command == "list":
        return [room.to_json(config.base_url) for room in await rooms.list_rooms(storage)]
    if args.room_command in ("get", "show"):
        return (await rooms.get_room(storage, args.name)).to_json(config.base_url)
    livekit = LiveKitGateway(config)  # a live room is closed in LiveKit first
    livekit.start()
    try:
        await rooms.delete_room(storage, livekit, args.name)
    finally:
        await livekit.aclose()
    return {"deleted": args.name}


async def _preferences(config: Config, storage: Storage, args: argparse.Namespace) -> Any:
    preferences = GlobalPreferences(storage, config)
    if args.preferences_command == "set":
        change = _validated_preferences(args.section, args.json)
        return (await preferences.update(args.section, change)).section(args.section)
    current = await preferences.current()
    if args.section:
        return current.section(args.section)
    return {section: current.section(section) for section in SECTIONS}


async def _collect_garbage(config: Config) -> dict[str, list[str] | int]:
    """One round of what `ovmeet serve` does every MEET_GC_INTERVAL."""
    services = Services.build(config)
    services.livekit.start()
    services.notifier.start()
    try:
        await services.storage.check()
        return await services.housekeeping.collect_garbage()
    finally:
        await services.aclose()


def _validated_preferences(section: str, document: str) -> dict[str, Any]:
    """`document` (JSON) as the body of the API's update operation for `section`, checked by
    its schema."""
    from ovmeet.web.app import request_validator

    try:
        change = json.loads(document)
    except ValueError as error:
        raise UnprocessableEntity("Invalid preferences", [("", f"not JSON: {error}")]) from None
    operation = {"security": "Security", "webhooks": "Webhook", "appearance": "Appearance"}
    errors = list(request_validator(f"update{operation[section]}Preferences").iter_errors(change))
    if errors:
        raise UnprocessableEntity(
            "Invalid preferences",
            [(".".join(map(str, e.absolute_path)), e.message) for e in errors],
        )
    return cast(dict[str, Any], change)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovmeet", description="OpenVidu Meet internal API v1 server and tools"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_cmd = commands.add_parser("serve", help="run the HTTP server")
    serve_cmd.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    serve_cmd.add_argument(
        "--port",
        type=_port,
        help="port (default: SERVER_PORT, 6080; 0: any free port, logged once listening)",
    )
    serve_cmd.add_argument("--workers", type=_positive, default=1, help="processes (default 1)")
    serve_cmd.add_argument("--no-access-log", action="store_true", help="do not log requests")

    rooms_cmd = commands.add_parser("rooms", help="create, list, show and delete rooms")
    room_actions = rooms_cmd.add_subparsers(dest="room_command", required=True)
    create = room_actions.add_parser("create", help="create a room; prints it as JSON")
    create.add_argument("--prefix", default=rooms.DEFAULT_PREFIX, help="room name prefix")
    create.add_argument(
        "--expires-in",
        type=_duration,
        help="lifetime, e.g. 2h or 1d (default: the room never expires)",
    )
    create.add_argument("--max-participants", type=_positive, help="participant limit")
    room_actions.add_parser("list", help="print every room as JSON")
    for action, text in (
        ("get", "print a room as JSON"),
        ("show", "the same as get"),
        ("delete", "delete a room (closing it in LiveKit if it is live; recordings stay)"),
    ):
        room_actions.add_parser(action, help=text).add_argument("name")

    preferences_cmd = commands.add_parser(
        "preferences", help="show or change the global preferences (security, webhooks, appearance)"
    )
    preference_actions = preferences_cmd.add_subparsers(dest="preferences_command", required=True)
    show = preference_actions.add_parser("show", help="print the preferences as JSON")
    show.add_argument("section", nargs="?", choices=SECTIONS)
    change = preference_actions.add_parser(
        "set", help="change one section, as PUT /meet/api/v1/preferences/SECTION does"
    )
    change.add_argument("section", choices=SECTIONS)
    change.add_argument("json", help="the new values, e.g. '{\"authentication\": {...}}'")

    commands.add_parser(
        "gc",
        help="mark ABORTED the recordings LiveKit no longer records, free their rooms, delete "
        "expired rooms (what `serve` does every MEET_GC_INTERVAL); prints what it did",
    )

    recordings_cmd = commands.add_parser("recordings", help="manage recordings")
    recording_actions = recordings_cmd.add_subparsers(dest="recording_command", required=True)
    imports = recording_actions.add_parser(
        "import", help="store a finished MP4 as a COMPLETE recording; prints its metadata"
    )
    imports.add_argument("file", type=Path)
    imports.add_argument("--room", required=True, help="the room the recording belongs to")
    imports.add_argument("--egress-id", help="the egress id (default: a new EG_ id)")
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
