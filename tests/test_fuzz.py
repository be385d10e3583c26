"""Schemathesis, every check on, against the running server: it must find nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ovmeet.web.paths import PUBLIC_API
from tests.conftest import Servers
from tests.support.helpers import livekit_token, login, request_token, secret, token_body
from tests.support.livekit_standin import LiveKitStandIn
from tests.support.media import make_mp4
from tests.support.processes import ADMIN, Ovmeet

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
HOOKS = Path(__file__).parent / "support" / "fuzz_hooks.py"
API_KEY = "fuzz-api-key-7d1e"


@pytest.fixture(scope="module")
def fuzzed(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Ovmeet], Path, str]:
    """Servers with a room, a participant and a recording; schemathesis configs knowing them.

    The public API's run has a server (and storage) of its own: it deletes the rooms it finds
    and changes the auth mode, which would starve the other runs.
    """
    server = servers.start("local")
    public = servers.start("local", MEET_API_KEY=API_KEY)
    workdir = tmp_path_factory.mktemp("fuzz")
    room = server.create_room("fuzz")
    moderator = request_token(server, token_body(room, "fuzz-moderator", "moderator")).json()
    # A refresh needs the participant's previous token: that of "someone", just expired.
    previous = livekit_token(room["roomName"], "someone", ttl=-5)
    clip = make_mp4(workdir / "clip.mp4", seconds=1)
    recording_id = server.import_recording(clip, room["roomName"])["recordingId"]
    # The public run's rooms and recordings. Those it may delete are kept apart from the room
    # it records (with the cookie of one of its moderators; recordings start for real, through
    # the stand-in's Egress) and the recording it stops, so that these stay.
    kept, *doomed = [public.create_room("pub") for _ in range(6)]
    public_moderator = request_token(public, token_body(kept, "m", "moderator")).json()
    doomed_rooms = ", ".join(f'"{r["roomName"]}"' for r in doomed)
    doomed_recordings = ", ".join(
        f'"{public.import_recording(clip, r["roomName"])["recordingId"]}"' for r in doomed[:2]
    )
    kept_recording = public.import_recording(clip, kept["roomName"])["recordingId"]
    cookies = login(server)
    access = f"""
[auth.openapi.accessTokenCookie]
api_key = "{cookies["OvMeetAccessToken"]}"
"""
    configs = {
        "/meet/internal-api/v1": access
        + f"""
[auth.openapi.participantTokenCookie]
api_key = "{moderator["token"]}"

[dictionaries]
rooms = {{ values = ["{room["roomName"]}"] }}
secrets = {{ values = ["{secret(room, "moderator")}", "{secret(room, "publisher")}"] }}
recordings = {{ values = ["{recording_id}"] }}
names = {{ values = ["fuzz-moderator", "someone"] }}
ranges = {{ values = ["bytes=0-99", "bytes=100-", "bytes=-50", "bytes=5-1", "bytes=99999999-"] }}

[parameters]
"body.roomName" = {{ dictionary = "rooms", probability = 0.6 }}
"body.secret" = {{ dictionary = "secrets", probability = 0.6 }}
"body.participantName" = {{ dictionary = "names", probability = 0.4 }}
"query.roomName" = {{ dictionary = "rooms", probability = 0.6 }}
"path.roomName" = {{ dictionary = "rooms", probability = 0.6 }}
"query.secret" = {{ dictionary = "secrets", probability = 0.6 }}
"path.participantName" = {{ dictionary = "names", probability = 0.6 }}
"path.recordingId" = {{ dictionary = "recordings", probability = 0.6 }}
"header.Range" = {{ dictionary = "ranges", probability = 0.5 }}

# Schema-valid is not always valid: a secret of another room is 400, a range past the end 416.
# The first block that names an operation is the one in force.
[[operations]]
include-operation-id = "refreshParticipantToken"
headers = {{ Cookie = "OvMeetParticipantToken={previous}" }}
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 409]

