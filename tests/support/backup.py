"""Sites with a backup configuration on either backend, and quick ways to fill them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from standby.backup.context import Backups
from standby.server import Site
from standby.store import Store
from tests.support.sites import load_site, make_site_dir

PASSWORD = "correct horse battery"


@dataclass
class BackupSite:
    config: Path
    site: Site
    backups: Backups

    @property
    def store(self) -> Store:
        return self.site.store

    def close(self) -> None:
        self.site.store.close()


def backend_config(kind: str, s3: Any | None) -> dict[str, Any]:
    """{"backup": settings overrides, "secrets": extra secrets} for a backend."""
    if kind == "local":
        return {"backup": {"backend": "local", "directory": "backups"}, "secrets": {}}
    return {
        "backup": {
            "backend": "s3",
            "s3_bucket": s3.shared_bucket(),
            "s3_prefix": f"t-{secrets.token_hex(6)}/",
            "s3_endpoint": s3.endpoint,
        },
        "secrets": {"s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key},
    }


def make_backup_site(
    root: Path,
    store_url: str,
    backend: dict[str, Any],
    *,
    name: str = "site-a",
    backup: dict[str, Any] | None = None,
) -> BackupSite:
    config = make_site_dir(
        root, name, store_url=store_url, extra={"backup": {**backend["backup"], **(backup or {})}}
    )
    if backend["secrets"]:
        secrets_path = config.parent / "secrets.yaml"
        data = yaml.safe_load(secrets_path.read_text())
        secrets_path.write_text(yaml.safe_dump({**data, **backend["secrets"]}))
    settings, secrets = load_site(config)
    store = Store(settings.store.url, settings.site)
    store.create()
    site = Site(settings, secrets, store)
    return BackupSite(config, site, Backups.open(settings, secrets))


def add_users(site: Site, tenant: str, names: list[str]) -> list[str]:
    """Create the tenant if missing and the users; return the user ids."""
    from standby.identity.tenants import create_tenant, get_tenant
    from standby.identity.users import create_user

    if get_tenant(site, tenant) is None:
        create_tenant(site, tenant, tenant.title(), "admin")
    return [str(create_user(site, tenant, n, PASSWORD)["id"]) for n in names]


@pytest.fixture(params=["local", "s3"])
def backup_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Backup settings for a local directory, and for a real S3 server (own bucket)."""
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return backend_config(str(request.param), s3)
