"""Key-rotation drill: issue tokens, rotate twice, then let time pass (an injected clock,
no sleeping). Every token issued before the rotations verifies until it expires; JWKS
never drops a key that signed an unexpired token; once a key is removed, tokens it
signed no longer verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest

from standby.identity import keys
from standby.identity.oidc.tokens import LEEWAY, id_token
from standby.identity.users import find_user
from tests.support.identity import identity_site
from tests.support.oidc import basic, machine_client


def pyjwt_verifies(jwks: dict[str, Any], token: str, audience: str, now: float) -> bool:
    """PyJWT's verdict with the JWKS alone, at the drill's clock (PyJWT reads the wall
    clock, so expiry is checked here against the injected one)."""
    kid = pyjwt.get_unverified_header(token)["kid"]
    match = [k for k in jwks["keys"] if k["kid"] == kid]
    if not match:
        return False
    key = pyjwt.PyJWK(match[0])
    try:
        claims = pyjwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience=audience,
            options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except pyjwt.PyJWTError:
        return False
    return bool(now < claims["exp"])


def test_rotation_drill(tmp_path: Path, store_url: str) -> None:
    with identity_site(tmp_path, store_url) as ids:
        ids.tenant("acme")
        ids.user("alice")
        user = find_user(ids.site, "acme", "alice")
        assert user is not None
        rs = machine_client(ids)
        app = machine_client(ids, resource_servers=[rs["client_id"]])
        issuer = f"{ids.site.settings.base_url()}/t/acme"
        keys.ensure_active_key(ids.site)
        issued: list[dict[str, Any]] = []

        def issue(n: int = 2) -> None:
            for _ in range(n):
                r = ids.client.post(
                    "/t/acme/token",
                    data={"grant_type": "client_credentials"},
                    headers=basic(app["client_id"], app["client_secret"]),
                )
                assert r.status_code == 200, r.text
                at = r.json()["access_token"]
                issued.append(
                    {
                        "token": at,
                        "aud": issuer,
                        "access": True,
                        **pyjwt.decode(at, options={"verify_signature": False}),
                    }
                )
            it = id_token(
                ids.site,
                "acme",
                user=user,
                client_id=app["client_id"],
                scope="openid",
                auth_time=ids.clock.t,
                amr=["pwd"],
            )
            issued.append(
                {
                    "token": it,
                    "aud": app["client_id"],
                    "access": False,
                    **pyjwt.decode(it, options={"verify_signature": False}),
                }
            )

        def check() -> set[str]:
            now = ids.clock.seconds
            jwks = ids.client.get("/t/acme/jwks").json()
            published = {k["kid"] for k in jwks["keys"]}
            for t in issued:
                kid = pyjwt.get_unverified_header(t["token"])["kid"]
                verdict = pyjwt_verifies(jwks, t["token"], t["aud"], now)
                if now < t["exp"]:
                    assert kid in published, "JWKS dropped a key of an unexpired token"
                    assert verdict, "an unexpired token no longer verifies"
                else:
                    assert not verdict
                if t["access"]:
                    r = ids.client.post(
                        "/t/acme/introspect",
                        data={"token": t["token"]},
                        headers=basic(rs["client_id"], rs["client_secret"]),
                    )
                    active = r.json()["active"]
                    if now < t["exp"]:
                        assert active
                    elif now >= t["exp"] + LEEWAY:
                        assert not active
            return published

        kids = [keys.active_row(ids.site)["id"]]  # type: ignore[index]
        issue()
        check()
        for _ in range(2):
            ids.clock.advance(100)
            keys.rotate(ids.site)
            kids.append(keys.active_row(ids.site)["id"])  # type: ignore[index]
            issue()
            assert set(kids) <= check()
        assert len(set(kids)) == 3
        removed: set[str] = set()
        for _ in range(12):  # 24 minutes in two-minute steps
            ids.clock.advance(120)
            for line in keys.run_schedule(ids.site):
                if line.startswith("removed "):
                    removed.add(line.split()[1].rstrip(":"))
            published = check()
            assert not removed & published
        assert removed == set(kids[:2])  # both rotated-out keys are gone, the active one stays
        assert kids[2] in published
        gone = [t for t in issued if pyjwt.get_unverified_header(t["token"])["kid"] in removed]
        assert gone
        jwks = ids.client.get("/t/acme/jwks").json()
        for t in gone:  # even ignoring expiry, nothing verifies a removed key's tokens
            assert not pyjwt_verifies(jwks, t["token"], t["aud"], t["iat"])


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_rotation_across_algorithms_keeps_old_tokens(
    tmp_path: Path, store_url: str, alg: str
) -> None:
    with identity_site(tmp_path, store_url) as ids:
        ids.tenant("acme")
        app = machine_client(ids)
        keys.ensure_active_key(ids.site)  # RS256
        auth = basic(app["client_id"], app["client_secret"])
        form = {"grant_type": "client_credentials"}
        old = ids.client.post("/t/acme/token", data=form, headers=auth).json()["access_token"]
        ids.site.settings.oidc.signing_alg = alg  # type: ignore[assignment]
        keys.rotate(ids.site)
        new = ids.client.post("/t/acme/token", data=form, headers=auth).json()["access_token"]
        assert pyjwt.get_unverified_header(new)["alg"] == alg
        jwks = ids.client.get("/t/acme/jwks").json()
        issuer = f"{ids.site.settings.base_url()}/t/acme"
        for token in (old, new):
            assert pyjwt_verifies(jwks, token, issuer, ids.clock.seconds)
        meta = ids.client.get("/t/acme/.well-known/openid-configuration").json()
        assert meta["id_token_signing_alg_values_supported"] == [alg]