[[operations]]
include-operation-id-regex = "ParticipantToken$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 409]

[[operations]]
include-operation-id = "getParticipantRole"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 404]

[[operations]]
include-operation-id = "getRecordingStream"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 416]
""",
        "/meet/api/v1": access
        + f"""
[auth.openapi.apiKeyInHeader]
api_key = "{API_KEY}"

[auth.openapi.participantTokenCookie]
api_key = "{public_moderator["token"]}"

[dictionaries]
rooms = {{ values = [{doomed_rooms}] }}
recorded = {{ values = ["{kept["roomName"]}"] }}
recordings = {{ values = [{doomed_recordings}] }}
kept = {{ values = ["{kept_recording}"] }}
fields = {{ values = ["roomName", "moderatorRoomUrl,publisherRoomUrl", "nope,preferences"] }}

[parameters]
"path.roomName" = {{ dictionary = "rooms", probability = 0.7 }}
"query.fields" = {{ dictionary = "fields", probability = 0.5 }}
"body.roomId" = {{ dictionary = "recorded", probability = 0.8 }}
"query.roomId" = {{ dictionary = "rooms", probability = 0.5 }}
"path.recordingId" = {{ dictionary = "kept", probability = 0.8 }}
"query.recordingIds" = {{ dictionary = "recordings", probability = 0.5 }}

# Schema-valid is not always valid: a room deleted by an earlier call is 404, another room's
# moderator cookie 403; and for a new room, an expiration date in the past 422 (the schema
# cannot say "in the future"). The first block that names an operation is the one in force.
[[operations]]
include-operation-id = "createRoom"
checks.positive_data_acceptance.expected-statuses = ["2xx", 403, 404, 422]

# Deleting the rooms and recordings the stateful phase discovers would take away those the
# recording operations need: deletions get the dictionaries' doomed ones only.
[[operations]]
include-operation-id = "deleteRoom"
checks.positive_data_acceptance.expected-statuses = ["2xx", 404]
phases.stateful.enabled = false

[[operations]]
include-operation-id-regex = "Room"
checks.positive_data_acceptance.expected-statuses = ["2xx", 403, 404]

[[operations]]
include-operation-id = "deleteRecording"
phases.stateful.enabled = false
checks.positive_data_acceptance.expected-statuses = ["2xx", 404, 409]
parameters = {{ "path.recordingId" = {{ dictionary = "recordings", probability = 0.8 }} }}

# More than 100 ids, or a page token this API never gave: 422, which no schema can say.
[[operations]]
include-operation-id-regex = "^(bulkDeleteRecordings|getRecordings)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 422]

# Starting and stopping need a live room and a recording of the moderator's room, which the
# rest of this run deletes as it discovers them (room lists feed its later phases).
[[operations]]
include-operation-id-regex = "^(createRecording|stopRecording)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 403, 404, 409]

# A recording in progress cannot be deleted, a room already recording gives 409.
[[operations]]
include-operation-id-regex = "Recording$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 403, 404, 409]
""",
        "/meet/api/v1/auth": access
        + f"""
[auth.openapi.refreshTokenCookie]
api_key = "{cookies["OvMeetRefreshToken"]}"

[dictionaries]
users = {{ values = ["{ADMIN[0]}"] }}
passwords = {{ values = ["{ADMIN[1]}"] }}

