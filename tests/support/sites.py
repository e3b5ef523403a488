"""Sites for tests: a config folder with fast argon2 parameters, run in-process or as a
real `standby serve` subprocess on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Self

from standby.drills.processes import Managed, ProcessError
from standby.settings import load_secrets, load_settings, write_site
from tests.support.postgres import free_port

# Low-cost argon2id so the suite stays fast; production defaults are in settings.py.
FAST_PASSWORDS = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1, "min_length": 8}


def make_site_dir(
    root: Path,
    site: str,
    *,
    port: int | None = None,
    store_url: str | None = None,
    role: str = "primary",
    extra: dict[str, Any] | None = None,
    secrets_from: Path | None = None,
) -> Path:
    """Write a site's config + secrets under root/site and return the config path."""
    port = port or free_port()
    overrides: dict[str, Any] = {
        "role": role,
        "http": {"host": "127.0.0.1", "port": port},
        "password": dict(FAST_PASSWORDS),
        "session": {"idle_ttl": 600, "absolute_ttl": 3600},
    }
    if store_url:
        overrides["store"] = {"url": store_url}
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(overrides.get(key), dict):
            overrides[key] = {**overrides[key], **value}
        else:
            overrides[key] = value
    config, _ = write_site(root / site, site, overrides, secrets_from)
    return config


def load_site(config: Path):  # type: ignore[no-untyped-def]
    """(settings, secrets) for a config written by make_site_dir."""
    settings = load_settings(config, env={})
    return settings, load_secrets(settings, env={})


class ManagedProcess:
    """A `standby` subprocess for tests: started and waited on until ready, then
    stopped or killed (kill is a kill -9); the launcher is standby.drills.processes."""

    managed: Managed
    env: dict[str, str] | None = None  # extra environment for the child

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.managed.proc

    def start(self, timeout: float = 30.0) -> Self:
        self.managed.start(self.env)
        try:
            self.managed.wait_healthy(timeout)
        except ProcessError:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        self.managed.kill9()

    def stop(self) -> None:
        self.managed.stop(grace=10)


class SiteProcess(ManagedProcess):
    """`standby serve` as a real process."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        settings = load_settings(config, env={})
        self.url = settings.own_url()
        self.name = settings.site
        self.log_path = config.parent / "serve.log"
        self.env = env
        self.argv = [sys.executable, "-m", "standby.cli", "serve", "--config", str(config)]
        self.managed = Managed(
            self.name, self.argv, self.log_path, f"{self.url}/healthz", health_status=200
        )

    def start(self, timeout: float = 30.0) -> Self:
        self.managed.argv = self.argv  # subclasses may run another entry point
        return super().start(timeout)
