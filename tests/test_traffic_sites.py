"""`standby router` as a real process in front of real `standby serve` sites."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from standby.drills.processes import ProcessGroup, standby_argv
from tests.support.postgres import free_port
from tests.support.sites import SiteProcess, load_site, make_site_dir

pytestmark = pytest.mark.slow


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[tuple[str, str, dict[str, SiteProcess]]]:
    a = make_site_dir(tmp_path, "site-a")
    b = make_site_dir(tmp_path, "site-b", secrets_from=a.parent / "secrets.yaml")
    _, secrets = load_site(a)
    token = secrets.admin_token.get_secret_value()
    sites = {"site-a": SiteProcess(a).start(), "site-b": SiteProcess(b).start()}
    listen = f"http://127.0.0.1:{free_port()}"
    (tmp_path / "cluster-secrets.yaml").write_text(
        yaml.safe_dump(
            {
                "admin_token": token,
                "replication_secret": secrets.replication_secret.get_secret_value(),
            }
        )
    )
    topo = tmp_path / "topology.yaml"
    topo.write_text(
        yaml.safe_dump(
            {
                "secrets_file": "cluster-secrets.yaml",
                "traffic": {"listen": listen, "health_interval": 0.1},
                "sites": [
                    {"name": "site-a", "url": sites["site-a"].url, "role": "primary"},
                    {"name": "site-b", "url": sites["site-b"].url, "role": "standby"},
                ],
            }
        )
    )
    try:
        with ProcessGroup(tmp_path / "logs") as group:
            group.start(
                "router",
                standby_argv("router", "--topology", str(topo)),
                f"{listen}/_router/status",
            )
            yield listen, token, sites
    finally:
        for s in sites.values():
            s.stop()


def test_router_process_fronts_real_sites(routed: tuple[str, str, dict[str, SiteProcess]]) -> None:
    listen, token, sites = routed
    admin = {"Authorization": f"Bearer {token}"}
    resp = httpx.get(f"{listen}/healthz")
    assert resp.status_code == 200
    assert resp.headers["standby-site"] == "site-a" and resp.headers["standby-epoch"] == "1"
    assert resp.cookies.get("standby_route") == "site-a"
    resp = httpx.post(f"{listen}/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
    assert resp.status_code in (200, 201), resp.text
    assert resp.headers["standby-site"] == "site-a"
    httpx.put(f"{listen}/_router/weights", json={"site-a": 0, "site-b": 100}, headers=admin)
    assert httpx.get(f"{listen}/healthz").headers["standby-site"] == "site-b"
    status = httpx.get(f"{listen}/_router/status", headers=admin).json()
    assert status["weights"] == {"site-a": 0, "site-b": 100}
    # kill -9 the site with the traffic: the healthy site without weight answers meanwhile
    sites["site-b"].kill()
    resp = httpx.get(f"{listen}/healthz", timeout=10)
    assert resp.status_code == 200 and resp.headers["standby-site"] == "site-a"
    # with that one drained too, the request waits traffic.hold_s, then says why it failed
    httpx.put(f"{listen}/_router/weights", json={"site-a": 0, "site-b": 0}, headers=admin)
    resp = httpx.get(f"{listen}/healthz", timeout=10)
    assert resp.status_code == 503 and resp.json()["error"] == "no_healthy_site"
    assert httpx.get(f"{listen}/_router/status", headers=admin).json()["held"] >= 1


def test_router_refuses_a_bad_topology(tmp_path: Path) -> None:
    bad = tmp_path / "topology.yaml"
    bad.write_text("sites: []\nsecrets_file: s.yaml\n")
    proc = subprocess.run(
        [*standby_argv("router", "--topology", str(bad))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "primary" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "standby.cli",
            "router",
            "--topology",
            str(tmp_path / "missing.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "not found" in proc.stderr
