"""Configuration: one frozen object read from the environment once, at start."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlsplit

import jwt

from ovmeet.support.ids import is_plain_path
from ovmeet.support.logs import without_userinfo

logger = logging.getLogger("ovmeet.config")
MIN_API_KEY_LENGTH = 32

AuthMode = Literal["none", "moderators_only", "all_users"]
_Choice = TypeVar("_Choice", bound=str)
AUTH_MODES: tuple[AuthMode, ...] = ("none", "moderators_only", "all_users")
StorageKind = Literal["local", "s3"]
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
STORAGE_KINDS: tuple[StorageKind, ...] = ("local", "s3")
Delivery = Literal["proxy", "redirect", "accel"]
DELIVERIES: tuple[Delivery, ...] = ("proxy", "redirect", "accel")
MAX_PRESIGNED_SECONDS = 7 * 86400  # S3's limit for a presigned URL (signature version 4)

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

DEFAULT_ADMIN = ("admin", "admin")
DEFAULT_LIVEKIT = ("devkey", "secret")
MIN_HMAC_KEY_BYTES = 32
# A short secret is said once, at start, by `credential_warnings`; not by PyJWT at every
# process's first signature.
warnings.filterwarnings("ignore", category=jwt.InsecureKeyLengthWarning)


# Where a browser accepts Secure cookies over plain HTTP.
LOCALHOSTS = ("localhost", "127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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


class ConfigError(Exception):
    """A configuration value that cannot be used; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def parse_duration(text: str) -> int:
    """Seconds in a duration such as `30s`, `30m`, `6h`, `1d` or `2w`."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"{text!r} is not a duration; use a positive number and a unit: 30m, 6h, 1d"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class User:
    """A user who can log in; role is ADMIN or USER."""

    username: str
    password: str
    role: Literal["ADMIN", "USER"]


@dataclass(frozen=True)
class Config:
    """Everything ovmeet reads from its environment."""

    server_port: int = 6080
    base_url: str = "http://localhost:6080"
    livekit_url: str = "ws://localhost:7880"
    livekit_url_private: str = "ws://localhost:7880"
    livekit_api_key: str = "devkey"
    livekit_api_secret: str = "secret"  # noqa: S105 - LiveKit's documented dev secret
    livekit_timeout: int = 5
    participant_token_ttl: int = 6 * 3600
    participant_refresh_window: int = 6 * 3600
    access_token_ttl: int = 2 * 3600
    refresh_token_ttl: int = 86400
    api_key: str | None = None
    users: tuple[User, ...] = (User("admin", "admin", "ADMIN"),)
    auth_mode: AuthMode = "none"
    cookie_secure: bool = False
    storage: StorageKind = "local"
    data_dir: str = "./data"
    s3_bucket: str = "openvidu"
    s3_subbucket: str = "openvidu-meet"
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"
    s3_path_style: bool = True
    # What an egress request carries instead of ovmeet's own key (write under recordings/ only).
    s3_egress_access_key: str | None = None
    s3_egress_secret_key: str | None = None
    storage_threads: int = 32
    # Redis, when configured (a host, or sentinels): what several instances share.
    redis_host: str | None = None
    redis_port: int = 6379
    redis_username: str | None = None
    redis_password: str | None = None
    redis_db: int = 0
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_password: str | None = None
    redis_sentinel_master: str = "openvidu"
    # How recording media leaves: through ovmeet, a presigned S3 redirect, or nginx.
    recording_delivery: Delivery = "proxy"
    recording_url_ttl: int = 3600  # a player seeks with the URL it was sent to: a viewing's length
    s3_public_endpoint: str | None = None  # the endpoint as browsers reach it (redirect)
    accel_prefix: str = "/_ovmeet_media"  # nginx's internal location (accel)
    docs_enabled: bool = True
    validate_responses: bool = False
    trusted_proxies: tuple[str, ...] = ()
    http_head_timeout: int = 10
    http_body_timeout: int = 30
    http_keepalive_timeout: int = 5
    max_connections: int = 1000
    http_send_buffer_kib: int = 256
    webhook_enabled: bool = False
    webhook_url: str = "http://localhost:5080/webhook"
    frontend_dir: str | None = None
    frontend_fonts_dir: str | None = None  # the front end's web fonts, served by ovmeet
    webcomponent_file: str | None = None  # the release's <openvidu-meet> bundle, to embed
    embed_origins: tuple[str, ...] = ()  # who may frame the front end (cookies then cross-site)
    recording_started_timeout: int = 20
    gc_interval: int = 300
    log_format: LogFormat = "text"
    access_log: bool = True
    shutdown_grace: int = 30

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Build the configuration, raising ConfigError on the first unusable value."""
        read = _Reader(env)
        port = read.integer("SERVER_PORT", 6080, low=0, high=65535)  # 0: any free port
        participant_token_ttl = read.duration("MEET_PARTICIPANT_TOKEN_EXPIRATION", "6h")
        livekit_url = read.url("LIVEKIT_URL", "ws://localhost:7880", ("ws", "wss", "http", "https"))
        storage = read.choice("MEET_STORAGE", "local", STORAGE_KINDS)
        s3_endpoint = read.optional("MEET_S3_SERVICE_ENDPOINT")
        if storage == "s3":
            if not s3_endpoint:
                raise ConfigError(
                    "MEET_S3_SERVICE_ENDPOINT",
                    "required when MEET_STORAGE=s3 (e.g. http://127.0.0.1:9000)",
                )
            s3_endpoint = read.endpoint("MEET_S3_SERVICE_ENDPOINT")
        egress_keys = {
            name: read.optional(name)
            for name in ("MEET_S3_EGRESS_ACCESS_KEY", "MEET_S3_EGRESS_SECRET_KEY")
        }
        delivery = read.choice("MEET_RECORDING_DELIVERY", "proxy", DELIVERIES)
        if delivery == "redirect" and storage != "s3":
            raise ConfigError(
                "MEET_RECORDING_DELIVERY",
                "redirect hands out presigned S3 URLs: it needs MEET_STORAGE=s3 (with local "
                "storage use proxy, or accel behind nginx)",
            )
        public_endpoint = read.endpoint("MEET_S3_PUBLIC_ENDPOINT")
        url_ttl = read.duration("MEET_RECORDING_URL_TTL", "1h")
        if url_ttl > MAX_PRESIGNED_SECONDS:
            raise ConfigError("MEET_RECORDING_URL_TTL", "S3 signs URLs for at most 7 days (7d)")
        if any(egress_keys.values()):
            for missing, value in egress_keys.items():
                if value is None:
                    raise ConfigError(missing, "required with the egress key's other half")
        users = [
            User(
                read.text("MEET_ADMIN_USER", "admin"),
                read.text("MEET_ADMIN_SECRET", "admin"),
                "ADMIN",
            )
        ]
        if env.get("MEET_USER") or env.get("MEET_SECRET"):
            for given, missing in (("MEET_USER", "MEET_SECRET"), ("MEET_SECRET", "MEET_USER")):
                if not env.get(missing):
                    raise ConfigError(missing, f"required with {given} (the user's other half)")
            users.append(User(read.text("MEET_USER", ""), read.text("MEET_SECRET", ""), "USER"))
            if users[0].username == users[1].username:
                raise ConfigError("MEET_USER", "must differ from MEET_ADMIN_USER")
        return cls(
            server_port=port,
            base_url=read.url("MEET_BASE_URL", f"http://localhost:{port}", ("http", "https")),
            livekit_url=livekit_url,
            livekit_url_private=read.url(
                "LIVEKIT_URL_PRIVATE", livekit_url, ("ws", "wss", "http", "https")
            ),
            livekit_api_key=read.text("LIVEKIT_API_KEY", "devkey"),
            livekit_api_secret=read.text("LIVEKIT_API_SECRET", "secret"),
            livekit_timeout=read.duration("MEET_LIVEKIT_TIMEOUT", "5s"),
            participant_token_ttl=participant_token_ttl,
            participant_refresh_window=read.duration(
                "MEET_PARTICIPANT_REFRESH_WINDOW", f"{participant_token_ttl}s"
            ),
            access_token_ttl=read.duration("MEET_ACCESS_TOKEN_EXPIRATION", "2h"),
            refresh_token_ttl=read.duration("MEET_REFRESH_TOKEN_EXPIRATION", "1d"),
            api_key=read.optional("MEET_API_KEY"),
            users=tuple(users),
            auth_mode=read.choice("MEET_AUTH_MODE", "none", AUTH_MODES),
            cookie_secure=read.boolean("MEET_COOKIE_SECURE", False),
            storage=storage,
            data_dir=read.folder("MEET_DATA_DIR", "./data", check=storage == "local"),
            s3_bucket=read.bucket("MEET_S3_BUCKET", "openvidu", check=storage == "s3"),
            s3_subbucket=read.key_prefix(
                "MEET_S3_SUBBUCKET", "openvidu-meet", check=storage == "s3"
            ),
            s3_endpoint=s3_endpoint,
            s3_access_key=read.optional("MEET_S3_ACCESS_KEY"),
            s3_secret_key=read.optional("MEET_S3_SECRET_KEY"),
            s3_region=read.text("MEET_AWS_REGION", "us-east-1"),
            s3_path_style=read.boolean("MEET_S3_WITH_PATH_STYLE_ACCESS", True),
            s3_egress_access_key=egress_keys["MEET_S3_EGRESS_ACCESS_KEY"],
            s3_egress_secret_key=egress_keys["MEET_S3_EGRESS_SECRET_KEY"],
            storage_threads=read.integer("MEET_STORAGE_THREADS", 32, low=1, high=1024),
            redis_host=read.optional("MEET_REDIS_HOST"),
            redis_port=read.integer("MEET_REDIS_PORT", 6379, low=1, high=65535),
            redis_username=read.optional("MEET_REDIS_USERNAME"),
            redis_password=read.optional("MEET_REDIS_PASSWORD"),
            redis_db=read.integer("MEET_REDIS_DB", 0, low=0, high=1_000_000),
            redis_sentinels=read.host_ports("MEET_REDIS_SENTINEL_HOST_LIST"),
            redis_sentinel_password=read.optional("MEET_REDIS_SENTINEL_PASSWORD"),
            redis_sentinel_master=read.text("MEET_REDIS_SENTINEL_MASTER_NAME", "openvidu"),
            recording_delivery=delivery,
            recording_url_ttl=url_ttl,
            s3_public_endpoint=public_endpoint,
            accel_prefix=read.path_prefix("MEET_ACCEL_PREFIX", "/_ovmeet_media"),
            docs_enabled=read.boolean("MEET_DOCS_ENABLED", True),
            validate_responses=read.boolean("MEET_VALIDATE_RESPONSES", False),
            trusted_proxies=read.addresses("MEET_TRUSTED_PROXIES"),
            http_head_timeout=read.duration("MEET_HTTP_HEAD_TIMEOUT", "10s"),
            http_body_timeout=read.duration("MEET_HTTP_BODY_TIMEOUT", "30s"),
            http_keepalive_timeout=read.duration("MEET_HTTP_KEEPALIVE_TIMEOUT", "5s"),
            max_connections=read.integer("MEET_MAX_CONNECTIONS", 1000, low=1, high=1_000_000),
            http_send_buffer_kib=read.integer("MEET_HTTP_SEND_BUFFER_KIB", 256, low=0, high=65536),
            webhook_enabled=read.boolean("MEET_WEBHOOK_ENABLED", False),
            webhook_url=read.url(
                "MEET_WEBHOOK_URL", "http://localhost:5080/webhook", ("http", "https")
            ),
            frontend_dir=read.frontend_dir("MEET_FRONTEND_DIR"),
            frontend_fonts_dir=read.fonts_dir("MEET_FRONTEND_FONTS_DIR"),
            webcomponent_file=read.optional("MEET_WEBCOMPONENT_FILE"),
            embed_origins=read.origins("MEET_EMBED_ORIGINS"),
            recording_started_timeout=read.duration("MEET_RECORDING_STARTED_TIMEOUT", "20s"),
            gc_interval=read.duration("MEET_GC_INTERVAL", "5m"),
            log_format=read.choice("MEET_LOG_FORMAT", "text", LOG_FORMATS),
            access_log=read.boolean("MEET_ACCESS_LOG", True),
            shutdown_grace=read.duration("MEET_SHUTDOWN_GRACE", "30s"),
        )

    @property
    def participant_cookie_max_age(self) -> int:
        """The participant cookie outlives its token by the refresh window, so that the browser
        still holds it when it asks for a new token."""
        return self.participant_token_ttl + self.participant_refresh_window

    def user(self, username: str) -> User | None:
        """The configured user with this name, if any."""
        return next((u for u in self.users if u.username == username), None)

    def describe(self) -> dict[str, object]:
        """The effective configuration with every secret masked, for the start-up log."""
        shown = dataclasses.asdict(self)
        secrets = ("livekit_api_secret", "api_key", "s3_secret_key", "s3_egress_secret_key")
        for name in (*secrets, "redis_password", "redis_sentinel_password"):
            if shown[name]:
                shown[name] = "***"
        shown["users"] = [f"{u.username} ({u.role})" for u in self.users]
        for name, value in shown.items():  # a URL's user:password@ is a secret too
            if isinstance(value, str) and "://" in value:
                shown[name] = without_userinfo(value)
        return shown

    @property
    def redis(self) -> bool:
        """Whether instances share state through Redis (MEET_REDIS_HOST or sentinels set)."""
        return self.redis_host is not None or bool(self.redis_sentinels)

    @property
    def redis_where(self) -> str:
        """Redis as the log names it (never with a password)."""
        if self.redis_sentinels:
            hosts = ",".join(f"{host}:{port}" for host, port in self.redis_sentinels)
            return f"Redis '{self.redis_sentinel_master}' through the sentinels {hosts}"
        return f"Redis at {self.redis_host}:{self.redis_port}"

    @property
    def embedding(self) -> bool:
        """Whether other sites may frame the front end (MEET_EMBED_ORIGINS)."""
        return bool(self.embed_origins)

    def embedding_warnings(self) -> list[str]:
        """One sentence for each way embedding will not work as configured."""
        warnings = []
        if self.webcomponent_file is not None and not Path(self.webcomponent_file).is_file():
            warnings.append(
                f"embedding's script is not served: MEET_WEBCOMPONENT_FILE "
                f"{self.webcomponent_file!r} is not a file"
            )
        base = urlsplit(self.base_url)
        if self.embedding and base.scheme != "https" and base.hostname not in LOCALHOSTS:
            warnings.append(
                f"MEET_EMBED_ORIGINS is set but MEET_BASE_URL {self.base_url!r} is not https: "
                "browsers keep the Secure cookies an embedded meeting needs only over HTTPS "
                "(or on localhost)"
            )
        return warnings

    def credential_warnings(self) -> list[str]:
        """One sentence for each well-known default or weak credential in use."""
        warnings = []
        admin = self.users[0]
        if (admin.username, admin.password) == DEFAULT_ADMIN:
            warnings.append(
                "DEFAULT CREDENTIALS: the admin user is admin/admin: set MEET_ADMIN_USER and "
                "MEET_ADMIN_SECRET"
            )
        secret_bytes = len(self.livekit_api_secret.encode())
        if self.livekit_api_secret == DEFAULT_LIVEKIT[1]:
            warnings.append(
                "DEFAULT CREDENTIALS: LiveKit's development secret is in use: anyone can sign "
                "tokens for this server; set LIVEKIT_API_KEY and LIVEKIT_API_SECRET"
            )
        elif secret_bytes < MIN_HMAC_KEY_BYTES:
            warnings.append(
                f"WEAK CREDENTIALS: LIVEKIT_API_SECRET is {secret_bytes} bytes long; tokens are "
                f"signed with HMAC-SHA256, which wants at least {MIN_HMAC_KEY_BYTES} (RFC 7518 "
                "section 3.2): a short secret is easier to guess"
            )
        if self.api_key is not None and len(self.api_key) < MIN_API_KEY_LENGTH:
            warnings.append(
                f"WEAK CREDENTIALS: MEET_API_KEY has {len(self.api_key)} characters; use at "
                f"least {MIN_API_KEY_LENGTH} random ones (wrong keys are throttled per client, "
                "not per key)"
            )
        return warnings


