"""`standby init`: one site's files; the public URL a standby takes from its primary;
bad options are one line and exit 2, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.postgres import free_port
from tests.support.sites import SiteProcess, make_site_dir

PUBLIC = "http://127.0.0.1:8000"


def _init(*args: str) -> tuple[int, str]:
    """`standby init ...` as a real process: (exit code, stdout + stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "standby.cli", "init", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "500"},  # no wrapped lines
    )
    return proc.returncode, proc.stdout + proc.stderr


def _config(folder: Path) -> dict[str, object]:
    return dict(yaml.safe_load((folder / "standby.yaml").read_text()))


def _http(folder: Path) -> dict[str, object]:
    http = _config(folder)["http"]
    assert isinstance(http, dict)
    return http


def _standby(tmp_path: Path, primary_url: str, secrets: Path, *extra: str) -> tuple[int, str]:
    return _init(
        "--site",
        "site-b",
        "--dir",
        str(tmp_path / "site-b"),
        "--port",
        str(free_port()),
        "--role",
        "standby",
        "--primary-url",
        primary_url,
        "--secrets-from",
        str(secrets),
        *extra,
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role", "primry"], "--role 'primry' is not a role; use primary or standby"),
        (["--role", "standby"], "--role standby needs --primary-url"),
        (["--primary-url", "http://127.0.0.1:1"], "--primary-url is for a standby"),
        (["--public-url", "127.0.0.1:8000"], "is not an absolute http(s) URL"),
        (["--public-url", "http://x.example/?a=1"], "has a query or fragment"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    code, out = _init("--site", "site-a", "--dir", str(tmp_path / "a"), *args)
    assert code == 2, out
    assert says in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1
    assert not (tmp_path / "a" / "standby.yaml").exists()


def test_public_url_and_cluster_settings_are_written(tmp_path: Path) -> None:
    code, out = _init(
        "--site",
        "site-a",
        "--dir",
        str(tmp_path / "site-a"),
        "--public-url",
        PUBLIC + "/",
        "--controller-url",
        "http://127.0.0.1:7000",
        "--peer-url",
        "http://127.0.0.1:8082",
        "--peer-url",
        "http://127.0.0.1:8083",
    )
    assert code == 0, out
    assert f"issuers: {PUBLIC}/t/<tenant>" in out
    config = _config(tmp_path / "site-a")
    assert config["http"] == {"host": "127.0.0.1", "port": 8080, "public_url": PUBLIC}
    assert config["cluster"] == {
        "controller_url": "http://127.0.0.1:7000",
        "peer_urls": ["http://127.0.0.1:8082", "http://127.0.0.1:8083"],
    }


def test_without_a_public_url_init_warns(tmp_path: Path) -> None:
    code, out = _init("--site", "site-a", "--dir", str(tmp_path / "site-a"))
    assert code == 0, out
    assert "warning: no public URL" in out
    assert "public_url" not in _http(tmp_path / "site-a")


def test_a_standby_takes_the_public_url_from_its_primary_config(tmp_path: Path) -> None:
    """The primary is not running: its standby.yaml beside the secrets file says it."""
    code, out = _init("--site", "site-a", "--dir", str(tmp_path / "site-a"), "--public-url", PUBLIC)
    assert code == 0, out
    closed = f"http://127.0.0.1:{free_port()}"
    code, out = _standby(tmp_path, closed, tmp_path / "site-a" / "secrets.yaml")
    assert code == 0, out
    assert _http(tmp_path / "site-b")["public_url"] == PUBLIC
    assert "site-a/standby.yaml" in out


def test_a_standby_asks_its_running_primary(tmp_path: Path) -> None:
    """Secrets copied to another folder (as to another machine): the primary's /healthz
    says its public URL; a --public-url that differs from it is refused."""
    config = make_site_dir(tmp_path, "site-a", extra={"http": {"public_url": PUBLIC}})
    copied = tmp_path / "elsewhere" / "secrets.yaml"
    copied.parent.mkdir()
    shutil.copy(config.parent / "secrets.yaml", copied)
    primary = SiteProcess(config).start()
    try:
        code, out = _standby(tmp_path, primary.url, copied, "--public-url", "http://other:9")
        assert code == 2 and "differs from the primary's public URL" in out
        assert not (tmp_path / "site-b" / "standby.yaml").exists()
        code, out = _standby(tmp_path, primary.url, copied)
        assert code == 0, out
        assert f"from the primary at {primary.url}" in out
    finally:
        primary.stop()
    assert _http(tmp_path / "site-b")["public_url"] == PUBLIC
    assert _config(tmp_path / "site-b")["replication"] == {"primary_url": primary.url}


def test_a_standby_nobody_can_tell_the_public_url_is_refused(tmp_path: Path) -> None:
    config = make_site_dir(tmp_path, "site-a")
    copied = tmp_path / "elsewhere" / "secrets.yaml"
    copied.parent.mkdir()
    shutil.copy(config.parent / "secrets.yaml", copied)
    code, out = _standby(tmp_path, f"http://127.0.0.1:{free_port()}", copied)
    assert code == 2 and "pass --public-url" in out, out
    assert not (tmp_path / "site-b").exists()
    code, out = _standby(
        tmp_path, f"http://127.0.0.1:{free_port()}", copied, "--public-url", PUBLIC
    )
    assert code == 0, out
    assert _http(tmp_path / "site-b")["public_url"] == PUBLIC
