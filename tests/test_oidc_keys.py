"""Signing keys in the store: sealed under the KEK, replicated through the change log so
a standby verifies (and after promotion signs) with the same keys; the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select
from typer.testing import CliRunner

from standby.cli import app as cli_app
from standby.identity import keys
from standby.identity.keys import KeyOpError
from standby.identity.oidc import selftest
from standby.identity.oidc.tokens import issue_client_credentials, verify_access_token
from standby.identity.oidc.verify import InvalidToken
from standby.server import Site
from standby.settings import Secrets, new_key
from standby.store import NotWritable, Store
from standby.store.schema import change_log
from tests.support.identity import IdSite, identity_site


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url) as s:
        s.tenant("acme")
        yield s


def _standby(ids: IdSite, tmp_path: Path, secrets: Secrets | None = None) -> Site:
    store = Store(f"sqlite:///{tmp_path / 'standby.db'}", "site-b")
    store.create(role="standby")
    store.apply(ids.store.iter_records())
    site = Site(
        ids.site.settings.model_copy(update={"site": "site-b", "role": "standby"}),
        secrets or ids.site.secrets,
        store,
    )
    site.parts["clock"] = ids.clock
    return site


def test_private_keys_are_sealed_in_the_store_and_the_log(ids: IdSite) -> None:
    keys.ensure_active_key(ids.site)
    (row,) = keys.keyring(ids.site).rows()
    assert row["private_jwk"].startswith("gcm1:")
    public = json.loads(row["public_jwk"])
    assert "d" not in public and public["kid"] == row["id"] and public["alg"] == "RS256"
    with ids.store.read() as conn:
        payloads = [
            p
            for p in conn.execute(
                select(change_log.c.payload).where(change_log.c.entity == "signing_keys")
            ).scalars()
        ]
    assert payloads and all('\\"d\\"' not in p and '"d":' not in p for p in payloads)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_every_algorithm_signs_and_verifies(ids: IdSite, alg: str) -> None:
    ids.site.settings.oidc.signing_alg = alg  # type: ignore[assignment]
    keys.ensure_active_key(ids.site)
    assert keys.active_row(ids.site)["alg"] == alg  # type: ignore[index]
    body = issue_client_credentials(ids.site, "acme", "svc", "api")
    claims = verify_access_token(ids.site, "acme", body["access_token"])
    assert claims["sub"] == "svc"
    assert selftest(ids.site) is None


def test_a_standby_verifies_with_replicated_keys_and_signs_after_promotion(
    ids: IdSite, tmp_path: Path
) -> None:
    keys.ensure_active_key(ids.site)
    token = issue_client_credentials(ids.site, "acme", "svc", "api")["access_token"]
    standby = _standby(ids, tmp_path)
    assert selftest(standby) is None
    assert verify_access_token(standby, "acme", token)["sub"] == "svc"
    with pytest.raises(NotWritable):
        keys.rotate(standby)
    # promotion: same keys, the standby now signs tokens the old JWKS already holds
    standby.set_role("primary", 2)
    token_b = issue_client_credentials(standby, "acme", "svc", "api")["access_token"]
    assert verify_access_token(ids.site, "acme", token_b)["sub"] == "svc"
    assert keys.public_jwks(standby) == keys.public_jwks(ids.site)


def test_a_key_that_replicated_after_the_last_read_verifies_at_once(
    ids: IdSite, tmp_path: Path
) -> None:
    """A standby re-reads its keys each second; a token signed with a key that arrived
    in between is not refused: an unknown key id makes it look again (rate-limited)."""
    keys.ensure_active_key(ids.site)
    standby = _standby(ids, tmp_path)
    first = issue_client_credentials(ids.site, "acme", "svc", "api")["access_token"]
    assert verify_access_token(standby, "acme", first)["sub"] == "svc"  # keys read now
    keys.stage(ids.site)
    keys.rotate(ids.site)  # a new key signs from now on
    head = standby.store.head().lsn
    standby.store.apply([r for r in ids.store.iter_records() if r.lsn > head])
    token = issue_client_credentials(ids.site, "acme", "svc", "api")["access_token"]
    assert verify_access_token(standby, "acme", token)["sub"] == "svc"
    # a key id nobody has is refused, and does not make every request read the store
    with pytest.raises(InvalidToken):
        verify_access_token(standby, "acme", first[:-4] + "AAAA")
    assert keys.keyring(standby).reload_if_older(60) is False


def test_a_standby_without_keys_or_with_another_kek_says_why(ids: IdSite, tmp_path: Path) -> None:
    standby = _standby(ids, tmp_path)
    assert "no active signing key has been replicated" in (selftest(standby) or "")
    keys.ensure_active_key(ids.site)
    other = ids.site.secrets.model_copy(update={"kek": SecretStr(new_key())})
    (tmp_path / "w").mkdir()
    assert "KEK" in (selftest(_standby(ids, tmp_path / "w", other)) or "")


def test_rotate_retire_remove_rules(ids: IdSite) -> None:
    keys.ensure_active_key(ids.site)
    first = keys.active_row(ids.site)["id"]  # type: ignore[index]
    keys.stage(ids.site)
    staged = [r["id"] for r in keys.list_keys(ids.site) if r["state"] == "staged"]
    assert len(staged) == 1
    assert {k["kid"] for k in keys.public_jwks(ids.site)["keys"]} == {first, staged[0]}
    keys.rotate(ids.site)
    assert keys.active_row(ids.site)["id"] == staged[0]  # type: ignore[index]
    with pytest.raises(KeyOpError, match="may still be valid"):
        keys.remove(ids.site, first)
    with pytest.raises(KeyOpError, match="active"):
        keys.remove(ids.site, staged[0])
    with pytest.raises(KeyOpError, match="no signing key"):
        keys.retire(ids.site, "nope")
    head = ids.head()
    with pytest.raises(KeyOpError):
        keys.retire(ids.site, first)  # already retired
    assert ids.head() == head
    ids.clock.advance(ids.site.settings.oidc.access_token_ttl + 61)
    done = keys.run_schedule(ids.site)
    assert any(line.startswith(f"removed {first}") for line in done)
    assert first not in {k["kid"] for k in keys.public_jwks(ids.site)["keys"]}
    # retiring the active key hands signing to a new one
    keys.retire(ids.site, staged[0])
    assert keys.active_row(ids.site)["id"] not in (first, staged[0])  # type: ignore[index]


def test_scheduled_rotation_prepublishes(tmp_path: Path, store_url: str) -> None:
    extra = {"oidc": {"rotation_days": 1, "prepublish_hours": 2}}
    with identity_site(tmp_path, store_url, extra=extra) as ids:
        keys.run_schedule(ids.site)
        first = keys.active_row(ids.site)["id"]  # type: ignore[index]
        ids.clock.advance(22 * 3600 + 1)
        keys.run_schedule(ids.site)
        staged = [r for r in keys.list_keys(ids.site) if r["state"] == "staged"]
        assert len(staged) == 1 and keys.active_row(ids.site)["id"] == first  # type: ignore[index]
        ids.clock.advance(2 * 3600)
        keys.run_schedule(ids.site)
        assert keys.active_row(ids.site)["id"] == staged[0]["id"]  # type: ignore[index]


def test_cli_lists_and_rotates(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url) as ids:
        keys.ensure_active_key(ids.site)
        config = str(ids.config)
    runner = CliRunner()
    listed = runner.invoke(cli_app, ["keys", "list", "--config", config, "--json"])
    assert listed.exit_code == 0, listed.output
    (only,) = json.loads(listed.output)["keys"]
    assert only["state"] == "active" and "private_jwk" not in only
    rotated = runner.invoke(cli_app, ["keys", "rotate", "--config", config, "--json"])
    assert rotated.exit_code == 0, rotated.output
    assert any(d.startswith(f"retired {only['id']}") for d in json.loads(rotated.output)["done"])
    refused = runner.invoke(cli_app, ["keys", "remove", only["id"], "--config", config])
    assert refused.exit_code == 1 and "--force skips the wait" in refused.output
    forced = runner.invoke(cli_app, ["keys", "remove", only["id"], "--force", "-c", config])
    assert forced.exit_code == 0, forced.output
