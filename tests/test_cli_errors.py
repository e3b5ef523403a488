"""Bad input to the CLI as a new user types it: a URL without a scheme, a database that
does not answer, a folder that does not exist, options that contradict each other, a
name with a typo, a busy port. Each is one line on standard error and a non-zero exit,
never a traceback, and nothing is created or changed on the way."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from standby.cli import app
from standby.store import Store
from standby.store.schema import REPLICATED_TABLES
from tests.support.cli import Ran, run
from tests.support.sites import load_site, make_site_dir

# A loopback port nothing listens on (port 1 needs root to bind).
UNREACHABLE_PG = "postgresql://someone@127.0.0.1:1/nothing"


def one_line_error(r: Ran, *words: str) -> str:
    assert r.code != 0, r
    assert "Traceback" not in r.err, r.err
    assert len(r.error_lines) == 1, r.err
    line = r.error_lines[0]
    assert line.startswith("error: "), line
    for w in words:
        assert w in line, (w, line)
    return line


def set_key(cfg: Path, section: str, key: str, value: str) -> Path:
    """Write ``section.key: value`` into a config after it was written (and checked)."""
    data = yaml.safe_load(cfg.read_text())
    data.setdefault(section, {})[key] = value
    cfg.write_text(yaml.safe_dump(data))
    return cfg


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A SQLite site with one backup set, so a restore has something to restore."""
    cfg = make_site_dir(tmp_path, "site-a", extra={"backup": {"directory": "backups"}})
    made = run("backup", "create", "-c", str(cfg))
    assert made.code == 0, made
    return cfg


def test_restore_target_url_without_scheme(config: Path, tmp_path: Path) -> None:
    r = run("restore", "-c", str(config), "--target-url", "restored.db")
    one_line_error(r, "no scheme", "sqlite:///")
    assert not Path("restored.db").exists()


def test_restore_to_unreachable_postgresql(config: Path) -> None:
    r = run("restore", "-c", str(config), "--target-url", UNREACHABLE_PG)
    one_line_error(r, "cannot reach restore target", "127.0.0.1", "refused")


