"""The topology file: which sites exist, where, and how the controller and traffic run.

Documented for users in docs/topology.md; `standby cluster init` writes one.

Example::

    cluster: demo
    secrets_file: cluster-secrets.yaml      # replication_secret, admin_token (mode 0600)
    controller:
      url: http://127.0.0.1:7000
      failover: automatic                   # or approval
      dcs: {backend: embedded, path: controller.db}
    traffic:
      backend: builtin                      # or haproxy
      listen: http://127.0.0.1:8000
    sites:
      - {name: site-a, url: http://127.0.0.1:8001, role: primary}
      - {name: site-b, url: http://127.0.0.1:8002, role: standby}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from standby.settings import ConfigError, check_service_url

# Where a site, the controller, the router or etcd answers: http(s)://host[:port].
ServiceUrl = Annotated[str, AfterValidator(check_service_url)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiteRef(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    url: ServiceUrl
    role: Literal["primary", "standby"]
    config: str | None = None  # the site's own config file, when on this machine


class DcsSettings(_Model):
    backend: Literal["embedded", "etcd"] = "embedded"
    path: str = "controller.db"  # embedded: the controller's own SQLite file
    endpoints: list[ServiceUrl] = ["http://127.0.0.1:2379"]  # etcd
    prefix: str = "/standby"


class ControllerSettings(_Model):
    url: ServiceUrl = "http://127.0.0.1:7000"
    failover: Literal["automatic", "approval"] = "automatic"
    check_interval: float = Field(default=0.2, gt=0)
    check_timeout: float = Field(default=0.5, gt=0)
    # consecutive failed deep checks before the primary is declared down
    failure_threshold: int = Field(default=3, ge=1)
    lease_ttl: float = Field(default=1.0, gt=0)
    # extra wait after the lease TTL before promoting (clock-rate differences, GC pauses)
    safety_margin: float = Field(default=0.3, ge=0)
    dcs: DcsSettings = DcsSettings()
    ramp: list[int] = [10, 25, 50, 100]  # failback traffic steps, percent to the old primary
    ramp_step_seconds: float = Field(default=2.0, ge=0)


class HaproxySettings(_Model):
    socket: str = "haproxy.sock"  # runtime API (stats socket ... level admin)
    backend: str = "standby"


class TrafficSettings(_Model):
    backend: Literal["builtin", "haproxy"] = "builtin"
    listen: ServiceUrl = "http://127.0.0.1:8000"
    health_interval: float = Field(default=0.2, gt=0)
    sticky_cookie: str = "standby_route"
    # builtin router: how long a request waits for a site that can take it (a failover)
    hold_s: float = Field(default=5.0, ge=0)
    haproxy: HaproxySettings = HaproxySettings()


class Topology(_Model):
    cluster: str = "standby"
    secrets_file: str | None = None
    controller: ControllerSettings = ControllerSettings()
    traffic: TrafficSettings = TrafficSettings()
    sites: list[SiteRef]

    @model_validator(mode="after")
    def _one_primary(self) -> Topology:
        names = [s.name for s in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("site names must be unique")
        if sum(s.role == "primary" for s in self.sites) != 1:
            raise ValueError("exactly one site must have role: primary")
        return self

    def site(self, name: str) -> SiteRef:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)


SITE_ONLY_SECRETS = {"kek", "backup_key", "backup_keys_old", "s3_access_key", "s3_secret_key"}


class ClusterSecrets(_Model):
    replication_secret: SecretStr
    admin_token: SecretStr


def load_topology(path: str | Path) -> tuple[Topology, ClusterSecrets]:
    """Read a topology file and its secrets file (relative paths resolve beside it)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: topology file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        topo = Topology.model_validate(data)
    except ValidationError as exc:
        msgs = [f"{path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(msgs)) from None
    base = path.resolve().parent
    for site in topo.sites:
        if site.config and not Path(site.config).is_absolute():
            site.config = str(base / site.config)
    if not Path(topo.controller.dcs.path).is_absolute():
        topo.controller.dcs.path = str(base / topo.controller.dcs.path)
    if not Path(topo.traffic.haproxy.socket).is_absolute():
        topo.traffic.haproxy.socket = str(base / topo.traffic.haproxy.socket)
    if not topo.secrets_file:
        raise ConfigError(f"{path}: secrets_file: is required (replication_secret, admin_token)")
    secrets_path = Path(topo.secrets_file)
    if not secrets_path.is_absolute():
        secrets_path = base / secrets_path
    try:
        raw = yaml.safe_load(secrets_path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{secrets_path}: cluster secrets file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{secrets_path}: not valid YAML: {exc}") from None
    site_only = sorted(set(raw) & SITE_ONLY_SECRETS) if isinstance(raw, dict) else []
    if site_only:
        # The controller and router need two secrets; they are not given the KEK.
        raise ConfigError(
            f"{secrets_path}: holds {', '.join(site_only)}, so it is a site's secrets file; "
            "the controller and router read a cluster secrets file with only "
            "replication_secret and admin_token (mode 0600): `standby cluster init` writes "
            "one, or copy those two lines from the site's file into a new one"
        )
    try:
        secrets = ClusterSecrets.model_validate(raw)
    except ValidationError as exc:
        msgs = [f"{secrets_path}: {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise ConfigError("\n".join(msgs)) from None
    topo.secrets_file = str(secrets_path)
    return topo, secrets
