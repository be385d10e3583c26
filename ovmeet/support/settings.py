"""The rules a setting's value follows: each turns the text of an environment variable into a
typed value, or says in one sentence why it cannot (`SettingRefused`)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

from ovmeet.support.ids import is_plain_path

T = TypeVar("T")
_Choice = TypeVar("_Choice", bound=str)

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class SettingRefused(ValueError):
    """A value a rule refuses; the message says why (the variable is named by the caller)."""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `30s`, `30m`, `6h`, `1d` or `2w`."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise SettingRefused(
            f"{text!r} is not a duration; use a positive number and a unit: 30m, 6h, 1d"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def origin_of(url: str) -> str | None:
    """`HTTPS://Host:443/path` -> `https://host`, as a browser's Origin header names it; None
    if `url` names no http(s) origin."""
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    shown = "" if port in (None, _DEFAULT_PORTS[scheme]) else f":{port}"
    return f"{scheme}://{host.lower()}{shown}"


@dataclass(frozen=True)
class Rule(Generic[T]):
    """How one kind of value is read from its text.

    The text is stripped first unless `exact`; a blank one then counts as unset (the default
    applies), or, for an `exact` rule, is refused unless `allow_empty`. `unchecked` reads the
    value where the rule does not apply (a bucket name with local storage)."""

    parse: Callable[[str], T]
    exact: bool = False
    allow_empty: bool = False
    unchecked: Callable[[str], T] | None = None


def text() -> Rule[str]:
    """Any text but a blank one, kept as written."""
    return Rule(lambda raw: raw, exact=True)


def exact_optional() -> Rule[str | None]:
    """Text kept as written (a password's spaces too); blank is unset."""
    return Rule(lambda raw: raw if raw.strip() else None, exact=True, allow_empty=True)


def optional_text() -> Rule[str]:
    """Text, stripped; blank is unset."""
    return Rule(lambda raw: raw)


def integer(low: int, high: int) -> Rule[int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingRefused(f"{raw!r} is not a whole number") from None
        if not low <= value <= high:
            raise SettingRefused(f"{value} is out of range; use a number between {low} and {high}")
        return value

    return Rule(parse)


def duration(*, most: int | None = None, too_long: str = "") -> Rule[int]:
    def parse(raw: str) -> int:
        seconds = parse_duration(raw)
        if most is not None and seconds > most:
            raise SettingRefused(too_long)
        return seconds

    return Rule(parse)


def boolean() -> Rule[bool]:
    def parse(raw: str) -> bool:
        lowered = raw.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise SettingRefused(f"{lowered!r} is not a boolean; use true or false")

    return Rule(parse)


def choice(choices: tuple[_Choice, ...]) -> Rule[_Choice]:
    def parse(raw: str) -> _Choice:
        for option in choices:
            if raw == option:
                return option
        raise SettingRefused(f"{raw!r} is not one of {', '.join(choices)}")

    return Rule(parse)


def url(schemes: tuple[str, ...]) -> Rule[str]:
    def parse(raw: str) -> str:
        raw = raw.rstrip("/")
        if any(character.isspace() or not character.isprintable() for character in raw):
            raise SettingRefused("a URL has no spaces or control characters")
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.netloc:
            raise SettingRefused(
                f"{raw!r} is not a URL; use {' or '.join(s + '://' for s in schemes)}host"
            )
        return raw

    return Rule(parse)


def endpoint() -> Rule[str]:
    """An S3 endpoint: `scheme://host[:port]`, nothing after it."""
    as_url = url(("http", "https")).parse

    def parse(raw: str) -> str:
        checked = as_url(raw)
        parts = urlsplit(checked)
        if parts.path or parts.query or parts.fragment:
            raise SettingRefused(
                f"{checked!r} has a path; an S3 endpoint is scheme://host[:port]: name the "
                "bucket in MEET_S3_BUCKET and a folder in it in MEET_S3_SUBBUCKET"
            )
        return checked

    return Rule(parse, unchecked=str)


def addresses() -> Rule[tuple[str, ...]]:
    """A comma-separated list of IP addresses or networks."""

    def parse(raw: str) -> tuple[str, ...]:
        found = tuple(part.strip() for part in raw.split(",") if part.strip())
        for part in found:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise SettingRefused(f"{part!r} is not an IP address or network") from None
        return found

    return Rule(parse)


def host_ports() -> Rule[tuple[tuple[str, int], ...]]:
    """A comma-separated list of `host:port`."""

    def parse(raw: str) -> tuple[tuple[str, int], ...]:
        found = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            host, _, port = part.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise SettingRefused(f"{part!r} is not host:port, e.g. 10.0.0.5:26379")
            found.append((host, int(port)))
        return tuple(found)

    return Rule(parse)


def origins() -> Rule[tuple[str, ...]]:
    """A comma-separated list of origins (`https://host[:port]`), as browsers write them."""

    def parse(raw: str) -> tuple[str, ...]:
        found = []
        for part in (p.strip() for p in raw.split(",")):
            if not part:
                continue
            parts = urlsplit(part)
            origin = origin_of(part)
            if (
                origin is None
                or "*" in part
                or "@" in parts.netloc
                or parts.path
                or parts.query
                or parts.fragment
                or part.endswith(("?", "#"))
            ):
                raise SettingRefused(
                    f"{part!r} is not an origin; use scheme://host[:port], "
                    "e.g. https://app.example.com"
                )
            found.append(origin)
        return tuple(found)

    return Rule(parse)


def folder() -> Rule[str]:
    """A folder, or where one can be made: not a file, nor under one."""

    def parse(raw: str) -> str:
        path = Path(raw).expanduser()
        for existing in (path, *path.parents):
            if existing.exists():
                if not existing.is_dir():
                    where = "is a file" if existing == path else f"is under a file ({existing})"
                    raise SettingRefused(f"{raw!r} {where}; name a folder (made if missing)")
                break
        return raw

    return Rule(parse, exact=True, unchecked=str)


def bucket() -> Rule[str]:
    """An S3 bucket name, by the rules the S3 client applies to a new bucket."""

    def parse(raw: str) -> str:
        from minio.helpers import check_bucket_name

        try:
            check_bucket_name(raw, strict=True)
        except ValueError:
            raise SettingRefused(
                f"{raw!r} is not a bucket name: 3 to 63 lower-case letters, digits, dots and "
                "hyphens, starting and ending with a letter or digit, not an IP address"
            ) from None
        return raw

    return Rule(parse, exact=True, unchecked=str)


def key_prefix() -> Rule[str]:
    """A prefix of storage keys (`a/b`; surrounding slashes dropped; may be empty)."""

    def parse(raw: str) -> str:
        prefix = raw.strip("/")
        if prefix and not is_plain_path(prefix):
            raise SettingRefused(
                f"{prefix!r} is not a key prefix: path segments separated by '/', none of them "
                "'.' or '..', without backslashes or control characters"
            )
        return prefix

    return Rule(parse, exact=True, allow_empty=True, unchecked=lambda raw: raw.strip("/"))


def path_prefix() -> Rule[str]:
    """A URL path such as `/_media`: a leading slash, no trailing one, plain characters."""

    def parse(raw: str) -> str:
        path = raw.rstrip("/")
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", path):
            raise SettingRefused(
                f"{path!r} is not a path; use /name[/name...] of letters, digits, . _ ~ -"
            )
        return path

    return Rule(parse, exact=True)


def frontend_dir() -> Rule[str]:
    """A built front end: a folder with an index.html."""

    def parse(raw: str) -> str:
        found = Path(raw).resolve()
        if not (found / "index.html").is_file():
            raise SettingRefused(f"{raw!r} is not a folder with an index.html")
        return str(found)

    return Rule(parse)


def fonts_dir() -> Rule[str]:
    """A node_modules folder with the front end's font packages."""

    def parse(raw: str) -> str:
        from ovmeet.support.fonts import FONT_PACKAGES, missing_stylesheets

        found = str(Path(raw).expanduser().resolve())
        if missing := missing_stylesheets(found):
            packages = " ".join(f"{name}@{version}" for name, version in FONT_PACKAGES.items())
            raise SettingRefused(
                f"{raw!r} lacks {missing[0]}: name a node_modules folder "
                f"with {packages} (`make fonts` installs them in .cache/fonts/node_modules)"
            )
        return found

    return Rule(parse)
