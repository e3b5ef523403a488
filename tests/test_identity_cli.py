"""The identity CLI on a site's store, and `standby verify-log` against a tampered row."""

from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from standby.cli import app
from standby.store.engine import normalize_url
from tests.support.identity import open_site
from tests.support.sites import make_site_dir

runner = CliRunner()
PASSWORD = "a long enough passphrase"


def _run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), input=input)
    out = result.output + (result.stderr if result.stderr_bytes is not None else "")
    return result.exit_code, " ".join(out.split())  # rich may wrap lines


def _create_user(config: Path, username: str, stdin: str) -> tuple[int, str]:
    """`standby user create` in tenant acme, the password on standard input."""
    return _run(
        "user",
        "create",
        "-c",
        str(config),
        "-t",
        "acme",
        username,
        "--password-stdin",
        input=stdin,
    )


def _setup(config: Path) -> None:
    assert _run("tenant", "create", "-c", str(config), "acme", "--name", "Acme")[0] == 0
    code, out = _create_user(config, "alice", PASSWORD + "\n")
    assert code == 0, out


def test_user_created_by_the_cli_can_log_in(tmp_path: Path, store_url: str) -> None:
    config = make_site_dir(tmp_path, "site-a", store_url=store_url)
    _setup(config)
    code, out = _run("user", "list", "-c", str(config), "-t", "acme", "--json")
    assert code == 0
    listed = json.loads(out)
    assert [u["username"] for u in listed] == ["alice"] and "password_hash" not in listed[0]
    code, out = _run("tenant", "list", "-c", str(config), "--json")
    assert [t["id"] for t in json.loads(out)] == ["acme"]
    site = open_site(config)
    try:
        r = site.client.post("/t/acme/login", json={"username": "alice", "password": PASSWORD})
        assert r.status_code == 200, r.text
        events = site.client.get("/admin/tenants/acme/audit", headers=site.admin).json()["events"]
        assert [(e["action"], e["actor"]) for e in events[:2]] == [
            ("tenant.create", "cli"),
            ("user.create", "cli"),
        ]
    finally:
        site.close()
    # set-password, disable and delete by username
    code, _ = _run(
        "user",
        "set-password",
        "-c",
        str(config),
        "-t",
        "acme",
        "alice",
        "--password",
        "another long passphrase",
    )
    assert code == 0
    assert _run("user", "disable", "-c", str(config), "-t", "acme", "alice")[0] == 0
    site = open_site(config)
    try:
        r = site.client.post(
            "/t/acme/login", json={"username": "alice", "password": "another long passphrase"}
        )
        assert r.status_code == 403
    finally:
        site.close()
    assert _run("user", "delete", "-c", str(config), "-t", "acme", "alice", "--yes")[0] == 0
    code, out = _run("user", "list", "-c", str(config), "-t", "acme", "--json")
    assert json.loads(out) == []


def test_cli_errors_are_messages_and_exit_codes(tmp_path: Path, store_url: str) -> None:
    config = make_site_dir(tmp_path, "site-a", store_url=store_url)
    _setup(config)
    code, out = _create_user(config, "alice", PASSWORD + "\n")
    assert code == 1 and "taken" in out and "Traceback" not in out
    code, out = _create_user(config, "bob", "short\n")
    assert code == 1 and "at least" in out
    code, out = _run("user", "list", "-c", str(config), "-t", "nope")
    assert code == 1 and "does not exist" in out
    code, out = _run(
        "client",
        "create",
        "-c",
        str(config),
        "-t",
        "acme",
        "--name",
        "web",
        "--redirect-uri",
        "http://evil.example/cb",
    )
    assert code == 1 and "redirect URI" in out
    code, out = _run(
        "client",
        "create",
        "-c",
        str(config),
        "-t",
        "acme",
        "--name",
        "web",
        "--json",
        "--redirect-uri",
        "https://app.example/cb",
    )
    secret = json.loads(out)["client_secret"]
    assert code == 0 and secret
    code, out = _run("client", "list", "-c", str(config), "-t", "acme", "--json")
    listed = json.loads(out)
    assert code == 0 and len(listed) == 1
    assert secret not in out and "client_secret" not in listed[0] and "secret_hash" not in listed[0]


def test_verify_log_names_an_edited_row_and_passes_when_intact(
    tmp_path: Path, store_url: str
) -> None:
    config = make_site_dir(tmp_path, "site-a", store_url=store_url)
    _setup(config)
    for name in ("bob", "carol"):
        assert (
            _run("user", "create", "-c", str(config), "-t", "acme", name, "--password", PASSWORD)[0]
            == 0
        )
    code, out = _run("verify-log", "-c", str(config))
    assert code == 0 and "ok" in out, out
    engine = create_engine(normalize_url(store_url))
    with engine.begin() as conn:
        lsn = conn.execute(
            text("SELECT lsn FROM change_log WHERE entity = 'users' AND payload LIKE '%bob%'")
        ).scalar_one()
        original = conn.execute(
            text("SELECT payload FROM change_log WHERE lsn = :l"), {"l": lsn}
        ).scalar_one()
        conn.execute(
            text("UPDATE change_log SET payload = :p WHERE lsn = :l"),
            {"p": original.replace('"bob"', '"mallory"'), "l": lsn},
        )
    code, out = _run("verify-log", "-c", str(config))
    assert code == 1, out
    assert re.search(rf"\blsn {lsn}\b", out), out
    code, out = _run("verify-log", "-c", str(config), "--json")
    assert code == 1 and json.loads(out)["first_bad_lsn"] == lsn
    with engine.begin() as conn:  # put the row back: the chain verifies again
        conn.execute(
            text("UPDATE change_log SET payload = :p WHERE lsn = :l"), {"p": original, "l": lsn}
        )
    engine.dispose()
    code, out = _run("verify-log", "-c", str(config))
    assert code == 0, out
