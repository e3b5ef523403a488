"""Site configuration: a YAML file plus STANDBY_* environment overrides; secrets kept apart.

The config file never holds a secret. Secrets come from a separate file (mode 0600)
or from environment variables, and are carried as ``SecretStr`` so they never print.
"""

from __future__ import annotations

import base64
import os
import re
import secrets as pysecrets
import stat
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from standby.store.engine import check_url

ENV_PREFIX = "STANDBY_"
SECRET_NAMES = ("admin_token", "kek", "replication_secret", "backup_key")


class ConfigError(Exception):
    """Configuration cannot be used; the message names the key, the problem and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(_Section):
    url: str = "sqlite:///standby.db"
    # Change-log retention: records are trimmed only once every registered standby has
    # applied them and the backup archive holds them; these many newest records always stay.
    trim_interval: float = Field(default=10.0, gt=0)
    keep_records: int = Field(default=10000, ge=0)
    # Past this many records held, alert (log + metric) instead of trimming what a
    # standby or the archive still needs.
    alert_records: int = Field(default=1_000_000, ge=1)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, v: str) -> str:
        return check_url(v)  # a URL the driver cannot read fails here, naming the file


class HttpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The deployment's public URL (what clients reach, e.g. the router): the issuer base
    # of every site, so tokens keep verifying whichever site serves. None: this site's
    # own http://host:port, which changes on failover (a warning says so).
    public_url: str | None = None
    # The earlier name of public_url, still read; a config may set one or the other.
    base_url: str | None = None
    cookie_secure: bool = False
    max_body_bytes: int = Field(default=65536, ge=1024)

    @field_validator("public_url", "base_url")
    @classmethod
    def _absolute_url(cls, v: str | None) -> str | None:
        return None if v is None else check_public_url(v)

    @model_validator(mode="after")
    def _one_public_url(self) -> HttpSettings:
        if self.base_url and self.public_url and self.base_url != self.public_url:
            raise ValueError(
                f"http.base_url {self.base_url!r} and http.public_url {self.public_url!r} "
                "differ; base_url is the old name of public_url: keep only public_url"
            )
        self.public_url = self.public_url or self.base_url
        self.base_url = None
        return self


def check_public_url(url: str) -> str:
    """An absolute http(s) URL without query or fragment, trailing slash removed."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{url!r} is not an absolute http(s) URL; give the URL clients use, "
            "e.g. https://id.example.com or http://127.0.0.1:8000"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r} has a query or fragment; give only scheme, host and path")
    return url.strip().rstrip("/")


def check_service_url(url: str) -> str:
    """``url`` if it is where a service answers: an absolute http(s) URL with a host and,
    if it has a port, a numeric one (a site, the controller, the router, etcd)."""
    parts = urlsplit(url.strip())
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when it is read
    except ValueError:
        raise ValueError(f"{url!r} has a port that is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{url!r} is not an absolute http(s) URL; write it like http://127.0.0.1:8080"
        )
    return url


class SessionSettings(_Section):
    idle_ttl: int = 1800
    absolute_ttl: int = 43200

    @field_validator("idle_ttl", "absolute_ttl")
    @classmethod
    def _at_least_a_minute(cls, v: int) -> int:
        if v < 60:
            raise ValueError(f"{v} s is under the 60 s minimum; use 60 or more seconds")
        return v


class LockoutSettings(_Section):
    max_failures: int = Field(default=5, ge=1, le=1000)
    lock_seconds: int = Field(default=900, ge=1)


class PasswordSettings(_Section):
    min_length: int = Field(default=10, ge=8, le=256)
    max_length: int = Field(default=256, ge=8, le=4096)
    # argon2id parameters; hashes made with other parameters are upgraded at next login.
    time_cost: int = Field(default=3, ge=1)
    memory_cost: int = Field(default=65536, ge=8)
    parallelism: int = Field(default=4, ge=1)


class ReplicationSettings(_Section):
    primary_url: str | None = None
    mode: Literal["async", "sync"] = "async"
    # sync mode: how long a write waits for the standby before degrading (or failing if strict)
    sync_timeout: float = Field(default=2.0, gt=0)
    strict: bool = False
    # selective replication: follow only these tenants (None = all)
    tenants: list[str] | None = None
    batch_size: int = Field(default=500, ge=1)
    # a standby sends a write it must refuse on to its primary and relays the answer
    forward_writes: bool = True

    @field_validator("primary_url")
    @classmethod
    def _primary_url(cls, v: str | None) -> str | None:
        return None if v is None else check_service_url(v)