[parameters]
"body.username" = {{ dictionary = "users", probability = 0.5 }}
"body.password" = {{ dictionary = "passwords", probability = 0.5 }}
""",
        "/livekit": "",
    }
    for base_path, text in configs.items():
        (workdir / f"{base_path.strip('/').replace('/', '-')}.toml").write_text(text)
    by_base_path = {path: public if path.startswith(PUBLIC_API) else server for path in configs}
    return by_base_path, workdir, room["roomName"]


# The one warning allowed, and where: "missing test data" for the recording operations that the
# public run starves itself of (see its config). tests/test_recorder.py drives them fully.
ALLOWED_WARNINGS = {
    "/meet/api/v1": ("Missing test data", {"POST /recordings", "PUT /recordings/{recordingId}"})
}


def unexpected_warnings(output: str, base_path: str) -> list[str]:
    """The warnings of a run that are not the allowed one, for the allowed operations."""
    if "WARNINGS ====" not in output:
        return []
    details = output.split("WARNINGS ====", 1)[1].split("SUMMARY ====", 1)[0]
    summary = output.split("SUMMARY ====", 1)[1]
    kind, operations = ALLOWED_WARNINGS.get(base_path, ("", set()))
    kinds = [line.split("⚠️", 1)[1].strip() for line in summary.splitlines() if "⚠️" in line]
    listed = {line[4:].strip() for line in details.splitlines() if line.startswith("  - ")}
    problems = [title for title in kinds if not kind or not title.startswith(kind)]
    return problems + sorted(listed - operations)


BASE_PATHS = ["/meet/internal-api/v1", "/meet/api/v1", "/meet/api/v1/auth", "/livekit"]


@pytest.fixture(scope="module")
def fuzzing(
    fuzzed: tuple[dict[str, Ovmeet], Path, str],
) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """One schemathesis run per served spec, all at once (each test waits for its own)."""
    by_base_path, workdir, _ = fuzzed
    runs = {}
    for base_path in BASE_PATHS:
        config = workdir / f"{base_path.strip('/').replace('/', '-')}.toml"
        runs[base_path] = subprocess.Popen(
            [
                SCHEMATHESIS,
                "--config-file",
                str(config),
                "run",
                f"{by_base_path[base_path].base_url}{base_path}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                "150",
                "--seed",
                "1",
                "--continue-on-failure",
                "--no-color",
                "--generation-database",
                "none",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=workdir,  # schemathesis keeps a cache in its working directory
            env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
        )
    yield runs
    for run in runs.values():
        if run.poll() is None:
            run.kill()
            run.wait()


@pytest.mark.parametrize("base_path", BASE_PATHS)
def test_schemathesis_finds_nothing(
    fuzzed: tuple[dict[str, Ovmeet], Path, str],
    fuzzing: dict[str, subprocess.Popen[str]],
    livekit: LiveKitStandIn,
    base_path: str,
) -> None:
    _, workdir, room_name = fuzzed
    livekit.add_participant(room_name, "someone")  # so that refresh can succeed
    output, _ = fuzzing[base_path].communicate(timeout=900)
    (workdir / f"{base_path.strip('/').replace('/', '-')}.out").write_text(output)  # all of it
    assert fuzzing[base_path].returncode == 0, output[-6000:]
    assert "Failures:" not in output, output[-6000:]
    assert unexpected_warnings(output, base_path) == [], output[-6000:]
    assert "No issues found" in output or base_path in ALLOWED_WARNINGS, output[-6000:]


def test_only_the_allowed_warning_for_the_allowed_operations_passes() -> None:
    output = """
=== WARNINGS ====
Missing test data: 1 operation repeatedly returned 404 Not Found
  - {operation}
=== SUMMARY ====
Warnings:
  ⚠️ {kind}: 1 operation repeatedly returned 404 responses
"""
    allowed = output.format(operation="POST /recordings", kind="Missing test data")
    assert unexpected_warnings(allowed, "/meet/api/v1") == []
    assert unexpected_warnings(allowed, "/livekit") != []
    other_operation = output.format(operation="GET /rooms", kind="Missing test data")
    assert unexpected_warnings(other_operation, "/meet/api/v1") == ["GET /rooms"]
    other_kind = output.format(operation="POST /recordings", kind="Schema validation mismatch")
    assert unexpected_warnings(other_kind, "/meet/api/v1") != []
    assert unexpected_warnings("no warnings at all", "/livekit") == []
