"""Authorization code + PKCE through the hosted login page, ID tokens, refresh rotation,
userinfo, logout; every bad input gets the spec's error and changes nothing else.
In-process (TestClient) on SQLite and PostgreSQL, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyotp
import pytest

from tests.support.identity import PASSWORD, IdSite
from tests.support.oidc import (
    REDIRECT,
    authorize,
    basic,
    exchange,
    issuer,
    login_for_code,
    make_client,
    oidc_site,
    parse_form,
    pkce,
    pyjwt_claims,
    query_of,
    submit,
)

LOGOUT_TO = "https://app.example/bye"


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with oidc_site(tmp_path, store_url, "alice") as s:
        yield s


def web_client(ids: IdSite, **extra: Any) -> dict[str, Any]:
    """A first-party web app (no consent page, refresh tokens) unless ``extra`` says not."""
    return make_client(
        ids,
        grant_types=["authorization_code", "refresh_token"],
        post_logout_redirect_uris=[LOGOUT_TO],
        **{"first_party": True, **extra},
    )


def verify_id_token(ids: IdSite, token: str, client_id: str) -> dict[str, Any]:
    return pyjwt_claims(
        ids, token, audience=client_id, issuer=issuer(ids), algorithms=["RS256"], check_iat=False
    )


def test_code_flow_confidential_client(ids: IdSite) -> None:
    client = web_client(ids)
    cid = client["client_id"]
    verifier, challenge = pkce()
    params = login_for_code(ids, cid, code_challenge=challenge, code_challenge_method="S256")
    assert params["state"] == "st-1" and params["iss"] == issuer(ids)
    r = exchange(ids, client, params["code"], code_verifier=verifier)
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"access_token", "id_token", "refresh_token"} <= set(body)
    claims = verify_id_token(ids, body["id_token"], cid)
    assert claims["nonce"] == "n-1" and claims["amr"] == ["pwd"]
    assert claims["acr"] == "urn:standby:acr:pwd" and claims["preferred_username"] == "alice"
    assert claims["auth_time"] <= claims["iat"] and claims["sid"]
    info = ids.client.get(
        "/t/acme/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert info.status_code == 200 and info.json()["sub"] == claims["sub"]
    assert info.json()["preferred_username"] == "alice"

    # replaying the code fails and revokes what it issued
    replay = exchange(ids, client, params["code"], code_verifier=verifier)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")
    gone = ids.client.get(
        "/t/acme/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert (gone.status_code, gone.json()["error"]) == (401, "invalid_token")
    refresh = ids.client.post(
        "/t/acme/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers=basic(cid, client["client_secret"]),
    )
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_grant")


def test_refresh_rotation_and_reuse_revokes_the_family(ids: IdSite) -> None:
    client = web_client(ids, token_endpoint_auth_method="client_secret_post")
    cid, secret = client["client_id"], client["client_secret"]
    code = login_for_code(ids, cid)["code"]
    first = exchange(ids, {"client_id": cid}, code, client_secret=secret).json()

    def refresh(token: str, **extra: str) -> Any:
        return ids.client.post(
            "/t/acme/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": cid,
                "client_secret": secret,
                **extra,
            },
        )

    second = refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    rotated = second.json()
    assert rotated["refresh_token"] != first["refresh_token"]
    assert verify_id_token(ids, rotated["id_token"], cid)["sub"]
    narrowed = refresh(rotated["refresh_token"], scope="openid")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "openid"
    latest = narrowed.json()["refresh_token"]
    wider = refresh(latest, scope="openid email")
    assert (wider.status_code, wider.json()["error"]) == (400, "invalid_scope")
    # the first token again: reuse -> the whole family, including the latest, is revoked
    reuse = refresh(first["refresh_token"])
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    head = ids.head()
    after = refresh(latest)
    assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")
    assert ids.head() == head
    intro = ids.client.post(
        "/t/acme/introspect", data={"token": latest, "client_id": cid, "client_secret": secret}
    )
    assert intro.json() == {"active": False}


def test_public_client_needs_pkce(ids: IdSite) -> None:
    client = web_client(ids, token_endpoint_auth_method="none")
    cid = client["client_id"]
    head = ids.head()
    r = authorize(ids, cid)
    assert r.status_code == 303
    assert query_of(r.headers["location"])["error"] == "invalid_request"
    plain = authorize(ids, cid, code_challenge="a" * 43, code_challenge_method="plain")
    assert query_of(plain.headers["location"])["error"] == "invalid_request"
    assert ids.head() == head
    verifier, challenge = pkce()
    code = login_for_code(ids, cid, code_challenge=challenge, code_challenge_method="S256")["code"]
    ok = exchange(ids, client, code, code_verifier=verifier)
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("mistake", ["no verifier", "wrong verifier", "wrong redirect_uri"])
def test_a_failed_redemption_uses_the_code_up(ids: IdSite, mistake: str) -> None:
    client = web_client(ids, token_endpoint_auth_method="none")
    verifier, challenge = pkce()
    code = login_for_code(
        ids, client["client_id"], code_challenge=challenge, code_challenge_method="S256"
    )["code"]
    head = ids.head()
    unknown = exchange(ids, client, "not-a-code", code_verifier=verifier)
    assert (unknown.status_code, unknown.json()["error"]) == (400, "invalid_grant")
    assert ids.head() == head  # an unknown code changes nothing
    bad = {
        "no verifier": {},
        "wrong verifier": {"code_verifier": pkce()[0]},
        "wrong redirect_uri": {"code_verifier": verifier, "redirect_uri": REDIRECT + "x"},
    }[mistake]
    failed = exchange(ids, client, code, **bad)
    assert (failed.status_code, failed.json()["error"]) == (400, "invalid_grant")
    # the right verifier afterwards is too late: the failed try used the code up
    late = exchange(ids, client, code, code_verifier=verifier)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant"), late.text


def test_request_errors_shown_or_redirected(ids: IdSite) -> None:
    client = web_client(ids)
    cid = client["client_id"]
    machine = make_client(ids, grant_types=["client_credentials"], redirect_uris=[REDIRECT])
    head = ids.head()
    bad_uri = authorize(ids, cid, redirect_uri="https://evil.example/cb")
    assert bad_uri.status_code == 400 and "location" not in bad_uri.headers
    assert "redirect_uri" in bad_uri.text
    unknown = authorize(ids, "nobody")
    assert unknown.status_code == 400 and "location" not in unknown.headers
    no_tenant = ids.client.get("/t/ghost/authorize?client_id=" + cid)
    assert no_tenant.status_code == 404
    for params, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "-1"}, "invalid_request"),
        ({"prompt": "none"}, "login_required"),
    ):
        r = authorize(ids, cid, **params)
        assert r.status_code == 303, (params, r.text)
        q = query_of(r.headers["location"])
        assert (q["error"], q["state"], q["iss"]) == (error, "st-1", issuer(ids)), params
    r = authorize(ids, machine["client_id"])
    assert query_of(r.headers["location"])["error"] == "unauthorized_client"
    assert ids.head() == head


def test_csrf_is_required(ids: IdSite) -> None:
    cid = web_client(ids)["client_id"]
    page = authorize(ids, cid)
    form = parse_form(page.text)
    head = ids.head()
    forged = ids.client.post(
        form.action or "",
        data={**form.fields, "csrf": "0" * 64, "username": "alice", "password": PASSWORD},
    )
    assert forged.status_code == 403
    ids.client.cookies.clear()
    no_cookie = ids.client.post(
        form.action or "", data={**form.fields, "username": "alice", "password": PASSWORD}
    )
    assert no_cookie.status_code == 403
    assert ids.head() == head


def test_wrong_password_shows_the_form_again(ids: IdSite) -> None:
    cid = web_client(ids)["client_id"]
    page = authorize(ids, cid)
    again = submit(ids, page, username="alice", password="wrong password")
    assert again.status_code == 401 and "wrong username or password" in again.text
    done = submit(ids, again, username="alice", password=PASSWORD)
    assert done.status_code == 303 and "code" in query_of(done.headers["location"])


def test_session_reuse_prompt_and_max_age(ids: IdSite) -> None:
    cid = web_client(ids)["client_id"]
    login_for_code(ids, cid)
    silent = authorize(ids, cid, prompt="none")
    assert silent.status_code == 303 and "code" in query_of(silent.headers["location"])
    assert authorize(ids, cid, prompt="login").status_code == 200  # the login page again
    ids.clock.advance(120)
    assert authorize(ids, cid, max_age="600").status_code == 303
    assert authorize(ids, cid, max_age="60").status_code == 200
    r = authorize(ids, cid, max_age="60", prompt="none")
    assert query_of(r.headers["location"])["error"] == "login_required"


def test_totp_step_gives_mfa(ids: IdSite) -> None:
    login = ids.login()
    assert login.status_code == 200
    secret = ids.client.post("/t/acme/mfa/totp/enroll").json()["secret"]
    totp = pyotp.TOTP(secret)
    confirm = ids.client.post("/t/acme/mfa/totp/confirm", json={"code": totp.at(ids.clock.seconds)})
    assert confirm.status_code == 200, confirm.text
    ids.client.cookies.clear()
    ids.clock.advance(30)
    client = web_client(ids)
    page = authorize(ids, client["client_id"])
    step2 = submit(ids, page, username="alice", password=PASSWORD)
    assert step2.status_code == 200 and 'name="totp"' in step2.text
    assert PASSWORD not in step2.text
    bad = submit(ids, step2, totp="000000" if totp.at(ids.clock.seconds) != "000000" else "111111")
    assert bad.status_code == 401 and 'name="totp"' in bad.text
    done = submit(ids, bad, totp=totp.at(ids.clock.seconds))
    assert done.status_code == 303, done.text
    body = exchange(ids, client, query_of(done.headers["location"])["code"]).json()
    claims = verify_id_token(ids, body["id_token"], client["client_id"])
    assert "mfa" in claims["amr"] and "otp" in claims["amr"]
    assert claims["acr"] == "urn:standby:acr:mfa"


def test_logout_with_id_token_hint(ids: IdSite) -> None:
    client = web_client(ids)
    code = login_for_code(ids, client["client_id"])["code"]
    body = exchange(ids, client, code).json()
    r = ids.client.get(
        "/t/acme/end-session?"
        + urlencode(
            {
                "id_token_hint": body["id_token"],
                "post_logout_redirect_uri": LOGOUT_TO,
                "state": "bye-1",
            }
        )
    )
    assert r.status_code == 303 and r.headers["location"] == LOGOUT_TO + "?state=bye-1"
    assert ids.client.get("/t/acme/session").status_code == 401
    refresh = ids.client.post(
        "/t/acme/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers=basic(client["client_id"], client["client_secret"]),
    )
    assert (refresh.status_code, refresh.json()["error"]) == (400, "invalid_grant")
    silent = authorize(ids, client["client_id"], prompt="none")
    assert query_of(silent.headers["location"])["error"] == "login_required"


def test_logout_without_hint_asks_and_checks_redirects(ids: IdSite) -> None:
    client = web_client(ids)
    login_for_code(ids, client["client_id"])
    head = ids.head()
    unregistered = ids.client.get(
        "/t/acme/end-session?"
        + urlencode(
            {"client_id": client["client_id"], "post_logout_redirect_uri": "https://evil.example/"}
        )
    )
    assert unregistered.status_code == 400
    ask = ids.client.get("/t/acme/end-session")
    assert ask.status_code == 200 and "Sign out" in ask.text
    forged = ids.client.post("/t/acme/end-session", data={"csrf": "x"})
    assert forged.status_code == 200 and ids.head() == head  # asked again, nothing changed
    assert ids.client.get("/t/acme/session").status_code == 200
    done = submit(ids, ask)
    assert done.status_code == 200 and "signed out" in done.text
    assert ids.client.get("/t/acme/session").status_code == 401


def test_userinfo_errors(ids: IdSite) -> None:
    assert ids.client.get("/t/acme/userinfo").status_code == 401
    junk = ids.client.get("/t/acme/userinfo", headers={"Authorization": "Bearer junk"})
    assert (junk.status_code, junk.json()["error"]) == (401, "invalid_token")
    assert junk.headers["www-authenticate"].startswith("Bearer")
    machine = make_client(ids, grant_types=["client_credentials"], scopes=["api"], redirect_uris=[])
    token = ids.client.post(
        "/t/acme/token",
        data={"grant_type": "client_credentials"},
        headers=basic(machine["client_id"], machine["client_secret"]),
    )
    r = ids.client.get(
        "/t/acme/userinfo", headers={"Authorization": f"Bearer {token.json()['access_token']}"}
    )
    assert (r.status_code, r.json()["error"]) == (403, "insufficient_scope")


def test_expired_grants_are_purged(ids: IdSite) -> None:
    from sqlalchemy import func, select

    from standby.identity.oidc.cleanup import purge_expired
    from standby.store.schema import auth_codes, refresh_tokens, revocations

    client = web_client(ids)
    code = login_for_code(ids, client["client_id"])["code"]
    body = exchange(ids, client, code).json()
    auth = basic(client["client_id"], client["client_secret"])
    ids.client.post("/t/acme/revoke", data={"token": body["access_token"]}, headers=auth)

    def count(table: Any) -> int:
        with ids.store.read() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)

    assert (count(auth_codes), count(refresh_tokens), count(revocations)) == (1, 1, 1)
    assert purge_expired(ids.site) == 0  # nothing has expired yet
    ids.clock.advance(ids.site.settings.oidc.access_token_ttl + 121)
    assert purge_expired(ids.site) == 2  # the code and the revocation record
    assert count(refresh_tokens) == 1
    ids.clock.advance(ids.site.settings.oidc.refresh_token_ttl)
    assert purge_expired(ids.site) == 1
    replay = exchange(ids, client, code)
    assert (replay.status_code, replay.json()["error"]) == (400, "invalid_grant")


def test_malformed_input_never_gets_a_500(ids: IdSite) -> None:
    """A hundred-odd random malformed requests to every OIDC endpoint: always a 4xx (or
    a redirect / page), never a server error."""
    import random

    client = web_client(ids)
    auth = basic(client["client_id"], client["client_secret"])
    junk = [
        "",
        "x",
        "\x00",
        "é" * 3,
        "a" * 3000,
        "%ff",
        "[]",
        "eyJhbGciOiJub25lIn0.e30.",
        "a.b.c",
        "null",
        client["client_id"],
        REDIRECT,
    ]
    names = [
        "grant_type",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "scope",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "token",
        "token_type_hint",
        "response_type",
        "state",
        "code_challenge",
        "prompt",
        "max_age",
        "id_token_hint",
        "post_logout_redirect_uri",
        "csrf",
        "q",
        "pending",
        "username",
        "password",
        "totp",
        "decision",
        "user",
    ]
    headers = [
        auth,
        {},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic e30="},
        {"Authorization": "Bearer x.y.z"},
    ]
    paths = [
        "token",
        "revoke",
        "introspect",
        "userinfo",
        "authorize",
        "authorize/login",
        "authorize/consent",
        "end-session",
    ]
    rnd = random.Random(7)
    for _ in range(120):
        form = {n: rnd.choice(junk) for n in rnd.sample(names, rnd.randint(0, 6))}
        if rnd.random() < 0.5:
            form["grant_type"] = rnd.choice(
                ["authorization_code", "refresh_token", "client_credentials"]
            )
        path, hdr = rnd.choice(paths), rnd.choice(headers)
        if rnd.random() < 0.5:
            r = ids.client.get(f"/t/acme/{path}", params=form, headers=hdr)
        else:
            r = ids.client.post(f"/t/acme/{path}", data=form, headers=hdr)
        assert r.status_code < 500, (path, form, r.text[:300])