def test_restore_refuses_a_folder_that_does_not_exist(config: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    r = run("restore", "-c", str(config), "--target-url", f"sqlite:///{missing}/x.db")
    one_line_error(r, "does not exist")
    assert not (tmp_path / "no").exists()  # no folder made on the way


def test_unreachable_store_in_the_config_is_one_line_for_every_command(tmp_path: Path) -> None:
    cfg = make_site_dir(tmp_path, "site-a", store_url=UNREACHABLE_PG)
    for args in (
        ["tenant", "list"],
        ["user", "list", "-t", "acme"],
        ["keys", "list"],
        ["verify-log"],
        ["log", "find"],
        ["client", "list", "-t", "acme"],
        ["backup", "create"],
    ):
        r = run(*args, "-c", str(cfg))
        one_line_error(r, "database", "refused")


def test_store_url_the_driver_cannot_read_is_refused_with_the_config(tmp_path: Path) -> None:
    for i, url in enumerate(("postgresql://u@127.0.0.1:port/x", "sqlite://x.db", "x.db")):
        cfg = set_key(make_site_dir(tmp_path / str(i), "site-a"), "store", "url", url)
        r = run("tenant", "list", "-c", str(cfg))
        one_line_error(r, str(cfg), "store.url")
        assert r.code == 2


def test_service_urls_without_a_scheme_or_with_a_bad_port_are_refused(tmp_path: Path) -> None:
    """Site configs and the topology name other services by URL; one a driver or httpx
    cannot use (no scheme: every check then fails for ever; a port that is not a number:
    a traceback) is refused when the file is read, naming the key."""
    cfg = set_key(make_site_dir(tmp_path, "site-a"), "cluster", "controller_url", "127.0.0.1:7")
    one_line_error(run("tenant", "list", "-c", str(cfg)), "cluster.controller_url", "http")
    secrets = tmp_path / "cluster-secrets.yaml"
    secrets.write_text(yaml.safe_dump({"replication_secret": "r", "admin_token": "a"}))
    secrets.chmod(0o600)
    for key, url in (("controller", "http://127.0.0.1:port"), ("site", "127.0.0.1:8080")):
        topology = tmp_path / f"topology-{key}.yaml"
        topology.write_text(
            yaml.safe_dump(
                {
                    "secrets_file": secrets.name,
                    "controller": {"url": url if key == "controller" else "http://127.0.0.1:7"},
                    "sites": [
                        {
                            "name": "a",
                            "role": "primary",
                            "url": url if key == "site" else "http://127.0.0.1:8",
                        },
                        {"name": "b", "role": "standby", "url": "http://127.0.0.1:9"},
                    ],
                }
            )
        )
        for command in ("status", "controller"):
            r = run(command, "--topology", str(topology))
            one_line_error(r, "controller.url" if key == "controller" else "sites.0.url")
            assert r.code == 2


def test_backup_verify_takes_one_selection(config: Path) -> None:
    for args in (["--latest", "--set", "x"], ["--all", "--set", "x"], ["--latest", "--all"]):
        r = run("backup", "verify", "-c", str(config), *args)
        one_line_error(r, "--latest", "--set")
        assert r.code == 2


def test_log_find_names_unknown_entity_and_op(config: Path) -> None:
    r = run("log", "find", "-c", str(config), "--entity", "nosuch")
    line = one_line_error(r, "unknown entity 'nosuch'")
    assert all(name in line for name in REPLICATED_TABLES)
    r = run("log", "find", "-c", str(config), "--op", "inserts")
    one_line_error(r, "unknown op 'inserts'", "insert, update, delete")
    found = run("log", "find", "-c", str(config), "--entity", "signing_keys", "--json")
    assert found.code in (0, 1) and "unknown" not in found.err  # a known entity is searched


def test_help_shows_no_value_type_on_flags() -> None:
    """Every command's help: flags (which take no value) show no `<bool>`; an option that
    takes a value still shows its type."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(cmd: object, path: list[str]) -> None:
        paths.append(path)
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(root, [])
    assert len(paths) > 20
    for path in paths:
        r = run(*path, "--help")
        assert r.code == 0, (path, r)
        assert "<bool>" not in r.out, (path, r.out)
    assert "<path>" in run("backup", "verify", "--help").out


def test_tables_show_ids_whole(config: Path, tmp_path: Path) -> None:
    """On an 80-column terminal the ids a person types next are printed whole."""
    narrow = CliRunner(env={"COLUMNS": "80"})
    staged = run("keys", "stage", "-c", str(config), "--json")
    assert staged.code == 0, staged
    settings, _ = load_site(config)
    store = Store(settings.store.url, settings.site)
    try:
        with store.read() as conn:
            kids = [r.id for r in conn.execute(REPLICATED_TABLES["signing_keys"].select())]
    finally:
        store.close()
    verified = run("backup", "verify", "-c", str(config))
    assert verified.code == 0, verified
    keys = narrow.invoke(app, ["keys", "list", "-c", str(config)])
    assert kids and all(k in keys.stdout for k in kids), keys.stdout
    sets = run("backup", "list", "-c", str(config), "--json")
    listed = narrow.invoke(app, ["backup", "list", "-c", str(config)])
    ids = [s["id"] for s in json.loads(sets.out)["sets"]]
    assert ids and all(i in listed.stdout for i in ids), listed.stdout
    c = str(config)
    assert run("tenant", "create", "-c", c, "acme", "--name", "Acme").code == 0
    made = run("user", "create", "-c", c, "-t", "acme", "alice", "--password", "long enough pw")
    assert made.code == 0, made
    client = run(
        "client",
        "create",
        "-c",
        c,
        "-t",
        "acme",
        "--name",
        "web",
        "--redirect-uri",
        "https://app.example/cb",
        "--json",
    )
    assert client.code == 0, client
    for kind, key in (("user", "id"), ("client", "client_id")):
        listed_json = json.loads(run(kind, "list", "-c", c, "-t", "acme", "--json").out)
        shown = narrow.invoke(app, [kind, "list", "-c", c, "-t", "acme"]).stdout
        assert all(row[key] in shown for row in listed_json), (kind, shown)


def test_serve_on_a_busy_port_says_http_port_before_touching_the_store(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = make_site_dir(tmp_path, "site-a", port=port)
        out = subprocess.run(
            [sys.executable, "-m", "standby.cli", "serve", "-c", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert "http.port" in lines[0] and str(port) in lines[0] and "in use" in lines[0]
    # Nothing was started: no store created, so no signing key generated either.
    assert not list(cfg.parent.glob("*.db")), list(cfg.parent.iterdir())


def test_an_error_never_shows_a_database_password(config: Path) -> None:
    target = "postgresql://someone:hunter2-pw@127.0.0.1:1/nothing"
    r = run("restore", "-c", str(config), "--target-url", target)
    line = one_line_error(r, "cannot reach restore target")
    assert "hunter2-pw" not in r.err + r.out and "someone:***@" in line
