"""Write forwarding: a standby sends a write it refused to its primary and relays the answer.

Real `standby serve` processes: a primary and a standby following it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from standby.replication.forward import forwardable
from tests.support.replication import secret_of, status, wait_for, write_pair
from tests.support.sites import SiteProcess, load_site

PASSWORD = "correct horse battery staple"


def test_forwardable_decision() -> None:
    refused = [(b"standby-refused", b"before-write")]
    assert forwardable("standby", 503, refused, forwarded=False)
    assert not forwardable("primary", 503, refused, forwarded=False)  # never on a primary
    assert not forwardable("standby", 503, refused, forwarded=True)  # once, never again
    assert not forwardable("standby", 503, [], forwarded=False)  # committed, or other 503
    assert not forwardable("standby", 200, refused, forwarded=False)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[SiteProcess, SiteProcess, dict[str, str]]]:
    urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
    pc, sc = write_pair(tmp_path, urls)
    a, b = SiteProcess(pc).start(), SiteProcess(sc).start()
    _, secrets = load_site(pc)
    admin = {"Authorization": f"Bearer {secrets.admin_token.get_secret_value()}"}
    try:
        yield a, b, admin
    finally:
        b.stop()
        a.stop()


@pytest.mark.slow
def test_a_write_sent_to_the_standby_is_done_by_the_primary(
    pair: tuple[SiteProcess, SiteProcess, dict[str, str]],
) -> None:
    a, b, admin = pair
    r = httpx.post(f"{b.url}/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.headers["standby-site"] == "site-a"  # acknowledged by the primary
    assert r.headers["standby-forwarded-by"] == "site-b"
    r = httpx.post(
        f"{b.url}/admin/tenants/acme/users",
        json={"username": "alice", "password": PASSWORD},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    # the primary has it, and it comes back to the standby through replication
    assert httpx.get(f"{a.url}/admin/tenants/acme/users/{user_id}", headers=admin).is_success
    wait_for(
        lambda: httpx.get(f"{b.url}/admin/tenants/acme/users/{user_id}", headers=admin).is_success
    )
    # a login at the standby: the session is the primary's, its cookie reaches the client
    with httpx.Client(base_url=b.url) as client:
        login = client.post("/t/acme/login", json={"username": "alice", "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert login.headers["standby-site"] == "site-a"
        assert client.cookies.get("standby_session")
        session = httpx.get(
            f"{a.url}/t/acme/session",
            cookies={"standby_session": client.cookies["standby_session"]},
        )
        assert session.json()["user_id"] == user_id
        # a wrong password is the primary's 401, not a standby error
        bad = client.post("/t/acme/login", json={"username": "alice", "password": "nope-nope"})
        assert bad.status_code == 401 and bad.headers["standby-site"] == "site-a"
    # reads the standby can answer stay on it
    r = httpx.get(f"{b.url}/admin/tenants/acme/users/{user_id}", headers=admin)
    assert r.headers["standby-site"] == "site-b" and "standby-forwarded-by" not in r.headers
    # bad input is the primary's clear 4xx, and nothing is written
    r = httpx.post(f"{b.url}/admin/tenants", content=b"{not json", headers=admin)
    assert r.status_code == 400


@pytest.mark.slow
def test_with_the_primary_down_the_standby_refuses_as_before(
    pair: tuple[SiteProcess, SiteProcess, dict[str, str]],
) -> None:
    a, b, admin = pair
    secret = secret_of(a.config)
    wait_for(lambda: status(b.url, secret)["connected"])
    a.kill()
    r = httpx.post(f"{b.url}/admin/tenants", json={"id": "t2", "name": "T2"}, headers=admin)
    assert r.status_code == 503 and r.json()["error"] == "not_writable"
    # still marked: a traffic layer may hold it for whichever site is promoted
    assert r.headers["standby-refused"] == "before-write"
    assert r.headers["standby-site"] == "site-b"


@pytest.mark.slow
def test_forwarding_can_be_turned_off(tmp_path: Path) -> None:
    urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
    pc, sc = write_pair(tmp_path, urls, standby_replication={"forward_writes": False})
    a, b = SiteProcess(pc).start(), SiteProcess(sc).start()
    try:
        _, secrets = load_site(pc)
        admin = {"Authorization": f"Bearer {secrets.admin_token.get_secret_value()}"}
        r = httpx.post(f"{b.url}/admin/tenants", json={"id": "t", "name": "T"}, headers=admin)
        assert r.status_code == 503 and r.headers["standby-site"] == "site-b"
    finally:
        b.stop()
        a.stop()


@pytest.mark.slow
def test_a_sign_in_at_the_standby_gets_its_code_from_the_primary(
    pair: tuple[SiteProcess, SiteProcess, dict[str, str]],
) -> None:
    """/authorize needs a write (the code): the standby's refusal is forwarded, and the
    browser is sent on to the application with a code from the primary."""
    from tests.support.oidc import REDIRECT, code_request

    a, b, admin = pair
    assert httpx.post(
        f"{b.url}/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=admin
    ).is_success
    assert httpx.post(
        f"{b.url}/admin/tenants/acme/users",
        json={"username": "alice", "password": PASSWORD},
        headers=admin,
    ).is_success
    client = httpx.post(
        f"{b.url}/admin/tenants/acme/clients",
        json={"name": "app", "redirect_uris": [REDIRECT], "first_party": True},
        headers=admin,
    ).json()
    with httpx.Client(base_url=b.url) as browser:
        assert browser.post(
            "/t/acme/login", json={"username": "alice", "password": PASSWORD}
        ).is_success
        wait_for(lambda: browser.get("/t/acme/session").status_code == 200)  # replicated
        r = browser.get("/t/acme/authorize", params=code_request(client["client_id"]))
    assert r.status_code in (302, 303), r.text
    assert r.headers["location"].startswith(REDIRECT) and "code=" in r.headers["location"]
    assert r.headers["standby-site"] == "site-a" and r.headers["standby-forwarded-by"] == "site-b"
