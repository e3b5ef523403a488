"""Sites for tests: a config folder with fast argon2 parameters, run in-process or as a
real `standby serve` subprocess on a free loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

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


class SiteProcess:
    """`standby serve` as a real process; kill() is a kill -9."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.config = config
        settings = load_settings(config, env={})
        self.url = settings.base_url()
        self.name = settings.site
        self.log_path = config.parent / "serve.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.argv = [sys.executable, "-m", "standby.cli", "serve", "--config", str(config)]

    def start(self, timeout: float = 30.0) -> SiteProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.name} did not become healthy: {self.log_path.read_text()[-2000:]}"
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
