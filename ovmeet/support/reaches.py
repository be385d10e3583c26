"""Where ovmeet reaches into a library's undocumented parts, and the start-up check that the
installed library still has them.

Each reach lives in one module of ovmeet, which says what it uses and why no public hook does
the job; the library is pinned to the one version the reach was written against
(pyproject.toml), and `check` refuses to start with any other, naming the library and the
version, rather than failing mid-request. tests/test_reaches.py keeps every private name of a
library inside its module.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version


class LibraryChanged(Exception):
    """An installed library is not the version one of ovmeet's reaches was written against."""


@dataclass(frozen=True)
class Reach:
    library: str  # the distribution, as pip names it
    version: str  # the one version the reach was written against
    module: str  # the module of ovmeet that holds the reach, and no other
    names: tuple[str, ...]  # what it uses that the library does not document: "module:Class.attr"
    why: str  # why no public hook does the job


REACHES = (
    Reach(
        "connexion",
        "3.3.0",
        "ovmeet.web.operations",
        (
            "connexion.apps.asynchronous:AsyncApp._middleware_app",
            "connexion.apps.asynchronous:AsyncASGIApp.api_cls",
            "connexion.apps.asynchronous:AsyncOperation._fn",
            "connexion.decorators:StarletteDecorator._parameter_decorator_cls",
            "connexion.decorators.parameter:AsyncParameterDecorator._maybe_get_body",
            "connexion.middleware.request_validation:RequestValidationOperation._operation",
            "connexion.middleware.request_validation:RequestValidationOperation._validator_map",
            "connexion.operations:AbstractOperation._uri_parser_class",
        ),
        "Connexion builds each operation's validators and handler wrappers anew for every "
        "request and takes no API class or operation factory as an option",
    ),
    Reach(
        "connexion",
        "3.3.0",
        "ovmeet.web.validation",
        (
            "connexion.validators:JSONRequestBodyValidator._parse",
            "connexion.validators:JSONRequestBodyValidator._validate",
            "connexion.validators:JSONRequestBodyValidator._validator",
            "connexion.validators:JSONRequestBodyValidator._schema",
            "connexion.validators:JSONRequestBodyValidator._encoding",
            "connexion.validators:JSONResponseBodyValidator._schema",
        ),
        "validator_map takes validator classes, but their parsing (a body that is not UTF-8 is "
        "a 500 otherwise), schema compilation and error reporting are private methods",
    ),
    Reach(
        "uvicorn",
        "0.54.0",
        "ovmeet.web.protocol",
        (
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.transport",
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.cycle",
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.connections",
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.server_state",
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.loop",
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.on_headers_complete",
            "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.on_message_complete",
        ),
        "uvicorn's options bound neither the size of a request head, nor the time a head or "
        "body takes to arrive, nor what the kernel buffers per client; its `http` option takes "
        "a protocol class, whose state is undocumented",
    ),
    Reach(
        "minio",
        "7.2.20",
        "ovmeet.storage.s3",
        ("minio:Minio._put_object", "minio:Minio._list_objects"),
        "put_object sends no If-None-Match (one recording per room across processes) and "
        "list_objects takes no max-keys (a page of an index reads only that page)",
    ),
)


@functools.cache
def check_installed() -> None:
    """`check` of ovmeet's reaches, once per process (a failure is raised again each time)."""
    check(REACHES)


def check(reaches: Iterable[Reach] = REACHES) -> None:
    """Raise LibraryChanged, naming the library and its version, if an installed library is
    not the one a reach was written against, or lacks a name the reach uses."""
    for reach in reaches:
        try:
            installed = version(reach.library)
        except PackageNotFoundError:
            installed = "none"
        if installed != reach.version:
            raise LibraryChanged(
                f"{reach.library} {installed} is installed, but {reach.module} reaches into the "
                f"internals of {reach.library} {reach.version}: install "
                f"{reach.library}=={reach.version}"
            )
        for name in reach.names:
            if not has_name(name):
                raise LibraryChanged(
                    f"{reach.library} {installed} lacks {name}, which {reach.module} uses"
                )


def has_name(name: str) -> bool:
    """Whether `module:Class.attr` exists: on the class, in its annotations, or assigned by
    the `__init__` of a class in its MRO."""
    module_name, _, path = name.partition(":")
    class_name, _, attribute = path.rpartition(".")
    try:
        with warnings.catch_warnings():  # what a library says on import is for its users
            warnings.simplefilter("ignore")
            found: object = importlib.import_module(module_name)
    except ImportError:
        return False
    for part in class_name.split("."):
        found = getattr(found, part, None)
    if not isinstance(found, type):
        return False
    for cls in found.__mro__:
        init = cls.__dict__.get("__init__")
        code = getattr(init, "__code__", None)
        if (
            attribute in cls.__dict__
            or attribute in inspect.get_annotations(cls)
            or (code is not None and attribute in code.co_names)
        ):
            return True
    return False
