"""`standby cluster init`: a topology, cluster secrets and N site folders that work as
written — every site with the same public URL, its controller and its peers."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from standby.cluster.topology import load_topology
from tests.support.cluster import Cluster
from tests.support.postgres import free_port


def _standby(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "standby.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "500"},  # no wrapped lines
    )
    return proc.returncode, proc.stdout + proc.stderr


def _cluster_init(root: Path, *args: str) -> dict[str, Any]:
    code, out = _standby("cluster", "init", "--dir", str(root), "--json", *args)
    assert code == 0, out
    return dict(json.loads(out))


def _yaml(path: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(path.read_text()))


def test_n_sites_share_one_public_url_controller_and_peers(tmp_path: Path) -> None:
    public = "https://id.example.com"
    made = _cluster_init(
        tmp_path,
        "--site",
        "east",
        "--site",
        "west",
        "--site",
        "north=http://127.0.0.1:9300",
        "--port",
        "9101",
        "--public-url",
        public,
        "--listen",
        "http://127.0.0.1:9000",
        "--mode",
        "sync",
    )
    topo, secrets = load_topology(tmp_path / "topology.yaml")
    urls = {"east": "http://127.0.0.1:9101", "west": "http://127.0.0.1:9102"}
    urls["north"] = "http://127.0.0.1:9300"
    assert [(s.name, s.url, s.role) for s in topo.sites] == [
        ("east", urls["east"], "primary"),
        ("west", urls["west"], "standby"),
        ("north", urls["north"], "standby"),
    ]
    assert topo.traffic.listen == "http://127.0.0.1:9000" and made["public_url"] == public
    site_secrets = _yaml(tmp_path / "east" / "secrets.yaml")
    assert secrets.admin_token.get_secret_value() == site_secrets["admin_token"]
    cluster_secrets = tmp_path / "cluster-secrets.yaml"
    assert set(_yaml(cluster_secrets)) == {"replication_secret", "admin_token"}  # no KEK
    assert stat.S_IMODE(cluster_secrets.stat().st_mode) == 0o600
    for name, url in urls.items():
        config = _yaml(tmp_path / name / "standby.yaml")
        assert config["http"]["public_url"] == public
        assert f"http://{config['http']['host']}:{config['http']['port']}" == url
        assert config["cluster"]["controller_url"] == topo.controller.url
        assert config["cluster"]["peer_urls"] == [u for n, u in urls.items() if n != name]
        assert config["replication"]["mode"] == "sync"
        assert config["replication"].get("primary_url") == (
            None if name == "east" else urls["east"]
        )
        assert _yaml(tmp_path / name / "secrets.yaml") == site_secrets  # one set of secrets
        assert topo.site(name).config == str(tmp_path / name / "standby.yaml")


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    for args, says in [
        (["--traffic", "nginx"], "--traffic 'nginx': use builtin or haproxy"),
        (["--public-url", "https://id.example.com"], "say where the router listens with --listen"),
        (["--site", "a", "--site", "a"], "site names must be unique"),
        (["--site", ".."], "cannot be named"),
        (["--store-url", "nope=sqlite:///x.db"], "unknown site(s) nope"),
    ]:
        code, out = _standby("cluster", "init", "--dir", str(tmp_path / "c"), *args)
        assert code == 2 and says in out and "Traceback" not in out, (args, out)
        assert len(out.strip().splitlines()) == 1, out
        assert not (tmp_path / "c").exists()
    _cluster_init(tmp_path / "c")
    before = {p: p.read_bytes() for p in (tmp_path / "c").rglob("*") if p.is_file()}
    code, out = _standby("cluster", "init", "--dir", str(tmp_path / "c"))
    assert code == 2 and "already exist" in out
    assert {p: p.read_bytes() for p in (tmp_path / "c").rglob("*") if p.is_file()} == before


def test_a_site_secrets_file_given_to_the_controller_is_named_as_such(tmp_path: Path) -> None:
    _cluster_init(tmp_path)
    topology = tmp_path / "topology.yaml"
    data = _yaml(topology)
    data["secrets_file"] = "site-a/secrets.yaml"
    topology.write_text(yaml.safe_dump(data))
    code, out = _standby("status", "--topology", str(topology))
    assert code == 2 and "Traceback" not in out
    assert "so it is a site's secrets file" in out and "replication_secret and admin_token" in out


def test_haproxy_traffic_gets_a_config_haproxy_accepts(tmp_path: Path) -> None:
    made = _cluster_init(tmp_path, "--traffic", "haproxy")
    cfg = tmp_path / "haproxy.cfg"
    assert made["run"][0] == f"haproxy -f {cfg}" and "router" not in " ".join(made["run"])
    binary = shutil.which("haproxy")
    if binary is None:
        pytest.fail("haproxy is not installed (scripts/test.sh installs it)")
    check = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_the_written_cluster_runs_with_one_issuer_and_a_live_lease(tmp_path: Path) -> None:
    """Start exactly what `cluster init` wrote (controller, router, two sites): the primary
    holds its lease, `standby status` names one issuer, discovery through the router
    answers the public URL."""
    port, router, ctl = free_port(), free_port(), free_port()
    public = f"http://127.0.0.1:{router}"
    made = _cluster_init(
        tmp_path,
        "--site",
        f"site-a=http://127.0.0.1:{port}",
        "--site",
        f"site-b=http://127.0.0.1:{free_port()}",
        "--public-url",
        public,
        "--controller-url",
        f"http://127.0.0.1:{ctl}",
    )
    secrets = _yaml(tmp_path / "cluster-secrets.yaml")
    cluster = Cluster(
        root=tmp_path,
        topology=tmp_path / "topology.yaml",
        configs={n: Path(s["config"]) for n, s in made["sites"].items()},
        urls={n: s["url"] for n, s in made["sites"].items()},
        controller_url=made["controller_url"],
        router_url=public,
        admin_token=secrets["admin_token"],
        replication_secret=secrets["replication_secret"],
    )
    try:
        cluster.start(router=True)
        cluster.wait_writable("site-a")

        def settled() -> dict[str, Any] | None:
            code, out = _standby("status", "--topology", str(cluster.topology), "--json")
            data = json.loads(out) if code == 0 else {}
            ready = all(s.get("ready") for s in data.get("sites", []))
            return data if ready and data["lease"]["expires_in"] > 0 else None

        status = cluster.wait_for("both sites ready and a live lease", settled)
        assert status["issuers"] == {
            "issuer_base": public,
            "same": True,
            "sites": {"site-a": public, "site-b": public},
            "public_url_unset": [],
        }
        code, out = _standby("status", "--topology", str(cluster.topology))
        assert code == 0 and f"issuer: {public}/t/<tenant> on every site" in out
        assert "lapsed" not in out and "warning" not in out
        r = httpx.post(
            f"{public}/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=cluster.admin()
        )
        assert r.status_code == 201, r.text
        meta = httpx.get(f"{public}/t/acme/.well-known/openid-configuration", timeout=10)
        assert meta.json()["issuer"] == f"{public}/t/acme"
    finally:
        cluster.stop()
