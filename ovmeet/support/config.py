"""Configuration: one frozen object read from the environment once, at start.

Each setting is declared once, as a field of `Config`: its variable, default, rule and help.
From those come the parser (`Config.from_env`), the start-up errors (one line naming the
variable) and the table of docs/configuration.md (`settings_table`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ovmeet.support import settings as rules
from ovmeet.support.logs import without_userinfo
from ovmeet.support.settings import Rule, SettingRefused

MIN_API_KEY_LENGTH = 32
MIN_HMAC_KEY_BYTES = 32
MAX_PRESIGNED_SECONDS = 7 * 86400  # S3's limit for a presigned URL (signature version 4)
DEFAULT_ADMIN = ("admin", "admin")
DEFAULT_LIVEKIT = ("devkey", "secret")
# Where a browser accepts Secure cookies over plain HTTP.
LOCALHOSTS = ("localhost", "127.0.0.1", "::1")

AuthMode = Literal["none", "moderators_only", "all_users"]
AUTH_MODES: tuple[AuthMode, ...] = ("none", "moderators_only", "all_users")
StorageKind = Literal["local", "s3"]
STORAGE_KINDS: tuple[StorageKind, ...] = ("local", "s3")
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
Delivery = Literal["proxy", "redirect", "accel"]
DELIVERIES: tuple[Delivery, ...] = ("proxy", "redirect", "accel")
LIVEKIT_SCHEMES = ("ws", "wss", "http", "https")
WEB_SCHEMES = ("http", "https")

Values = Mapping[str, Any]  # the settings read so far, by variable


class ConfigError(Exception):
    """A configuration value that cannot be used; the message names the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Setting:
    """One environment variable: its default (as it would be written, or computed from the
    settings declared before it), its rule, and what it means."""

    variable: str
    default: str | Callable[[Values], str] | None
    rule: Rule[Any]
    help: str
    shown_default: str = ""  # the table's Default column, when the default is not a text
    checked_when: tuple[str, str] | None = None  # (variable, value): the rule applies only then
    secret: bool = False

    def read(self, env: Mapping[str, str], values: Values, *, check: bool = True) -> Any:
        """The value `env` gives, checked; ConfigError naming the variable otherwise."""
        parse = self.rule.parse
        applies = self.checked_when is None or values[self.checked_when[0]] == self.checked_when[1]
        if not (check and applies):
            parse = self.rule.unchecked or parse
        raw = env.get(self.variable)
        if raw is not None and not raw.strip():  # blank: unset, or refused if kept as written
            if self.rule.exact and not self.rule.allow_empty:
                raise ConfigError(self.variable, "must not be empty")
            raw = raw if self.rule.exact else None
        if raw is not None and not self.rule.exact:
            raw = raw.strip()
        if raw is None:
            default = self.default(values) if callable(self.default) else self.default
            if default is None:
                return None
            raw = default
        try:
            return parse(raw)
        except SettingRefused as refused:
            raise ConfigError(self.variable, str(refused)) from None

    @property
    def default_text(self) -> str:
        if self.shown_default:
            return self.shown_default
        return "(none)" if self.default is None or callable(self.default) else str(self.default)


_DEFAULTS: dict[str, Any] = {}  # each variable's default value, as declared so far


def setting(
    variable: str,
    default: str | Callable[[Values], str] | None,
    rule: Rule[Any],
    help: str,
    **options: Any,
) -> Any:
    """A field of `Config` read from `variable`; its value in a Config built by hand is the
    default as the rule reads it."""
    declared = Setting(variable, default, rule, help, **options)
    value = declared.read({}, _DEFAULTS, check=False)
    _DEFAULTS[variable] = value
    return field(default=value, metadata={"setting": declared})


def _base_url(values: Values) -> str:
    return f"http://localhost:{values['SERVER_PORT']}"


@dataclass(frozen=True)
class User:
    """A user who can log in; role is ADMIN or USER."""

    username: str
    password: str
    role: Literal["ADMIN", "USER"]


