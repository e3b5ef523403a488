"""`standby traffic haproxy-config` (weights from the DCS's leader, else the topology with
a note; a config HAProxy accepts) and `standby demo --traffic`'s refusals."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from standby.cluster.dcs.embedded import EmbeddedDcs
from standby.cluster.scaffold import site_specs, write_cluster
from standby.cluster.topology import load_topology
from tests.support.cli import run


def cluster(tmp_path: Path, traffic: str = "haproxy") -> Path:
    files = write_cluster(
        tmp_path / "cluster",
        site_specs(["site-a", "site-b"], 18001),
        public_url="http://127.0.0.1:18000",
        controller_url="http://127.0.0.1:17000",
        traffic_backend=traffic,
    )
    return files.topology


def servers(config: str) -> dict[str, str]:
    """server name -> the rest of its line."""
    return dict(re.findall(r"^    server (\S+) (.*)$", config, re.M))


def set_leader(topology: Path, primary: str, epoch: int) -> None:
    topo, _ = load_topology(topology)
    dcs = EmbeddedDcs(topo.controller.dcs.path)

    async def put() -> None:
        assert await dcs.put_leader(primary, epoch, expected_revision=0) is not None
        await dcs.close()

    asyncio.run(put())


def test_without_a_readable_dcs_the_topology_decides_and_says_so(tmp_path: Path) -> None:
    topology = cluster(tmp_path)
    out = tmp_path / "haproxy.cfg"
    got = run("traffic", "haproxy-config", "--topology", str(topology), "--out", str(out), "--json")
    assert got.code == 0, got.err
    result = json.loads(got.out)
    assert result["primary"] == "site-a" and result["weights_from"] == "topology"
    assert "not readable" in result["note"] and "controller.db" in result["note"]
    assert result["checked_by_haproxy"] is True  # haproxy -c accepted it
    config = out.read_text()
    lines = servers(config)
    assert "weight 100" in lines["site-a"] and "disabled" not in lines["site-a"]
    assert "weight 0" in lines["site-b"] and lines["site-b"].endswith("disabled")
    for expected in (
        "option httpchk GET /readyz",
        "log stdout format raw local0",
        "option httplog",
        "timeout check 2s",
        "retry-on conn-failure empty-response",
        "http-request disable-l7-retry unless METH_GET || METH_OPTIONS",
        "cookie standby_route insert indirect nocache",
        "observe layer4 error-limit 1 on-error mark-down",
        f"stats socket {tmp_path / 'cluster' / 'haproxy.sock'} mode 600 level admin",
    ):
        assert expected in config, expected
    # a request waits up to traffic.hold_s (5 s) while no server can take it
    hold = tmp_path / "standby-hold.lua"
    assert result["hold"] == {"lua": str(hold), "seconds": 5.0}
    assert f"    lua-load {hold}" in config
    assert "    http-request lua.standby_hold standby 5000" in config
    assert 'core.register_action("standby_hold"' in hold.read_text()
    # nothing was created in the controller's place
    assert not (tmp_path / "cluster" / "controller.db").exists()


def test_the_dcs_leader_takes_the_traffic(tmp_path: Path) -> None:
    topology = cluster(tmp_path)
    set_leader(topology, "site-b", 4)
    got = run("traffic", "haproxy-config", "--topology", str(topology), "--log", "/dev/log")
    assert got.code == 0, got.err
    assert "no request hold in a printed config" in got.err  # the only note
    assert "lua" not in got.out
    lines = servers(got.out)
    assert "weight 100" in lines["site-b"] and "disabled" not in lines["site-b"]
    assert "weight 0" in lines["site-a"] and lines["site-a"].endswith("disabled")
    assert "    log /dev/log local0" in got.out
    human = run(
        "traffic", "haproxy-config", "--topology", str(topology), "--out", str(tmp_path / "h.cfg")
    )
    assert human.code == 0 and "site-b" in human.out and "epoch 4" in human.out


def test_a_dcs_leader_outside_the_topology_is_not_used(tmp_path: Path) -> None:
    topology = cluster(tmp_path)
    set_leader(topology, "site-z", 2)
    got = run("traffic", "haproxy-config", "--topology", str(topology), "--json")
    assert got.code == 0, got.err
    result = json.loads(got.out)
    assert result["primary"] == "site-a" and result["weights_from"] == "topology"
    assert "site-z" in result["note"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log", "my log"], "--log: log target 'my log': use stdout"),
        (["--out", "/proc/nope/haproxy.cfg"], "cannot write /proc/nope/haproxy.cfg"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    got = run("traffic", "haproxy-config", "--topology", str(cluster(tmp_path)), *args)
    assert got.code != 0 and len(got.error_lines) == 1, got.err
    assert message in got.err


def test_refused_for_the_builtin_router(tmp_path: Path) -> None:
    got = run("traffic", "haproxy-config", "--topology", str(cluster(tmp_path, "builtin")))
    assert got.code == 2 and len(got.error_lines) == 1
    assert "traffic.backend is 'builtin'" in got.err


def test_demo_refuses_an_unknown_or_missing_traffic_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = run("demo", "--out", str(tmp_path / "d"), "--traffic", "nginx")
    assert got.code == 2 and "--traffic must be builtin or haproxy" in got.err
    monkeypatch.setenv("PATH", str(tmp_path))  # no haproxy on it
    got = run("demo", "--out", str(tmp_path / "d"), "--traffic", "haproxy")
    assert got.code == 2 and len(got.error_lines) == 1
    assert "haproxy is not installed" in got.err
    assert not (tmp_path / "d").exists()  # nothing started, nothing written
