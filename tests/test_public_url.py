"""One issuer per deployment: ``http.public_url`` is every site's issuer base; a site
without one says so; a standby whose issuer differs from its primary's is not ready,
and `standby status` shows which site issues under what."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from standby.replication.issuer_match import differs
from standby.settings import ConfigError, load_settings
from tests.support.cluster import Cluster, make_cluster
from tests.support.identity import identity_site
from tests.support.sites import make_site_dir

PUBLIC = "https://id.example.com"


def _settings(tmp_path: Path, http: dict[str, Any]) -> Any:
    return load_settings(make_site_dir(tmp_path, "site-a", extra={"http": http}), env={})


def test_public_url_is_the_issuer_base_and_base_url_is_its_old_name(tmp_path: Path) -> None:
    s = _settings(tmp_path / "a", {"public_url": PUBLIC + "/"})
    assert s.base_url() == PUBLIC and s.own_url() == f"http://127.0.0.1:{s.http.port}"
    s = _settings(tmp_path / "b", {"base_url": PUBLIC})
    assert s.http.public_url == PUBLIC and s.base_url() == PUBLIC
    s = _settings(tmp_path / "c", {})
    assert s.http.public_url is None and s.base_url() == s.own_url()
    config = make_site_dir(tmp_path / "d", "site-a")
    env = {"STANDBY_HTTP__PUBLIC_URL": PUBLIC}
    assert load_settings(config, env=env).base_url() == PUBLIC


@pytest.mark.parametrize(
    ("http", "says"),
    [
        ({"public_url": "id.example.com"}, "is not an absolute http(s) URL"),
        ({"public_url": "ftp://id.example.com"}, "is not an absolute http(s) URL"),
        ({"public_url": PUBLIC + "/#x"}, "has a query or fragment"),
        ({"public_url": PUBLIC, "base_url": "https://other.example"}, "keep only public_url"),
    ],
)
def test_a_bad_public_url_is_one_clear_error(
    tmp_path: Path, http: dict[str, str], says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_site_dir(tmp_path, "site-a", extra={"http": http})
    assert says in str(err.value) and "http" in str(err.value)
    assert len(str(err.value).splitlines()) == 1


def test_discovery_and_healthz_name_the_public_url(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url, extra={"http": {"public_url": PUBLIC}}) as ids:
        ids.tenant()
        meta = ids.client.get("/t/acme/.well-known/openid-configuration").json()
        assert meta["issuer"] == f"{PUBLIC}/t/acme"
        assert meta["token_endpoint"] == f"{PUBLIC}/t/acme/token"
        health = ids.client.get("/healthz").json()
        assert health["public_url"] == health["issuer_base"] == PUBLIC
        assert ids.client.get("/readyz").json()["warnings"] == {}


def test_a_site_without_a_public_url_says_so(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url) as ids:
        own = ids.site.settings.own_url()
        assert ids.client.get("/healthz").json()["public_url"] is None
        ready = ids.client.get("/readyz").json()
        why = ready["warnings"]["public_url"]
        assert "http.public_url is not set" in why and f"{own}/t/<tenant>" in why
        assert "public_url" not in ready["problems"]  # a warning: the site still serves


@pytest.mark.parametrize(
    ("ours", "theirs", "stop"),
    [
        ((PUBLIC, PUBLIC), (PUBLIC, PUBLIC), False),
        ((PUBLIC, PUBLIC), (PUBLIC + "/", PUBLIC + "/"), False),
        ((PUBLIC, PUBLIC), ("https://other", "https://other"), True),
        ((PUBLIC, PUBLIC), (None, "http://127.0.0.1:8080"), True),  # primary has none
        ((None, "http://127.0.0.1:8081"), (PUBLIC, PUBLIC), True),  # standby has none
        ((None, "http://127.0.0.1:8081"), (None, "http://127.0.0.1:8080"), False),  # warned
        ((PUBLIC, PUBLIC), (None, None), False),  # the primary did not say
    ],
)
def test_which_differences_stop_a_standby(
    ours: tuple[str | None, str], theirs: tuple[str | None, str | None], stop: bool
) -> None:
    assert differs(ours, theirs) is stop


def _readyz(url: str) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"{url}/readyz", timeout=2).json())
    except httpx.HTTPError:
        return {}


def _status_text(cluster: Cluster) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "standby.cli", "status", "--topology", str(cluster.topology)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "500"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_a_standby_with_another_issuer_is_not_ready_and_status_says_so(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    config_b = cluster.configs["site-b"]
    data = yaml.safe_load(config_b.read_text())
    data["http"]["public_url"] = PUBLIC
    config_b.write_text(yaml.safe_dump(data))
    try:
        cluster.start()
        problems = cluster.wait_for(
            "site-b to report its issuer problem",
            lambda: _readyz(cluster.urls["site-b"]).get("problems", {}).get("issuer"),
        )
        assert f"this site issues as {PUBLIC}/t/<tenant>" in problems
        assert f"as {cluster.router_url}/t/<tenant>" in problems
        assert _readyz(cluster.urls["site-a"])["ready"] is True

        def differ() -> dict[str, Any] | None:
            issuers = cluster.status()["issuers"]
            return issuers if len(issuers["sites"]) == 2 else None

        issuers = cluster.wait_for("the controller to see both issuers", differ)
        assert issuers["same"] is False and issuers["issuer_base"] is None
        assert issuers["sites"] == {"site-a": cluster.router_url, "site-b": PUBLIC}
        text = _status_text(cluster)
        assert f"issuers differ: site-a {cluster.router_url}, site-b {PUBLIC}" in text
        assert "site-b not ready (issuer): issuer differs from the primary's" in text
    finally:
        cluster.stop()


@pytest.mark.slow
def test_sites_without_a_public_url_stay_ready_and_warn(tmp_path: Path) -> None:
    """Configurations from before the setting: nothing stops, everything says why not."""
    cluster = make_cluster(tmp_path, site_extra={"http": {"public_url": None}})
    try:
        cluster.start()
        cluster.wait_for(
            "site-b ready", lambda: _readyz(cluster.urls["site-b"]).get("ready") is True
        )
        for name in ("site-a", "site-b"):
            assert "public_url" in _readyz(cluster.urls[name])["warnings"], name

        def both() -> dict[str, Any] | None:
            issuers = cluster.status()["issuers"]
            return issuers if len(issuers["public_url_unset"]) == 2 else None

        issuers = cluster.wait_for("the controller to see both sites", both)
        assert issuers["same"] is False  # each names its own host:port
        text = _status_text(cluster)
        assert "issuers differ" in text
        assert "site-b warning (public_url): http.public_url is not set" in text
    finally:
        cluster.stop()
