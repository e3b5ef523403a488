"""Real `standby serve` sites through the identity API: kill -9 of a sync primary under
load loses no acknowledged user, and sessions and revocations survive the failover."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from tests.support.replication import (
    rep_headers,
    secret_of,
    status,
    wait_for,
    write_pair,
)
from tests.support.sites import SiteProcess, load_site

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


def _admin(config: Path) -> dict[str, str]:
    _, secrets = load_site(config)
    return {"Authorization": f"Bearer {secrets.admin_token.get_secret_value()}"}


def test_sync_failover_keeps_every_acknowledged_user_and_every_session_state(
    tmp_path: Path, store_url_pair: list[str]
) -> None:
    # site-a is a sync primary; site-b, once promoted, has no standby of its own: async
    pc, sc = write_pair(
        tmp_path,
        store_url_pair,
        replication={"mode": "sync", "sync_timeout": 5.0},
        standby_replication={"mode": "async"},
    )
    secret, admin = secret_of(pc), _admin(pc)
    a, b = SiteProcess(pc).start(), SiteProcess(sc).start()
    try:
        wait_for(lambda: status(a.url, secret)["standbys"].get("site-b"))
        r = httpx.post(f"{a.url}/admin/tenants", json={"id": "t1", "name": "T"}, headers=admin)
        assert r.status_code == 201, r.text
        users = f"{a.url}/admin/tenants/t1/users"
        r = httpx.post(users, json={"username": "alice", "password": PASSWORD}, headers=admin)
        assert r.status_code == 201, r.text
        login = {"username": "alice", "password": PASSWORD}
        kept, revoked = httpx.Client(), httpx.Client()
        for c in (kept, revoked):
            assert c.post(f"{a.url}/t/t1/login", json=login).status_code == 200
        assert revoked.post(f"{a.url}/t/t1/logout").json()["logged_out"] is True

        acked: list[str] = []
        stop = threading.Event()

        def create(n: int) -> None:
            with httpx.Client(timeout=10.0) as client:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    name = f"w{n}x{i}"
                    try:
                        resp = client.post(users, json={"username": name}, headers=admin)
                    except httpx.HTTPError:
                        return
                    if resp.status_code == 201:
                        acked.append(name)

        threads = [threading.Thread(target=create, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        wait_for(lambda: len(acked) >= 60, timeout=60)
        a.kill()
        stop.set()
        for t in threads:
            t.join(30)

        r = httpx.post(
            f"{b.url}/replication/promote", json={"epoch": 2}, headers=rep_headers(secret)
        )
        assert r.status_code == 200, r.text
        listed = httpx.get(f"{b.url}/admin/tenants/t1/users?limit=1000", headers=admin)
        assert listed.status_code == 200, listed.text
        body = listed.json()
        have = {u["username"] for u in body.get("users", body.get("items", []))}
        missing = [n for n in acked if n not in have]
        assert missing == [], f"{len(missing)} acknowledged users lost, e.g. {missing[:5]}"
        # the session made on site-a works on site-b (cookies do not depend on the port);
        # the one logged out stays revoked
        assert kept.get(f"{b.url}/t/t1/session").status_code == 200
        assert revoked.get(f"{b.url}/t/t1/session").status_code == 401
        after = kept.post(f"{b.url}/t/t1/login", json=login, timeout=30)
        assert after.status_code == 200 and after.headers["Standby-Epoch"] == "2"
    finally:
        a.kill()
        b.stop()
