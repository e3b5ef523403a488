"""The consent page: a client that is not first-party gets a code only after the user
allowed it the scopes asked for, remembered per user, client and scopes; prompt=consent
asks again, prompt=none answers consent_required; a refresh token needs offline_access
(or a first-party client). In-process (TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from standby.identity.oidc.consent import consent_needed
from tests.support.identity import PASSWORD, IdSite
from tests.support.oidc import (
    authorize,
    exchange,
    issuer,
    make_client,
    oidc_site,
    parse_form,
    query_of,
    submit,
)

SCOPES = ["openid", "profile", "email", "offline_access"]


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with oidc_site(tmp_path, store_url, "alice", "bob") as s:
        yield s


def third_party(ids: IdSite, **extra: Any) -> dict[str, Any]:
    return make_client(
        ids,
        name="Photo Printer",
        grant_types=["authorization_code", "refresh_token"],
        scopes=SCOPES,
        **extra,
    )


def sign_in(ids: IdSite, client_id: str, user: str = "alice", **params: str) -> Any:
    """A fresh browser: the login page, then what its POST answers."""
    ids.client.cookies.clear()
    page = authorize(ids, client_id, **params)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text
    return submit(ids, page, username=user, password=PASSWORD)


def is_consent_page(r: Any) -> bool:
    return r.status_code == 200 and "Allow access?" in r.text


def code_of(r: Any) -> str:
    assert r.status_code == 303, r.text
    return query_of(r.headers["location"])["code"]


def test_consent_is_asked_once_per_user_client_and_scopes(ids: IdSite) -> None:
    app = third_party(ids)
    cid = app["client_id"]
    page = sign_in(ids, cid, scope="openid profile")
    assert is_consent_page(page)
    assert "Photo Printer" in page.text and "see your username and name" in page.text
    assert "Signed in as alice" in page.text and "a refresh token" not in page.text
    csp = page.headers["content-security-policy"]
    assert "form-action 'self' https://app.example" in csp and "frame-ancestors 'none'" in csp
    assert parse_form(page.text).action == "/t/acme/authorize/consent"
    body = exchange(ids, app, code_of(submit(ids, page, decision="allow"))).json()
    assert "access_token" in body and "id_token" in body
    assert "refresh_token" not in body  # no offline_access, not first-party

    # remembered: the same scopes (or fewer) give a code at once, also with prompt=none
    assert code_of(authorize(ids, cid, scope="openid profile"))
    assert code_of(authorize(ids, cid, scope="openid", prompt="none"))
    # a scope not allowed yet: asked again; prompt=none cannot ask
    r = authorize(ids, cid, scope="openid email", prompt="none")
    q = query_of(r.headers["location"])
    assert (q["error"], q["state"], q["iss"]) == ("consent_required", "st-1", issuer(ids))
    again = authorize(ids, cid, scope="openid email")
    assert is_consent_page(again) and "see your email address" in again.text
    assert code_of(submit(ids, again, decision="allow"))
    assert code_of(authorize(ids, cid, scope="openid profile email", prompt="none"))
    # prompt=consent always asks
    assert is_consent_page(authorize(ids, cid, scope="openid", prompt="consent"))
    # another user of the same browser is asked for themselves
    assert is_consent_page(sign_in(ids, cid, user="bob", scope="openid profile"))


def test_deny_sends_access_denied_and_remembers_nothing(ids: IdSite) -> None:
    cid = third_party(ids)["client_id"]
    page = sign_in(ids, cid)
    head = ids.head()
    r = submit(ids, page, decision="deny")
    q = query_of(r.headers["location"])
    assert (r.status_code, q["error"], q["state"]) == (303, "access_denied", "st-1")
    assert "code" not in q and ids.head() == head
    assert is_consent_page(authorize(ids, cid))


def test_offline_access_is_consented_to_and_gives_a_refresh_token(ids: IdSite) -> None:
    app = third_party(ids)
    page = sign_in(ids, app["client_id"], scope="openid offline_access")
    assert is_consent_page(page) and "a refresh token" in page.text
    body = exchange(ids, app, code_of(submit(ids, page, decision="allow"))).json()
    assert body["refresh_token"] and body["scope"] == "openid offline_access"


def test_a_first_party_client_is_not_asked_unless_prompt_consent(ids: IdSite) -> None:
    app = third_party(ids)
    path = f"/admin/tenants/acme/clients/{app['client_id']}"
    r = ids.client.patch(path, json={"first_party": True}, headers=ids.admin)
    assert r.status_code == 200 and r.json()["first_party"] is True
    body = exchange(ids, app, code_of(sign_in(ids, app["client_id"]))).json()
    assert body["refresh_token"]  # first-party: a refresh token without offline_access
    assert is_consent_page(authorize(ids, app["client_id"], prompt="consent"))
    r = authorize(ids, app["client_id"], prompt="none")
    assert code_of(r)


def test_the_consent_form_needs_its_csrf_token_and_the_same_user(ids: IdSite) -> None:
    cid = third_party(ids)["client_id"]
    page = sign_in(ids, cid)
    form = parse_form(page.text)
    head = ids.head()
    forged = ids.client.post(
        form.action or "", data={**form.fields, "csrf": "0" * 64, "decision": "allow"}
    )
    assert forged.status_code == 403 and ids.head() == head
    # bob signs in on this browser meanwhile: alice's page does not consent for him
    ids.client.post("/t/acme/login", json={"username": "bob", "password": PASSWORD})
    head = ids.head()
    swapped = submit(ids, page, decision="allow")
    assert is_consent_page(swapped) and "Signed in as bob" in swapped.text
    assert ids.head() == head
    # signed out meanwhile: sign in again
    ids.client.post("/t/acme/logout")
    gone = submit(ids, page, decision="allow")
    assert gone.status_code == 200 and 'name="password"' in gone.text
    assert is_consent_page(submit(ids, gone, username="alice", password=PASSWORD))


def test_deleting_a_user_deletes_their_consents(ids: IdSite) -> None:
    from sqlalchemy import select

    from standby.store.schema import consents

    cid = third_party(ids)["client_id"]
    assert code_of(submit(ids, sign_in(ids, cid), decision="allow"))
    assert code_of(submit(ids, sign_in(ids, cid, user="bob"), decision="allow"))

    def holders() -> list[str]:
        with ids.store.read() as conn:
            return sorted(conn.execute(select(consents.c.user_id)).scalars())

    users = ids.client.get("/admin/tenants/acme/users", headers=ids.admin).json()["users"]
    by_name = {u["username"]: u["id"] for u in users}
    assert holders() == sorted([by_name["alice"], by_name["bob"]])
    r = ids.client.delete(f"/admin/tenants/acme/users/{by_name['alice']}", headers=ids.admin)
    assert r.status_code == 200, r.text
    assert holders() == [by_name["bob"]]


def test_discovery_lists_the_prompt_values_supported(ids: IdSite) -> None:
    meta = ids.client.get("/t/acme/.well-known/openid-configuration").json()
    assert meta["prompt_values_supported"] == ["none", "login", "consent"]
    assert "offline_access" in meta["scopes_supported"]


@pytest.mark.parametrize(
    ("first_party", "prompt", "asked", "granted", "ask"),
    [
        (False, [], ["openid"], [], True),
        (False, [], ["openid"], ["openid", "email"], False),
        (False, [], ["openid", "offline_access"], ["openid"], True),
        (False, ["consent"], ["openid"], ["openid"], True),
        (True, [], ["openid", "offline_access"], [], False),
        (True, ["consent"], ["openid"], ["openid"], True),
        (False, ["login"], ["openid"], ["openid"], False),
    ],
)
def test_consent_decision(
    first_party: bool, prompt: list[str], asked: list[str], granted: list[str], ask: bool
) -> None:
    assert consent_needed(first_party, prompt, asked, granted) is ask