class BackupSettings(_Section):
    backend: Literal["local", "s3"] = "local"
    directory: str = "backups"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    segment_seconds: float = Field(default=10.0, gt=0)
    segment_records: int = Field(default=10000, ge=1)
    schedule_backup_seconds: float | None = None
    schedule_verify_seconds: float | None = None
    keep_count: int = Field(default=7, ge=1)
    keep_days: float | None = None
    # Archive change-log segments continuously while serving as primary.
    archive: bool = True


class OidcSettings(_Section):
    access_token_ttl: int = Field(default=600, ge=30)
    id_token_ttl: int = Field(default=600, ge=30)
    refresh_token_ttl: int = Field(default=30 * 86400, ge=60)
    code_ttl: int = Field(default=60, ge=10, le=600)
    signing_alg: Literal["RS256", "ES256", "EdDSA"] = "RS256"
    rotation_days: float | None = None
    prepublish_hours: float = Field(default=24.0, ge=0)


class ClusterSettings(_Section):
    # The controller this site renews its lease with (None: no controller, no lease).
    controller_url: str | None = None
    lease_ttl: float = Field(default=1.0, gt=0)
    # The other site(s), asked "are you still a standby on my epoch?" when the
    # controller cannot be reached (failsafe: a controller outage must not stop logins).
    peer_urls: list[str] = []

    @field_validator("controller_url")
    @classmethod
    def _controller_url(cls, v: str | None) -> str | None:
        return None if v is None else check_service_url(v)

    @field_validator("peer_urls")
    @classmethod
    def _peer_urls(cls, v: list[str]) -> list[str]:
        return [check_service_url(u) for u in v]


class SiteSettings(_Section):
    site: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    role: Literal["primary", "standby"] = "primary"
    secrets_file: str | None = None
    store: StoreSettings = StoreSettings()
    http: HttpSettings = HttpSettings()
    session: SessionSettings = SessionSettings()
    lockout: LockoutSettings = LockoutSettings()
    password: PasswordSettings = PasswordSettings()
    replication: ReplicationSettings = ReplicationSettings()
    backup: BackupSettings = BackupSettings()
    oidc: OidcSettings = OidcSettings()
    cluster: ClusterSettings = ClusterSettings()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    def own_url(self) -> str:
        """Where this site itself answers (for the CLI and tests on this machine)."""
        return f"http://{self.http.host}:{self.http.port}"

    def base_url(self) -> str:
        """The issuer base: the deployment's public URL, else this site's own URL."""
        return self.http.public_url or self.own_url()


