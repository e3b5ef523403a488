"""Invalid configuration fails at start with a message naming the key, the problem and
the fix (and never echoing a secret)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from standby.settings import ConfigError, load_secrets, load_settings
from tests.support.sites import make_site_dir


def _config(tmp_path: Path, **changes: object) -> Path:
    config = make_site_dir(tmp_path, "site-a")
    data = yaml.safe_load(config.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    config.write_text(yaml.safe_dump(data))
    return config


def _set_secret(config: Path, name: str, value: str) -> None:
    path = config.parent / "secrets.yaml"
    data = yaml.safe_load(path.read_text())
    data[name] = value
    path.write_text(yaml.safe_dump(data))


def test_session_ttl_under_a_minute(tmp_path: Path) -> None:
    config = _config(tmp_path, session__idle_ttl=30)
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    msg = str(err.value)
    assert "session.idle_ttl" in msg and "30" in msg and "60 or more" in msg


def test_session_ttl_from_the_environment_is_checked_too(tmp_path: Path) -> None:
    config = _config(tmp_path)
    with pytest.raises(ConfigError, match=r"session\.absolute_ttl.*60 or more"):
        load_settings(config, env={"STANDBY_SESSION__ABSOLUTE_TTL": "59"})


def test_unknown_store_scheme(tmp_path: Path) -> None:
    config = _config(tmp_path, store__url="mysql://root@localhost/standby")
    with pytest.raises(ConfigError) as err:
        load_settings(config, env={})
    msg = str(err.value)
    assert "store.url" in msg and "'mysql'" in msg
    assert "sqlite:///" in msg and "postgresql://" in msg  # the fix: what to use instead


@pytest.mark.parametrize("value", [" padded-token", "token-with-newline\n", "tab-secret\t"])
def test_secret_with_whitespace(tmp_path: Path, value: str) -> None:
    config = _config(tmp_path)
    _set_secret(config, "admin_token", value)
    settings = load_settings(config, env={})
    with pytest.raises(ConfigError) as err:
        load_secrets(settings, env={})
    msg = str(err.value)
    assert "admin_token" in msg and "whitespace" in msg and "remove it" in msg
    assert value.strip() not in msg  # the secret itself is never printed


def test_secret_with_whitespace_from_the_environment(tmp_path: Path) -> None:
    config = _config(tmp_path)
    settings = load_settings(config, env={})
    with pytest.raises(ConfigError, match="replication_secret.*whitespace"):
        load_secrets(settings, env={"STANDBY_REPLICATION_SECRET": "s3cret-value "})


def test_secret_in_the_config_file_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, admin_token="should-not-be-here")
    with pytest.raises(ConfigError, match="admin_token.*secrets file"):
        load_settings(config, env={})


def test_serve_exits_2_with_the_message(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _set_secret(config, "kek", " not-a-key")
    proc = subprocess.run(
        [sys.executable, "-m", "standby.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    assert "kek" in proc.stderr and "whitespace" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_config_error_never_shows_a_password(tmp_path: Path) -> None:
    from standby.settings import redact_urls

    cfg = tmp_path / "standby.yaml"
    cfg.write_text("site: a\nstore:\n  url: 'postgresql://alice:s3cr3t-pw@127.0.0.1:nope/db'\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    assert "store.url" in str(err.value)
    assert "s3cr3t-pw" not in str(err.value) and "alice:***@" in str(err.value)
    assert redact_urls("x http://u:p@h/ y") == "x http://u:***@h/ y"
    assert redact_urls("sqlite:///a.db postgresql://u@h/x") == "sqlite:///a.db postgresql://u@h/x"