@dataclass(frozen=True)
class Config:
    """Everything ovmeet reads from its environment (the table of docs/configuration.md)."""

    server_port: int = setting(
        "SERVER_PORT",
        "6080",
        rules.integer(0, 65535),
        "HTTP port (`ovmeet serve --port` overrides it); `0`: any free port, logged once listening",
    )
    base_url: str = setting(
        "MEET_BASE_URL",
        _base_url,
        rules.url(WEB_SCHEMES),
        "Public base of the room links (`{base}/room/{name}?secret=...`), as they are served "
        "now (a room made under another base URL is served with this one). With port 0, the "
        "port ovmeet got",
        shown_default="http://localhost:{SERVER_PORT}",
    )
    livekit_url: str = setting(
        "LIVEKIT_URL",
        "ws://localhost:7880",
        rules.url(LIVEKIT_SCHEMES),
        "LiveKit URL given to clients (in the token metadata)",
    )
    livekit_url_private: str = setting(
        "LIVEKIT_URL_PRIVATE",
        lambda values: values["LIVEKIT_URL"],
        rules.url(LIVEKIT_SCHEMES),
        "LiveKit URL ovmeet calls (`ws`→`http`, `wss`→`https`)",
        shown_default="LIVEKIT_URL",
    )
    livekit_api_key: str = setting(
        "LIVEKIT_API_KEY",
        "devkey",
        rules.text(),
        "LiveKit API key: signs participant tokens, calls RoomService and Egress, verifies "
        "webhooks (with the secret)",
    )
    livekit_api_secret: str = setting(
        "LIVEKIT_API_SECRET",
        "secret",
        rules.text(),
        "LiveKit API secret (at least 32 bytes: a shorter one is warned about at start)",
        secret=True,
    )
    livekit_timeout: int = setting(
        "MEET_LIVEKIT_TIMEOUT", "5s", rules.duration(), "Bound on every LiveKit call"
    )
    participant_token_ttl: int = setting(
        "MEET_PARTICIPANT_TOKEN_EXPIRATION",
        "6h",
        rules.duration(),
        "Participant token and cookie lifetime",
    )
    participant_refresh_window: int = setting(
        "MEET_PARTICIPANT_REFRESH_WINDOW",
        lambda values: f"{values['MEET_PARTICIPANT_TOKEN_EXPIRATION']}s",
        rules.duration(),
        "How long after it expires a participant token can still get a new one (refresh)",
        shown_default="MEET_PARTICIPANT_TOKEN_EXPIRATION",
    )
    access_token_ttl: int = setting(
        "MEET_ACCESS_TOKEN_EXPIRATION", "2h", rules.duration(), "Access token and cookie lifetime"
    )
    refresh_token_ttl: int = setting(
        "MEET_REFRESH_TOKEN_EXPIRATION",
        "1d",
        rules.duration(),
        "Refresh token and cookie lifetime",
    )
    api_key: str | None = setting(
        "MEET_API_KEY",
        None,
        rules.optional_text(),
        "The `X-API-KEY` of the public API (compared in constant time). Unset: API-key access "
        "is off (an empty or any key is refused)",
        secret=True,
    )
    admin_user: str = setting(
        "MEET_ADMIN_USER", "admin", rules.text(), "The name of the user with role ADMIN"
    )
    admin_secret: str = setting(
        "MEET_ADMIN_SECRET", "admin", rules.text(), "Their password", secret=True
    )
    user_name: str | None = setting(
        "MEET_USER",
        None,
        rules.exact_optional(),
        "The name of an optional user with role USER (with `MEET_SECRET`)",
    )
    user_secret: str | None = setting(
        "MEET_SECRET",
        None,
        rules.exact_optional(),
        "Their password (with `MEET_USER`)",
        secret=True,
    )
    auth_mode: AuthMode = setting(
        "MEET_AUTH_MODE",
        "none",
        rules.choice(AUTH_MODES),
        "`none`, `moderators_only` or `all_users`: stored on first start, then changed through "
        "the security preferences",
    )
    cookie_secure: bool = setting(
        "MEET_COOKIE_SECURE",
        "false",
        rules.boolean(),
        "Add `Secure` to every cookie (set it behind HTTPS)",
    )
    storage: StorageKind = setting(
        "MEET_STORAGE", "local", rules.choice(STORAGE_KINDS), "`local` (a folder) or `s3`"
    )
    data_dir: str = setting(
        "MEET_DATA_DIR",
        "./data",
        rules.folder(),
        "The folder of the local storage (made if missing; relative to where ovmeet runs)",
        checked_when=("MEET_STORAGE", "local"),
    )
    s3_bucket: str = setting(
        "MEET_S3_BUCKET",
        "openvidu",
        rules.bucket(),
        "Bucket (created if missing): 3 to 63 lower-case letters, digits, dots and hyphens",
        checked_when=("MEET_STORAGE", "s3"),
    )
    s3_subbucket: str = setting(
        "MEET_S3_SUBBUCKET",
        "openvidu-meet",
        rules.key_prefix(),
        "Prefix of every key in the bucket (`/`-separated segments, no `.` or `..`, no backslash)",
        checked_when=("MEET_STORAGE", "s3"),
    )
    s3_endpoint: str | None = setting(
        "MEET_S3_SERVICE_ENDPOINT",
        None,
        rules.endpoint(),
        "`scheme://host[:port]`, e.g. `http://127.0.0.1:9000` or "
        "`https://s3.eu-west-1.amazonaws.com` (no path: the bucket is `MEET_S3_BUCKET`)",
        shown_default="(none; required for `s3`)",
        checked_when=("MEET_STORAGE", "s3"),
    )
    s3_access_key: str | None = setting(
        "MEET_S3_ACCESS_KEY", None, rules.optional_text(), "S3 access key"
    )
    s3_secret_key: str | None = setting(
        "MEET_S3_SECRET_KEY", None, rules.optional_text(), "S3 secret key", secret=True
    )
    s3_region: str = setting(
        "MEET_AWS_REGION", "us-east-1", rules.text(), "Region used to sign S3 requests"
    )
    s3_path_style: bool = setting(
        "MEET_S3_WITH_PATH_STYLE_ACCESS",
        "true",
        rules.boolean(),
        "Path-style URLs (MinIO, SeaweedFS); `false` for virtual-host style",
    )
    s3_egress_access_key: str | None = setting(
        "MEET_S3_EGRESS_ACCESS_KEY",
        None,
        rules.optional_text(),
        "The S3 access key each egress request carries instead of ovmeet's own, with "
        "`MEET_S3_EGRESS_SECRET_KEY`: give it a key that can only write under "
        "`{MEET_S3_SUBBUCKET}/recordings/` (see [deployment](deployment.md))",
        shown_default="(none: ovmeet's own key)",
    )
    s3_egress_secret_key: str | None = setting(
        "MEET_S3_EGRESS_SECRET_KEY",
        None,
        rules.optional_text(),
        "Its secret key (with `MEET_S3_EGRESS_ACCESS_KEY`)",
        secret=True,
    )
    storage_threads: int = setting(
        "MEET_STORAGE_THREADS",
        "32",
        rules.integer(1, 1024),
        "Threads for blocking storage calls (minio SDK, file reads)",
    )
    redis_host: str | None = setting(
        "MEET_REDIS_HOST",
        None,
        rules.optional_text(),
        "Redis, for what several instances share ([operations](operations.md#redis-when-a-"
        "deployment-needs-it-what-it-holds-what-happens-when-it-fails)); unset, each instance "
        "keeps its own",
        shown_default="(none: no Redis)",
    )
    redis_port: int = setting("MEET_REDIS_PORT", "6379", rules.integer(1, 65535), "Its port")
    redis_username: str | None = setting(
        "MEET_REDIS_USERNAME", None, rules.optional_text(), "Its ACL user"
    )
    redis_password: str | None = setting(
        "MEET_REDIS_PASSWORD",
        None,
        rules.optional_text(),
        "Its password (the release's default password was `redispassword`: set it if your "
        "Redis has that one)",
        secret=True,
    )
    redis_db: int = setting(
        "MEET_REDIS_DB", "0", rules.integer(0, 1_000_000), "Its database number"
    )
    redis_sentinels: tuple[tuple[str, int], ...] = setting(
        "MEET_REDIS_SENTINEL_HOST_LIST",
        "",
        rules.host_ports(),
        "Sentinels instead of a host: `host:port,host:port`",
        shown_default="(none)",
    )
    redis_sentinel_password: str | None = setting(
        "MEET_REDIS_SENTINEL_PASSWORD",
        None,
        rules.optional_text(),
        "The sentinels' password",
        secret=True,
    )
    redis_sentinel_master: str = setting(
        "MEET_REDIS_SENTINEL_MASTER_NAME",
        "openvidu",
        rules.text(),
        "The master the sentinels name",
    )
    recording_delivery: Delivery = setting(
        "MEET_RECORDING_DELIVERY",
        "proxy",
        rules.choice(DELIVERIES),
        "How recording media leaves once access is checked: `proxy` (ovmeet sends the bytes), "
        "`redirect` (a 302 to a presigned S3 URL; S3 storage only), `accel` (an "
        "`X-Accel-Redirect` for nginx): see [delivery](delivery.md)",
    )
    recording_url_ttl: int = setting(
        "MEET_RECORDING_URL_TTL",
        "1h",
        rules.duration(
            most=MAX_PRESIGNED_SECONDS, too_long="S3 signs URLs for at most 7 days (7d)"
        ),
        "How long a presigned URL of `redirect` (and `accel` with S3) lasts, at most `7d`: a "
        "player seeks with the URL it was redirected to, so give it the length of a viewing "
        "(see [delivery](delivery.md))",
    )
    s3_public_endpoint: str | None = setting(
        "MEET_S3_PUBLIC_ENDPOINT",
        None,
        rules.endpoint(),
        "The S3 endpoint as browsers reach it (`scheme://host[:port]`), for `redirect`: the "
        "signature covers the host",
        shown_default="MEET_S3_SERVICE_ENDPOINT",
    )
    accel_prefix: str = setting(
        "MEET_ACCEL_PREFIX",
        "/_ovmeet_media",
        rules.path_prefix(),
        "The nginx `internal` location `accel` redirects to",
    )
    docs_enabled: bool = setting(
        "MEET_DOCS_ENABLED",
        "true",
        rules.boolean(),
        "Serve the Swagger UI (`/ui/` under each API); the `openapi.json` documents are always "
        "served",
    )
    prepared_operations: bool = setting(
        "MEET_PREPARED_OPERATIONS",
        "true",
        rules.boolean(),
        "Prepare Connexion's request validation and handler call once per operation; `false`: "
        "Connexion's own classes, slower (to try a Connexion release ovmeet is not pinned to)",
    )
    validate_responses: bool = setting(
        "MEET_VALIDATE_RESPONSES",
        "false",
        rules.boolean(),
        "Check every response against the spec too (the tests turn it on; it costs ~15% of a "
        "token request)",
    )
    trusted_proxies: tuple[str, ...] = setting(
        "MEET_TRUSTED_PROXIES",
        "",
        rules.addresses(),
        "Addresses or networks (comma-separated) whose `X-Forwarded-For`/`-Proto` are "
        "believed, e.g. `127.0.0.1` behind a local nginx",
        shown_default="(none)",
    )
    http_head_timeout: int = setting(
        "MEET_HTTP_HEAD_TIMEOUT",
        "10s",
        rules.duration(),
        "A request head must arrive within this, or the connection is dropped (408 if it had "
        "begun)",
    )
    http_body_timeout: int = setting(
        "MEET_HTTP_BODY_TIMEOUT",
        "30s",
        rules.duration(),
        "A request body must arrive within this after its head (else 408)",
    )
    http_keepalive_timeout: int = setting(
        "MEET_HTTP_KEEPALIVE_TIMEOUT",
        "5s",
        rules.duration(),
        "An idle kept-alive connection is closed after this",
    )
    max_connections: int = setting(
        "MEET_MAX_CONNECTIONS",
        "1000",
        rules.integer(1, 1_000_000),
        "Open connections per process; the next one closes the longest-idle one (503 if none "
        "is idle)",
    )
    http_send_buffer_kib: int = setting(
        "MEET_HTTP_SEND_BUFFER_KIB",
        "256",
        rules.integer(0, 65536),
        "What the kernel may buffer per client (`SO_SNDBUF`; the kernel doubles it); `0`: the "
        "kernel's choice",
    )
    webhook_enabled: bool = setting(
        "MEET_WEBHOOK_ENABLED",
        "false",
        rules.boolean(),
        "Whether the application's webhooks are on, as stored on first start (then `PUT "
        "/meet/api/v1/preferences/webhooks`); webhooks are signed with `MEET_API_KEY`, so "
        "they need it",
    )
    webhook_url: str = setting(
        "MEET_WEBHOOK_URL",
        "http://localhost:5080/webhook",
        rules.url(WEB_SCHEMES),
        "Where they are sent, as stored on first start",
    )
    frontend_dir: str | None = setting(
        "MEET_FRONTEND_DIR",
        None,
        rules.frontend_dir(),
        "A built OpenVidu Meet front end (the folder with `index.html`), served at `/`; unset, "
        "`/` says in JSON where to find one",
    )
    frontend_fonts_dir: str | None = setting(
        "MEET_FRONTEND_FONTS_DIR",
        None,
        rules.fonts_dir(),
        "A `node_modules` folder with the front end's fonts (`make fonts` fills "
        "`.cache/fonts/node_modules`): served at `/meet/fonts/` and linked from `index.html` "
        "instead of Google Fonts, for offline deployments",
        shown_default="(none: Google Fonts)",
    )
    webcomponent_file: str | None = setting(
        "MEET_WEBCOMPONENT_FILE",
        None,
        rules.optional_text(),
        "The release's built `<openvidu-meet>` element (`openvidu-meet.bundle.min.js`), served "
        "at `/meet/v1/openvidu-meet.js` for pages that embed a meeting; unset, that path is a "
        "JSON 404 naming this setting",
    )
    embed_origins: tuple[str, ...] = setting(
        "MEET_EMBED_ORIGINS",
        "",
        rules.origins(),
        "Origins (`https://app.example.com`, comma-separated) whose pages may frame the front "
        "end; set, the cookies become cross-site (see [embedding](embedding.md))",
        shown_default="(none: no site may frame ovmeet)",
    )
    recording_started_timeout: int = setting(
        "MEET_RECORDING_STARTED_TIMEOUT",
        "20s",
        rules.duration(),
        "How long a start waits for LiveKit's egress to become ACTIVE before it stops it and fails",
    )
    gc_interval: int = setting(
        "MEET_GC_INTERVAL",
        "5m",
        rules.duration(),
        "How often each process runs the clean-up (`ovmeet gc`)",
    )
    log_format: LogFormat = setting(
        "MEET_LOG_FORMAT",
        "text",
        rules.choice(LOG_FORMATS),
        "`text`, or `json`: one JSON object per log line (see [operations](operations.md))",
    )
    access_log: bool = setting(
        "MEET_ACCESS_LOG",
        "true",
        rules.boolean(),
        "One access-log line per request (`ovmeet serve --no-access-log` sets it to `false`)",
    )
    shutdown_grace: int = setting(
        "MEET_SHUTDOWN_GRACE",
        "30s",
        rules.duration(),
        "On SIGTERM, how long requests and streams in flight may run before they are cut",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        """Build the configuration, raising ConfigError on the first unusable value."""
        values: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        for name, declared in declared_settings():
            values[declared.variable] = fields[name] = declared.read(env, values)
        _check_together(values)
        return cls(**fields)

    @functools.cached_property
    def users(self) -> tuple[User, ...]:
        """Who can log in: the admin, and the user if one is configured (built once: every
        session check looks its user up)."""
        admin = User(self.admin_user, self.admin_secret, "ADMIN")
        if self.user_name is None or self.user_secret is None:
            return (admin,)
        return admin, User(self.user_name, self.user_secret, "USER")

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
        shown: dict[str, object] = {}
        for name, declared in declared_settings():
            value = getattr(self, name)
            if declared.secret and value:
                value = "***"
            elif isinstance(value, str) and "://" in value:  # a URL's user:password@ too
                value = without_userinfo(value)
            shown[name] = value
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


def declared_settings() -> Iterator[tuple[str, Setting]]:
    """Every setting, in the order it is read: (its field of Config, its declaration)."""
    for declared in dataclasses.fields(Config):
        if "setting" in declared.metadata:
            yield declared.name, declared.metadata["setting"]


def settings_table() -> str:
    """The table of docs/configuration.md (Markdown), one row per setting."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for _, declared in declared_settings():
        default = declared.default_text
        shown = default if default.startswith("(") else f"`{default}`"
        rows.append(f"| `{declared.variable}` | {shown} | {declared.help} |")
    return "\n".join(rows) + "\n"


def _check_together(values: Values) -> None:
    """What one setting asks of another."""
    storage = values["MEET_STORAGE"]
    if storage == "s3" and not values["MEET_S3_SERVICE_ENDPOINT"]:
        raise ConfigError(
            "MEET_S3_SERVICE_ENDPOINT",
            "required when MEET_STORAGE=s3 (e.g. http://127.0.0.1:9000)",
        )
    if values["MEET_RECORDING_DELIVERY"] == "redirect" and storage != "s3":
        raise ConfigError(
            "MEET_RECORDING_DELIVERY",
            "redirect hands out presigned S3 URLs: it needs MEET_STORAGE=s3 (with local "
            "storage use proxy, or accel behind nginx)",
        )
    halves = (
        ("MEET_S3_EGRESS_ACCESS_KEY", "MEET_S3_EGRESS_SECRET_KEY", "the egress key's"),
        ("MEET_USER", "MEET_SECRET", "the user's"),
    )
    for first, second, whose in halves:
        for given, missing in ((first, second), (second, first)):
            if values[given] is not None and values[missing] is None:
                raise ConfigError(missing, f"required with {given} ({whose} other half)")
    if values["MEET_USER"] is not None and values["MEET_USER"] == values["MEET_ADMIN_USER"]:
        raise ConfigError("MEET_USER", "must differ from MEET_ADMIN_USER")
