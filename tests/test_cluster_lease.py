"""The primary's lease with real processes: a controller outage does not stop writes
while the standby confirms (failsafe); without the controller AND the standby's
confirmation the lease lapses and the primary refuses writes; a new controller
grants it again."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster, make_cluster
from tests.support.postgres import free_port
from tests.support.sites import SiteProcess, make_site_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = make_cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def lease_of(c: Cluster, name: str) -> dict[str, object]:
    r = httpx.get(
        f"{c.urls[name]}/cluster/lease",
        headers={"Authorization": f"Bearer {c.replication_secret}"},
        timeout=5,
    )
    r.raise_for_status()
    return r.json()["lease"]  # type: ignore[no-any-return]


def test_controller_outage_failsafe_then_lapse(cluster: Cluster) -> None:
    c = cluster.start()
    c.wait_writable("site-a")
    c.wait_for(
        "lease from the controller",
        lambda: lease_of(c, "site-a")["source"] == "controller",
        timeout=10,
    )
    assert c.controller is not None
    c.controller.kill()
    # The standby still confirms it is a standby on epoch 1: writes go on.
    c.wait_for("failsafe", lambda: lease_of(c, "site-a")["source"] == "failsafe", timeout=10)
    for i in range(10):
        r = c.write("site-a", f"during-outage-{i}")
        assert r.status_code == 201, r.text
        time.sleep(0.1)
    # Now the standby cannot answer either: nobody vouches, the lease lapses.
    standby = c.sites["site-b"].proc
    assert standby is not None
    os.killpg(standby.pid, signal.SIGSTOP)
    try:
        refused: list[httpx.Response] = []

        def refused_now() -> bool:
            r = c.write("site-a", f"after-{len(refused)}")
            refused.append(r)
            return r.status_code == 503

        try:
            c.wait_for("writes refused", refused_now, timeout=10)
        except AssertionError as exc:
            seen = [(x.status_code, x.text[:80]) for x in refused[-3:]]
            raise AssertionError(f"{seen} lease {lease_of(c, 'site-a')}") from exc
        r = refused[-1]
        assert r.json()["error"] == "not_writable" and "lease" in r.json()["message"]
    finally:
        os.killpg(standby.pid, signal.SIGCONT)
    # A controller again: the lease is granted and writes resume.
    c.start_controller()
    c.wait_writable("site-a", timeout=10)
    # Writes may resume on the failsafe first (the standby vouches again once resumed);
    # the controller's grant follows within a renewal interval.
    c.wait_for(
        "lease from the controller",
        lambda: lease_of(c, "site-a")["source"] == "controller",
        timeout=10,
    )


def test_a_primary_that_no_one_vouches_for_never_writes(tmp_path: Path) -> None:
    """Controller configured but not there, no peers: no lease, no writes, clear error."""
    cfg = make_site_dir(
        tmp_path,
        "lonely",
        extra={"cluster": {"controller_url": f"http://127.0.0.1:{free_port()}"}},
    )
    site = SiteProcess(cfg).start()
    try:
        admin = (cfg.parent / "secrets.yaml").read_text()
        token = next(
            line.split(": ", 1)[1] for line in admin.splitlines() if line.startswith("admin_token")
        )
        r = httpx.post(
            f"{site.url}/admin/tenants",
            json={"id": "t1", "name": "t1"},
            headers={"Authorization": f"Bearer {token.strip()}"},
            timeout=5,
        )
        assert r.status_code == 503
        assert r.json()["error"] == "not_writable" and "lease" in r.json()["message"]
        assert r.headers["Retry-After"]
    finally:
        site.stop()


def test_failsafe_and_prepare_need_the_replication_secret(cluster: Cluster) -> None:
    c = cluster.start()
    for path, body in (
        ("/cluster/failsafe", {"site": "site-a", "epoch": 1}),
        ("/cluster/prepare", {"epoch": 2}),
    ):
        r = httpx.post(
            f"{c.urls['site-b']}{path}",
            json=body,
            headers={"Authorization": "Bearer wrong"},
            timeout=5,
        )
        assert r.status_code == 401
    r = httpx.post(
        f"{c.controller_url}/lease/renew",
        json={"site": "site-a", "epoch": 1},
        headers={"Authorization": "Bearer wrong"},
        timeout=5,
    )
    assert r.status_code == 401
    # The controller refuses a lease to a site that is not the primary, naming it.
    r = httpx.post(
        f"{c.controller_url}/lease/renew",
        json={"site": "site-b", "epoch": 1},
        headers={"Authorization": f"Bearer {c.replication_secret}"},
        timeout=5,
    )
    assert r.status_code == 200 and r.json()["granted"] is False
    assert "site-a" in r.json()["message"]
    # Garbage is a 400, not a crash.
    r = httpx.post(
        f"{c.controller_url}/lease/renew",
        json={"site": 5},
        headers={"Authorization": f"Bearer {c.replication_secret}"},
        timeout=5,
    )
    assert r.status_code == 400
    # Credentials are checked before the body is read: a malformed body from a caller
    # without them is a 401 on every controller route that takes one, not a 400.
    for path in ("/lease/renew", "/switchover", "/failback"):
        for raw in (b"{not json", b'{"unexpected": 1}', b""):
            r = httpx.post(
                f"{c.controller_url}{path}",
                content=raw,
                headers={"Authorization": "Bearer wrong", "content-type": "application/json"},
                timeout=5,
            )
            assert r.status_code == 401, (path, raw, r.text)
    r = httpx.post(
        f"{c.controller_url}/switchover",
        content=b"{not json",
        headers={"Authorization": f"Bearer {c.admin_token}", "content-type": "application/json"},
        timeout=5,
    )
    assert r.status_code == 400 and "JSON object" in r.json()["message"], r.text
