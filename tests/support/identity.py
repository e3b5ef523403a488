"""An in-process site for identity tests: TestClient, admin headers, a clock to move."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from standby.server import Site, create_app
from standby.store import Store, now_us
from standby.store.schema import change_log
from tests.support.sites import load_site, make_site_dir

STEP_US = 30_000_000
PASSWORD = "correct horse battery staple"


class Clock:
    """Microseconds, moved by hand; starts 1 s into a TOTP step so step maths is exact."""

    def __init__(self, start: int | None = None) -> None:
        if start is None:
            real = now_us()
            start = (real // STEP_US) * STEP_US + 1_000_000
            if start > real:  # never ahead of real time: verifiers check iat against it
                start -= STEP_US
        self.t = start

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += int(seconds * 1_000_000)

    @property
    def seconds(self) -> float:
        return self.t / 1_000_000


@dataclass
class IdSite:
    config: Path
    site: Site
    client: TestClient
    clock: Clock
    admin: dict[str, str] = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.site.store

    def head(self) -> int:
        return self.store.head().lsn

    def payloads(self) -> list[str]:
        with self.store.read() as conn:
            return [p for p in conn.execute(select(change_log.c.payload)).scalars() if p]

    def tenant(self, tid: str = "acme") -> str:
        r = self.client.post(
            "/admin/tenants", json={"id": tid, "name": tid.title()}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        return tid

    def user(self, username: str = "alice", password: str = PASSWORD, tenant: str = "acme") -> str:
        r = self.client.post(
            f"/admin/tenants/{tenant}/users",
            json={"username": username, "password": password},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def login(
        self, username: str = "alice", password: str = PASSWORD, tenant: str = "acme", **extra: Any
    ):  # type: ignore[no-untyped-def]
        return self.client.post(
            f"/t/{tenant}/login", json={"username": username, "password": password, **extra}
        )

    def close(self) -> None:
        self.client.close()
        self.store.close()


def open_site(config: Path, clock: Clock | None = None) -> IdSite:
    settings, secrets = load_site(config)
    store = Store(settings.store.url, settings.site)
    store.create(role=settings.role)
    site = Site(settings, secrets, store)
    clock = clock or Clock()
    site.parts["clock"] = clock
    client = TestClient(create_app(site))
    token = secrets.admin_token.get_secret_value()
    return IdSite(config, site, client, clock, {"Authorization": f"Bearer {token}"})


@contextmanager
def identity_site(
    tmp_path: Path, store_url: str, extra: dict[str, Any] | None = None
) -> Iterator[IdSite]:
    config = make_site_dir(tmp_path, "site-a", store_url=store_url, extra=extra)
    ids = open_site(config)
    try:
        yield ids
    finally:
        ids.close()