class Secrets(BaseModel):
    model_config = ConfigDict(extra="forbid")

    admin_token: SecretStr
    kek: SecretStr
    replication_secret: SecretStr
    backup_key: SecretStr | None = None
    s3_access_key: SecretStr | None = None
    s3_secret_key: SecretStr | None = None
    # Retired backup keys, kept so backups made before a key rotation still restore.
    backup_keys_old: list[SecretStr] = []

    @field_validator("*", mode="before")
    @classmethod
    def _no_stray_whitespace(cls, v: Any) -> Any:
        raw = v.get_secret_value() if isinstance(v, SecretStr) else v
        if isinstance(raw, str):
            if raw != raw.strip():
                raise ValueError(
                    "has leading or trailing whitespace; remove it "
                    "(a copy-paste often adds a newline)"
                )
            if not raw:
                raise ValueError("is empty; set a value (standby init generates one)")
        return v

    @field_validator("kek", "backup_key")
    @classmethod
    def _is_32_byte_key(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            decode_key(v.get_secret_value())
        return v

    def kek_bytes(self) -> bytes:
        return decode_key(self.kek.get_secret_value())

    def backup_key_bytes(self) -> bytes:
        if self.backup_key is None:
            raise ConfigError(
                "secrets: backup_key is not set; add it to the secrets file "
                "(standby init writes one) or set STANDBY_BACKUP_KEY"
            )
        return decode_key(self.backup_key.get_secret_value())

    def old_backup_keys_bytes(self) -> list[bytes]:
        return [decode_key(k.get_secret_value()) for k in self.backup_keys_old]


def decode_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("is not base64; generate one with `standby init`") from exc
    if len(raw) != 32:
        raise ValueError(f"decodes to {len(raw)} bytes, need 32 (a 256-bit key)")
    return raw


def new_key() -> str:
    return base64.urlsafe_b64encode(pysecrets.token_bytes(32)).decode().rstrip("=")


def new_secrets() -> dict[str, str]:
    return {
        "admin_token": pysecrets.token_urlsafe(32),
        "kek": new_key(),
        "replication_secret": pysecrets.token_urlsafe(32),
        "backup_key": new_key(),
    }


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a known setting; check the spelling (see README, Configuration)"
        elif err["type"] == "missing":
            msg = "is required; add it"
        value = "" if "secret" in source else f" (got {err.get('input')!r})"
        lines.append(redact_urls(f"{source}: {key}{value}: {msg}"))
    return "\n".join(lines)


_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)[^@\s'\"]+@")


def redact_urls(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***`` (a store URL
    such as postgresql://user:password@host/db must not reach an error or a log)."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """STANDBY_HTTP__PORT=9000 -> {"http": {"port": "9000"}}; secret names are skipped."""
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] in SECRET_NAMES or path[0] in ("s3_access_key", "s3_secret_key", "config"):
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` laid on ``base``, mapping by mapping (neither is changed)."""
    merged = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(merged.get(k), dict):
            merged[k] = deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found; create it with `standby init`") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of settings")
    return data


def load_settings(path: str | Path, env: dict[str, str] | None = None) -> SiteSettings:
    env = dict(os.environ) if env is None else env
    path = Path(path)
    data = _read_yaml(path)
    for name in SECRET_NAMES:
        if name in data:
            raise ConfigError(
                f"{path}: {name}: secrets must not be in the config file; move it to the "
                "secrets file (secrets_file:) or the environment variable "
                f"STANDBY_{name.upper()}"
            )
    data = deep_merge(data, _env_overrides(env))
    try:
        settings = SiteSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(str(path), exc)) from None
    # Relative paths in the config are relative to the config file's folder.
    base = path.resolve().parent
    if settings.secrets_file and not Path(settings.secrets_file).is_absolute():
        settings.secrets_file = str(base / settings.secrets_file)
    url = settings.store.url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        rel = url[len("sqlite:///") :]
        if rel and rel != ":memory:":
            settings.store.url = "sqlite:///" + str(base / rel)
    if not Path(settings.backup.directory).is_absolute():
        settings.backup.directory = str(base / settings.backup.directory)
    return settings


def load_secrets(settings: SiteSettings, env: dict[str, str] | None = None) -> Secrets:
    env = dict(os.environ) if env is None else env
    data: dict[str, Any] = {}
    if settings.secrets_file:
        path = Path(settings.secrets_file)
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            if mode & 0o077:
                raise ConfigError(
                    f"{path}: secrets file is readable by others (mode {mode:o}); "
                    f"run `chmod 600 {path}`"
                )
            data = _read_yaml(path)
        elif not any(f"{ENV_PREFIX}{n.upper()}" in env for n in SECRET_NAMES):
            raise ConfigError(f"{path}: secrets file not found; create it with `standby init`")
    for name in (*SECRET_NAMES, "s3_access_key", "s3_secret_key"):
        if f"{ENV_PREFIX}{name.upper()}" in env:
            data[name] = env[f"{ENV_PREFIX}{name.upper()}"]
    try:
        return Secrets.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors("secrets", exc)) from None


def site_config(
    site: str, overrides: dict[str, Any] | None = None, source: str = "config"
) -> dict[str, Any]:
    """A new site's config (what `standby init` writes), checked; ConfigError if invalid."""
    config: dict[str, Any] = {
        "site": site,
        "role": "primary",
        "secrets_file": "secrets.yaml",
        "store": {"url": f"sqlite:///{site}.db"},
        "http": {"host": "127.0.0.1", "port": 8080},
        "backup": {"backend": "local", "directory": "backups"},
    }
    config = deep_merge(config, overrides or {})
    try:
        SiteSettings.model_validate(config)
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    return config


def write_site(
    directory: Path,
    site: str,
    overrides: dict[str, Any] | None = None,
    secrets_from: Path | None = None,
) -> tuple[Path, Path]:
    """Write a new site config and secrets file into ``directory``; return both paths.

    ``secrets_from`` copies another site's secrets file: the sites of one cluster share
    the key-encryption key (so a promoted standby can use the replicated signing keys),
    the replication secret and the backup key."""
    config_path = directory / "standby.yaml"
    secrets_path = directory / "secrets.yaml"
    if config_path.exists():
        raise ConfigError(f"{config_path}: already exists; choose another --dir or remove it")
    config = site_config(site, overrides, str(config_path))
    values = new_secrets() if secrets_from is None else _read_yaml(secrets_from)
    directory.mkdir(parents=True, exist_ok=True)
    if not secrets_path.exists():
        fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(values, fh)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path, secrets_path
