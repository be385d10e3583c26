"""The packages of ovmeet are layers (see ovmeet/__init__.py): a module imports from its own
layer or the layers below, never above; no modules import each other in a circle; and only the
HTTP edge knows the web libraries."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support.processes import REPO

# Lowest first; a module is in the layer of the longest name that prefixes its own.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("ovmeet",),
    ("ovmeet.support",),
    ("ovmeet.storage",),
    ("ovmeet.shared",),
    ("ovmeet.livekit",),
    ("ovmeet.preferences",),
    ("ovmeet.rooms",),
    ("ovmeet.auth",),
    ("ovmeet.recordings",),
    ("ovmeet.events", "ovmeet.housekeeping"),
    ("ovmeet.services",),
    ("ovmeet.web",),
    ("ovmeet.handlers",),
    ("ovmeet.cli", "ovmeet.__main__"),
)
# Who may import the web libraries: the HTTP edge, its handlers, and `ovmeet serve`.
WEB_LIBRARIES = {
    "connexion": ("ovmeet.web", "ovmeet.handlers"),
    "starlette": ("ovmeet.web", "ovmeet.handlers"),
    "uvicorn": ("ovmeet.web", "ovmeet.cli"),
}


def modules() -> dict[str, Path]:
    """Every module of the package, by its dotted name (handlers/ installs as ovmeet.handlers)."""
    found = {}
    for root, package in ((REPO / "ovmeet", "ovmeet"), (REPO / "handlers", "ovmeet.handlers")):
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, known: Mapping[str, Path]) -> Iterator[str]:
    """Every module `path` imports (at the top, in functions, for type checking alone)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if submodule in known else node.module


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (length of the matching name, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and (
                best is None or len(name) > best[0]
            ):
                best = (len(name), index)
    return None if best is None else best[1]


def upward_imports(graph: Mapping[str, set[str]]) -> list[str]:
    wrong = []
    for module, targets in graph.items():
        for target in targets:
            here, there = layer_of(module), layer_of(target)
            if here is not None and there is not None and there > here:
                wrong.append(f"{module} imports {target}, a layer above it")
    return sorted(wrong)


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.get(module, ()):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def ovmeet_graph() -> dict[str, set[str]]:
    known = modules()
    return {
        module: {target for target in imports(path, known) if target in known} - {module}
        for module, path in known.items()
    }


def test_every_module_is_in_a_layer() -> None:
    assert [module for module in modules() if layer_of(module) is None] == []


def test_imports_point_down_the_layers() -> None:
    assert upward_imports(ovmeet_graph()) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    assert circles(ovmeet_graph()) == []


def test_only_the_http_edge_knows_the_web_libraries() -> None:
    known = modules()
    wrong = []
    for module, path in known.items():
        for target in imports(path, known):
            allowed = WEB_LIBRARIES.get(target.partition(".")[0])
            if allowed is not None and not module.startswith(allowed):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_the_checks_see_an_upward_import_and_a_circle() -> None:
    graph = {
        "ovmeet.support.config": {"ovmeet.rooms.store"},
        "ovmeet.rooms.store": {"ovmeet.support.config"},
    }
    assert upward_imports(graph) == [
        "ovmeet.support.config imports ovmeet.rooms.store, a layer above it"
    ]
    assert circles(graph) == [["ovmeet.rooms.store", "ovmeet.support.config"]]
