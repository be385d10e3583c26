"""The served spec is the user's seed, with additions only; every operation is routed."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from ovmeet.web.app import handler_for, load_spec
from ovmeet.web.paths import INTERNAL_API, PUBLIC_API, SPECS
from tests.conftest import Servers
from tests.support.processes import REPO
from tests.support.shared import MATERIAL, needs_shared

# The user's contract, vendored unchanged so that a clean clone can check itself against it.
SEED = Path(__file__).resolve().parent / "contract" / "seed-openvidu-meet-internal-api.yaml"
SHARED_SEED = REPO.parent / "shared" / "seed" / "openvidu-meet-internal-api.yaml"
SERVED_SPEC = REPO / "spec" / "openvidu-meet-internal-api.yaml"


def seed() -> dict[str, Any]:
    return yaml.safe_load(SEED.read_text())  # type: ignore[no-any-return]


def dereferenced(node: Any, root: dict[str, Any]) -> Any:
    """`node` with every local $ref replaced by what it points to (Connexion serves it so)."""
    if isinstance(node, dict):
        if set(node) == {"$ref"}:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            return dereferenced(target, root)
        return {key: dereferenced(value, root) for key, value in node.items()}
    if isinstance(node, list):
        return [dereferenced(item, root) for item in node]
    return node


def missing_or_changed(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Every place where `actual` lacks or alters something of `expected` (additions are fine)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}/{key}: missing")
            else:
                problems += missing_or_changed(value, actual[key], f"{where}/{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list"]
        problems = []
        for item in expected:
            if isinstance(item, dict) and "name" in item and "in" in item:  # a parameter
                twins = [
                    a for a in actual if a.get("name") == item["name"] and a.get("in") == item["in"]
                ]
                if not twins:
                    problems.append(f"{where}: parameter {item['name']} missing")
                else:
                    problems += missing_or_changed(item, twins[0], f"{where}/{item['name']}")
            elif item not in actual:
                problems.append(f"{where}: {item!r} missing")
        return problems
    return [] if expected == actual else [f"{where}: {expected!r} became {actual!r}"]


@pytest.fixture(scope="module")
def served(servers: Servers) -> dict[str, Any]:
    server = servers.get("local")
    response = httpx.get(f"{server.api}/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def test_served_spec_keeps_every_part_of_the_seed(served: dict[str, Any]) -> None:
    # Connexion serves $refs resolved in place and `servers` relative to where the API is
    # mounted; both say the same as the seed.
    expected = dereferenced(seed(), seed())
    expected.pop("servers")
    assert served["servers"] == [{"url": INTERNAL_API}]
    assert missing_or_changed(expected, served) == []


def test_the_vendored_seed_is_the_users_contract() -> None:
    if SHARED_SEED.exists():  # next to the repository on the team's machines, not in CI
        assert SEED.read_bytes() == SHARED_SEED.read_bytes()
    assert seed()["info"]["title"] == "OpenVidu Meet Internal REST API"


def test_the_repository_spec_is_the_seed_plus_additions() -> None:
    assert missing_or_changed(seed(), yaml.safe_load(SERVED_SPEC.read_text())) == []


def test_the_comparison_catches_a_removal_and_a_change() -> None:
    removed = yaml.safe_load(SERVED_SPEC.read_text())
    del removed["paths"]["/participants/token"]["post"]["responses"]["409"]
    problems = missing_or_changed(seed(), removed)
    assert len(problems) == 1 and problems[0].endswith("/responses/409: missing")
    changed = yaml.safe_load(SERVED_SPEC.read_text())
    changed["paths"]["/recordings/{recordingId}/stream"]["get"]["parameters"][1]["required"] = True
    problems = missing_or_changed(seed(), changed)
    assert len(problems) == 1 and problems[0].endswith("/Range/required: False became True")


def test_the_additions_are_the_documented_ones(served: dict[str, Any]) -> None:
    token = served["paths"]["/participants/token"]["post"]
    assert token["security"] == [{"accessTokenCookie": []}, {}]
    assert token["requestBody"]["required"] is True
    assert {"400", "413", "415"} <= set(token["responses"])
    options = served["components"]["schemas"]["TokenOptions"]["properties"]
    assert options["participantName"]["maxLength"] == 128
    assert all(options[field]["minLength"] == 1 for field in options)


def test_every_operation_names_its_handler_module_and_resolves() -> None:
    for spec in SPECS:
        for path in load_spec(spec)["paths"].values():
            for operation in path.values():
                controller = operation["x-openapi-router-controller"]
                assert controller.startswith("ovmeet.handlers."), operation["operationId"]
                assert callable(handler_for(f"{controller}.{operation['operationId']}"))


def test_swagger_ui_is_served(servers: Servers) -> None:
    server = servers.get("local")
    response = httpx.get(f"{server.api}/ui/")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()


def test_each_spec_is_mounted_where_its_servers_url_says() -> None:
    for spec, base_paths in SPECS.items():
        document = load_spec(spec)
        assert [urlsplit(server["url"]).path for server in document["servers"]] == list(base_paths)


# ---- the public REST API v1 against the release's document ----

NOISE = {"description", "summary", "example", "examples", "tags", "info", "servers"}
ROOM_RESPONSES = [
    "/paths//rooms/post/responses/200",
    "/paths//rooms/{roomName}/get/responses/200",
    "/paths//rooms/{roomName}/put/responses/200",
]
# Every place where the served public spec differs from the release's document, and why; the
# README's contract section says the same.
PUBLIC_DIFFERENCES = {
    **{
        f"{response}/content/application/json/schema/properties/{url}: missing": (
            "rooms carry moderatorRoomUrl and publisherRoomUrl, as the release sent them"
        )
        for response in ROOM_RESPONSES
        for url in ("moderatorURL", "publisherURL", "viewerURL")
    },
    "/paths//rooms/get/responses/200/content/application/json/schema/type: 'object' became "
    "'array'": "the room list is a bare array, as the release sent it and its front end reads",
    "/paths//rooms/get/responses/200/content/application/json/schema/properties: missing": (
        "the same: no {rooms, pagination} wrapper"
    ),
    "/paths//rooms/get/parameters/page/schema/default: missing": "pagination is opt-in",
    "/paths//rooms/get/parameters/limit/schema/default: missing": "pagination is opt-in",
}


def without_noise(node: Any) -> Any:
    """`node` without prose and examples (a $ref beside a description becomes a bare $ref)."""
    if isinstance(node, dict):
        return {key: without_noise(value) for key, value in node.items() if key not in NOISE}
    if isinstance(node, list):
        return [without_noise(item) for item in node]
    return node


def interface(document: dict[str, Any]) -> dict[str, Any]:
    """The paths of `document` with every $ref resolved, prose and examples dropped."""
    plain = without_noise(document)
    return {"paths": dereferenced(plain["paths"], plain)}


@needs_shared("reference-api")
def test_the_public_spec_keeps_the_release_interface_but_for_the_listed_differences(
    servers: Servers,
) -> None:
    reference = yaml.safe_load(MATERIAL["reference-api"].read_text())
    served = httpx.get(f"{servers.get('local').base_url}{PUBLIC_API}/openapi.json").json()
    assert served["servers"] == [{"url": PUBLIC_API}]
    problems = missing_or_changed(interface(reference), interface(served))
    assert sorted(problems) == sorted(PUBLIC_DIFFERENCES)


@needs_shared("reference-api")
def test_the_public_comparison_catches_a_removed_code() -> None:
    reference = yaml.safe_load(MATERIAL["reference-api"].read_text())
    ours = load_spec("openvidu-meet-api.yaml")
    del ours["paths"]["/rooms/{roomName}"]["delete"]["responses"]["404"]
    problems = set(missing_or_changed(interface(reference), interface(ours)))
    assert problems - set(PUBLIC_DIFFERENCES) == {
        "/paths//rooms/{roomName}/delete/responses/404: missing"
    }


def test_every_operation_answers_only_json_errors_of_the_documented_shapes() -> None:
    document = load_spec("openvidu-meet-api.yaml")
    for path in document["paths"].values():
        for operation in path.values():
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    target = response["$ref"].rsplit("/", 1)[1]
                    schema = document["components"]["responses"][target]["content"]
                    ref = schema["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ValidationError" if code == "422" else "/Error"), (
                        operation["operationId"],
                        code,
                    )
