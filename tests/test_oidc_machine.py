"""Discovery, JWKS, client_credentials with every client auth method, introspection and
revocation, on SQLite and PostgreSQL; bad input gets the spec's error and writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from standby.identity import keys
from tests.support.identity import IdSite, identity_site
from tests.support.oidc import (
    assertion,
    basic,
    issuer,
    machine_client,
    pyjwt_claims,
    rsa_client_key,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture
def ids(tmp_path: Path, store_url: str) -> Iterator[IdSite]:
    with identity_site(tmp_path, store_url) as s:
        s.tenant("acme")
        yield s


def cc(ids: IdSite, client: dict[str, Any], **form: str) -> Any:
    return ids.client.post(
        "/t/acme/token",
        data={"grant_type": "client_credentials", **form},
        headers=basic(client["client_id"], client["client_secret"]),
    )


def pyjwt_verify(ids: IdSite, token: str, audience: str) -> dict[str, Any]:
    return pyjwt_claims(ids, token, audience=audience, issuer=issuer(ids))


def test_discovery_names_every_endpoint_and_only_what_is_offered(ids: IdSite) -> None:
    meta = ids.client.get("/t/acme/.well-known/openid-configuration").json()
    base = issuer(ids)
    assert meta["issuer"] == base
    for name in ("authorization", "token", "userinfo", "revocation", "introspection"):
        assert meta[f"{name}_endpoint"].startswith(base + "/")
    assert meta["jwks_uri"] == base + "/jwks"
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert set(meta["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert meta["response_types_supported"] == ["code"]
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert meta["id_token_signing_alg_values_supported"] == ["RS256"]
    assert ids.client.get("/t/acme/.well-known/oauth-authorization-server").json() == meta


def test_jwks_is_cacheable_briefly_and_publishes_the_signing_key(ids: IdSite) -> None:
    keys.ensure_active_key(ids.site)
    r = ids.client.get("/t/acme/jwks")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "public, max-age=300"
    (jwk,) = r.json()["keys"]
    assert jwk["kid"] == keys.active_row(ids.site)["id"]  # type: ignore[index]
    assert "d" not in jwk and jwk["use"] == "sig"


def test_unknown_tenant_is_404_everywhere_and_writes_nothing(ids: IdSite) -> None:
    client = machine_client(ids)
    head = ids.head()
    for method, path in (
        ("get", "/t/nope/.well-known/openid-configuration"),
        ("get", "/t/nope/jwks"),
        ("post", "/t/nope/token"),
        ("post", "/t/nope/introspect"),
        ("post", "/t/nope/revoke"),
    ):
        kwargs: dict[str, Any] = {}
        if method == "post":
            kwargs = {
                "data": {"grant_type": "client_credentials", "token": "x"},
                "headers": basic(client["client_id"], client["client_secret"]),
            }
        r = getattr(ids.client, method)(path, **kwargs)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"] == "unknown_tenant"
    assert ids.head() == head


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials_with_a_secret(ids: IdSite, method: str) -> None:
    client = machine_client(ids, token_endpoint_auth_method=method)
    cid, secret = client["client_id"], client["client_secret"]
    keys.ensure_active_key(ids.site)
    head = ids.head()
    if method == "client_secret_basic":
        r = cc(ids, client, scope="api.read")
    else:
        r = ids.client.post(
            "/t/acme/token",
            data={
                "grant_type": "client_credentials",
                "client_id": cid,
                "client_secret": secret,
                "scope": "api.read",
            },
        )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "api.read"
    assert "refresh_token" not in body
    header = pyjwt.get_unverified_header(body["access_token"])
    assert header["typ"] == "at+jwt"
    claims = pyjwt_verify(ids, body["access_token"], audience=issuer(ids))
    assert claims["sub"] == cid and claims["client_id"] == cid and claims["jti"]
    assert claims["exp"] - claims["iat"] == ids.site.settings.oidc.access_token_ttl
    assert ids.head() == head  # issuing a client_credentials token writes nothing


def test_client_credentials_bad_input(ids: IdSite) -> None:
    client = machine_client(ids)
    cid = client["client_id"]
    keys.ensure_active_key(ids.site)
    head = ids.head()
    cases = [
        ({"grant_type": "client_credentials"}, basic(cid, "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, basic("nobody", "x"), 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
        (
            {"grant_type": "password"},
            basic(cid, client["client_secret"]),
            400,
            "unsupported_grant_type",
        ),
        ({}, basic(cid, client["client_secret"]), 400, "invalid_request"),
        (
            {"grant_type": "client_credentials", "scope": "admin"},
            basic(cid, client["client_secret"]),
            400,
            "invalid_scope",
        ),
        (
            {"grant_type": "authorization_code", "code": "x", "redirect_uri": "https://a/b"},
            basic(cid, client["client_secret"]),
            400,
            "unauthorized_client",
        ),
        (
            {"grant_type": "client_credentials", "client_secret": "x"},
            basic(cid, client["client_secret"]),
            400,
            "invalid_request",
        ),
    ]
    for form, headers, status, error in cases:
        r = ids.client.post("/t/acme/token", data=form, headers=headers)
        assert (r.status_code, r.json()["error"]) == (status, error), (form, r.text)
        assert r.json()["error_description"]
    r = ids.client.post(
        "/t/acme/token", json={"grant_type": "client_credentials"}, headers=basic(cid, "x")
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    wrong = ids.client.post(
        "/t/acme/token", data={"grant_type": "client_credentials"}, headers=basic(cid, "wrong")
    )
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert ids.head() == head


def test_private_key_jwt_with_replay_and_expiry_checks(ids: IdSite) -> None:
    key = rsa_client_key()
    client = machine_client(
        ids,
        token_endpoint_auth_method="private_key_jwt",
        jwks={"keys": [key.as_dict(private=False)]},
    )
    cid = client["client_id"]
    token_url = issuer(ids) + "/token"
    now = ids.clock.seconds

    def post(a: str) -> Any:
        return ids.client.post(
            "/t/acme/token",
            data={
                "grant_type": "client_credentials",
                "client_id": cid,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": a,
            },
        )

    good = assertion(key, cid, token_url, jti="once", now=now)
    r = post(good)
    assert r.status_code == 200, r.text
    head = ids.head()
    replay = post(good)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")
    assert "used before" in replay.json()["error_description"]
    expired = post(assertion(key, cid, token_url, exp_in=-5, now=now))
    assert (expired.status_code, expired.json()["error"]) == (401, "invalid_client")
    forged = post(assertion(rsa_client_key(), cid, token_url, now=now))
    assert (forged.status_code, forged.json()["error"]) == (401, "invalid_client")
    wrong_aud = post(assertion(key, cid, "https://elsewhere/token", now=now))
    assert (wrong_aud.status_code, wrong_aud.json()["error"]) == (401, "invalid_client")
    too_long = post(assertion(key, cid, token_url, exp_in=7200, now=now))
    assert (too_long.status_code, too_long.json()["error"]) == (401, "invalid_client")
    assert ids.head() == head  # refused assertions record nothing
    with_secret = ids.client.post(
        "/t/acme/token",
        data={"grant_type": "client_credentials", "client_id": cid, "client_secret": "x"},
    )
    assert (with_secret.status_code, with_secret.json()["error"]) == (401, "invalid_client")


def test_introspection_and_revocation_of_an_access_token(ids: IdSite) -> None:
    rs = machine_client(ids)  # a resource server introspecting
    app = machine_client(ids, resource_servers=[rs["client_id"]])
    token = cc(ids, app).json()["access_token"]
    auth = basic(rs["client_id"], rs["client_secret"])
    r = ids.client.post("/t/acme/introspect", data={"token": token}, headers=auth)
    assert r.status_code == 200
    info = r.json()
    assert info["active"] is True and info["client_id"] == app["client_id"]
    assert info["token_type"] == "Bearer" and info["scope"] == "api.read api.write"
    junk = ids.client.post("/t/acme/introspect", data={"token": "junk"}, headers=auth)
    assert junk.json() == {"active": False}
    unauth = ids.client.post("/t/acme/introspect", data={"token": token})
    assert (unauth.status_code, unauth.json()["error"]) == (401, "invalid_client")

    # another client cannot revoke it (200, nothing written) ...
    head = ids.head()
    assert ids.client.post("/t/acme/revoke", data={"token": token}, headers=auth).status_code == 200
    assert ids.head() == head
    assert ids.client.post("/t/acme/introspect", data={"token": token}, headers=auth).json()[
        "active"
    ]
    # ... its own client can
    own = basic(app["client_id"], app["client_secret"])
    assert ids.client.post("/t/acme/revoke", data={"token": token}, headers=own).status_code == 200
    assert ids.head() > head
    r = ids.client.post("/t/acme/introspect", data={"token": token}, headers=auth)
    assert r.json() == {"active": False}
    bad_hint = ids.client.post(
        "/t/acme/revoke", data={"token": token, "token_type_hint": "id_token"}, headers=own
    )
    assert (bad_hint.status_code, bad_hint.json()["error"]) == (400, "unsupported_token_type")


def test_expired_access_token_is_inactive(ids: IdSite) -> None:
    rs = machine_client(ids)
    app = machine_client(ids, resource_servers=[rs["client_id"]])
    token = cc(ids, app).json()["access_token"]
    auth = basic(rs["client_id"], rs["client_secret"])
    ids.clock.advance(ids.site.settings.oidc.access_token_ttl + 31)
    assert ids.client.post("/t/acme/introspect", data={"token": token}, headers=auth).json() == {
        "active": False
    }


def test_readiness_reports_the_token_selftest(ids: IdSite) -> None:
    from standby.identity.oidc import selftest

    assert selftest(ids.site) is not None  # no key yet
    keys.ensure_active_key(ids.site)
    assert selftest(ids.site) is None
    r = ids.client.get("/readyz")
    assert "tokens" not in r.json()["problems"], r.text


def test_token_metrics(ids: IdSite) -> None:
    client = machine_client(ids)
    assert cc(ids, client).status_code == 200
    ids.client.post(
        "/t/acme/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client["client_id"], "wrong"),
    )
    text = ids.client.get("/metrics").text
    assert 'standby_token_requests_total{grant="client_credentials",outcome="ok"} 1.0' in text
    assert (
        'standby_token_requests_total{grant="client_credentials",outcome="invalid_client"} 1.0'
        in text
    )
    assert "standby_signing_key_age_seconds 0.0" in text


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_private_key_jwt_with_ec_and_okp_client_keys(ids: IdSite, alg: str) -> None:
    key = ECKey.generate_key("P-256") if alg == "ES256" else OKPKey.generate_key("Ed25519")
    jwk = {**key.as_dict(private=False), "kid": "k1"}
    client = machine_client(ids, token_endpoint_auth_method="private_key_jwt", jwks={"keys": [jwk]})
    cid = client["client_id"]
    at = int(ids.clock.seconds)
    claims = {
        "iss": cid,
        "sub": cid,
        "aud": issuer(ids) + "/token",
        "iat": at,
        "exp": at + 60,
        "jti": f"j-{alg}",
    }
    signed = jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])
    r = ids.client.post(
        "/t/acme/token",
        data={
            "grant_type": "client_credentials",
            "client_id": cid,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )
    assert r.status_code == 200, r.text
    # the same assertion again at the revocation endpoint is a replay
    again = ids.client.post(
        "/t/acme/revoke",
        data={
            "token": r.json()["access_token"],
            "client_id": cid,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")