class _Reader:
    """Reads typed values from an environment mapping, naming the variable on failure."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def optional(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str, *, allow_empty: bool = False) -> str:
        value = self.env.get(name)
        if value is None:
            return default
        if not value.strip() and not allow_empty:
            raise ConfigError(name, "must not be empty")
        return value

    def integer(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        raw = self.env.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"{raw!r} is not a whole number") from None
        if value < low or (high is not None and value > high):
            limit = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(name, f"{value} is out of range; use a number {limit}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.env.get(name, "").strip().lower()
        if raw == "":
            return default
        if raw in ("true", "1", "yes", "on"):
            return True
        if raw in ("false", "0", "no", "off"):
            return False
        raise ConfigError(name, f"{raw!r} is not a boolean; use true or false")

    def choice(self, name: str, default: _Choice, choices: tuple[_Choice, ...]) -> _Choice:
        raw = self.env.get(name, "").strip()
        if raw == "":
            return default
        for choice in choices:
            if raw == choice:
                return choice
        raise ConfigError(name, f"{raw!r} is not one of {', '.join(choices)}")

    def addresses(self, name: str) -> tuple[str, ...]:
        """A comma-separated list of IP addresses or networks (empty by default)."""
        raw = [part.strip() for part in self.env.get(name, "").split(",") if part.strip()]
        for part in raw:
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ConfigError(name, f"{part!r} is not an IP address or network") from None
        return tuple(raw)

    def host_ports(self, name: str) -> tuple[tuple[str, int], ...]:
        """A comma-separated list of `host:port` (empty by default)."""
        found = []
        for part in (p.strip() for p in self.env.get(name, "").split(",")):
            if not part:
                continue
            host, _, port = part.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ConfigError(name, f"{part!r} is not host:port, e.g. 10.0.0.5:26379")
            found.append((host, int(port)))
        return tuple(found)

    def origins(self, name: str) -> tuple[str, ...]:
        """A comma-separated list of origins (`https://host[:port]`), as browsers write them."""
        found = []
        for part in (p.strip() for p in self.env.get(name, "").split(",")):
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
                raise ConfigError(
                    name,
                    f"{part!r} is not an origin; use scheme://host[:port], "
                    "e.g. https://app.example.com",
                )
            found.append(origin)
        return tuple(found)

    def folder(self, name: str, default: str, *, check: bool = True) -> str:
        """A folder, or where one can be made: not a file, nor under one."""
        raw = self.text(name, default)
        path = Path(raw).expanduser()
        for existing in (path, *path.parents) if check else ():
            if existing.exists():
                if not existing.is_dir():
                    where = "is a file" if existing == path else f"is under a file ({existing})"
                    raise ConfigError(name, f"{raw!r} {where}; name a folder (made if missing)")
                break
        return raw

    def bucket(self, name: str, default: str, *, check: bool = True) -> str:
        """An S3 bucket name, by the rules the S3 client applies to a new bucket."""
        from minio.helpers import check_bucket_name

        raw = self.text(name, default)
        try:
            if check:
                check_bucket_name(raw, strict=True)
        except ValueError:
            raise ConfigError(
                name,
                f"{raw!r} is not a bucket name: 3 to 63 lower-case letters, digits, dots and "
                "hyphens, starting and ending with a letter or digit, not an IP address",
            ) from None
        return raw

    def key_prefix(self, name: str, default: str, *, check: bool = True) -> str:
        """A prefix of storage keys (`a/b`; surrounding slashes dropped; may be empty)."""
        raw = self.text(name, default, allow_empty=True).strip("/")
        if check and raw and not is_plain_path(raw):
            raise ConfigError(
                name,
                f"{raw!r} is not a key prefix: path segments separated by '/', none of them "
                "'.' or '..', without backslashes or control characters",
            )
        return raw

    def frontend_dir(self, name: str) -> str | None:
        """A built front end: a folder with an index.html (unset: no front end)."""
        raw = self.optional(name)
        if raw is None:
            return None
        folder = Path(raw).resolve()
        if not (folder / "index.html").is_file():
            raise ConfigError(name, f"{raw!r} is not a folder with an index.html")
        return str(folder)

    def fonts_dir(self, name: str) -> str | None:
        """A node_modules folder with the front end's font packages (unset: Google Fonts)."""
        from ovmeet.support.fonts import FONT_PACKAGES, missing_stylesheets

        raw = self.optional(name)
        if raw is None:
            return None
        folder = str(Path(raw).expanduser().resolve())
        if missing := missing_stylesheets(folder):
            packages = " ".join(f"{name}@{version}" for name, version in FONT_PACKAGES.items())
            raise ConfigError(
                name,
                f"{raw!r} lacks {missing[0]}: name a node_modules folder "
                f"with {packages} (`make fonts` installs them in .cache/fonts/node_modules)",
            )
        return folder

    def duration(self, name: str, default: str) -> int:
        raw = self.env.get(name, "").strip() or default
        try:
            return parse_duration(raw)
        except ValueError as error:
            raise ConfigError(name, str(error)) from None

    def endpoint(self, name: str) -> str | None:
        """An S3 endpoint: `scheme://host[:port]`, nothing after it (None if unset)."""
        raw = self.optional(name)
        if raw is None:
            return None
        url = self.url(name, raw, ("http", "https"))
        parts = urlsplit(url)
        if parts.path or parts.query or parts.fragment:
            raise ConfigError(
                name,
                f"{url!r} has a path; an S3 endpoint is scheme://host[:port]: name the bucket "
                "in MEET_S3_BUCKET and a folder in it in MEET_S3_SUBBUCKET",
            )
        return url

    def path_prefix(self, name: str, default: str) -> str:
        """A URL path such as `/_media`: a leading slash, no trailing one, plain characters."""
        raw = self.text(name, default).rstrip("/")
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", raw):
            raise ConfigError(
                name, f"{raw!r} is not a path; use /name[/name...] of letters, digits, . _ ~ -"
            )
        return raw

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        raw = (self.env.get(name, "").strip() or default).rstrip("/")
        if any(character.isspace() or not character.isprintable() for character in raw):
            raise ConfigError(name, "a URL has no spaces or control characters")
        parts = urlsplit(raw)
        if parts.scheme not in schemes or not parts.netloc:
            raise ConfigError(
                name, f"{raw!r} is not a URL; use {' or '.join(s + '://' for s in schemes)}host"
            )
        return raw
