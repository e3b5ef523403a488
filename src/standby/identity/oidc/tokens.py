"""JWTs we issue: access tokens (RFC 9068, typ at+jwt) and ID tokens, signed with the
active key; and their verification against our own published keys plus revocations.

An access token issued to a user carries the session it was issued under (``sid``), so
revoking the session (logout, password change, disabling or deleting the user) revokes
it on every site without a record per token."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from joserfc import jws
from sqlalchemy import select, union_all

from standby.identity import keys
from standby.identity.clock import US, now
from standby.identity.oidc.issuer import ACR_MFA, ACR_PWD, issuer
from standby.identity.oidc.verify import InvalidToken, UnknownKey, Verifier
from standby.identity.tokens import token_hash
from standby.store.schema import revocations, sessions

if TYPE_CHECKING:
    from standby.server import Site

AT_TYP = "at+jwt"
LEEWAY = 30  # seconds of clock skew tolerated when verifying


@dataclass(frozen=True)
class Issued:
    token: str
    jti: str
    exp: int  # seconds


def sign(site: Site, claims: dict[str, Any], typ: str) -> str:
    key = keys.signing_key(site)
    header = {"alg": key.alg, "kid": key.kid, "typ": typ}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key.key, algorithms=[key.alg])


def amr_with_mfa(amr: list[str]) -> list[str]:
    """RFC 8176: a second factor (otp) also means "mfa"."""
    out = list(dict.fromkeys(amr))
    if len(set(out) & {"otp", "mfa", "hwk", "swk"}) and "mfa" not in out:
        out.append("mfa")
    return out


def acr_for(amr: list[str]) -> str:
    return ACR_MFA if "mfa" in amr_with_mfa(amr) else ACR_PWD


def access_token(
    site: Site,
    tenant: str,
    *,
    sub: str,
    client_id: str,
    scope: str,
    auth_time: int | None = None,
    amr: list[str] | None = None,
    at: int | None = None,
    sid: str | None = None,
) -> Issued:
    """An RFC 9068 access token. ``aud`` is the issuer: Standby's own userinfo and
    introspection are the resource servers it knows about."""
    iat = (now(site) if at is None else at) // US
    exp = iat + site.settings.oidc.access_token_ttl
    jti = secrets.token_urlsafe(16)
    claims: dict[str, Any] = {
        "iss": issuer(site, tenant),
        "sub": sub,
        "aud": issuer(site, tenant),
        "client_id": client_id,
        "iat": iat,
        "exp": exp,
        "jti": jti,
        "scope": scope,
    }
    if auth_time is not None:
        claims["auth_time"] = auth_time // US
    if amr:
        claims["amr"] = amr_with_mfa(amr)
        claims["acr"] = acr_for(amr)
    if sid:
        claims["sid"] = sid
    return Issued(sign(site, claims, AT_TYP), jti, exp)


def id_token(
    site: Site,
    tenant: str,
    *,
    user: dict[str, Any],
    client_id: str,
    scope: str,
    auth_time: int,
    amr: list[str],
    nonce: str | None = None,
    sid: str | None = None,
    at: int | None = None,
) -> str:
    iat = (now(site) if at is None else at) // US
    claims: dict[str, Any] = {
        "iss": issuer(site, tenant),
        "sub": user["id"],
        "aud": client_id,
        "azp": client_id,
        "iat": iat,
        "exp": iat + site.settings.oidc.id_token_ttl,
        "auth_time": auth_time // US,
        "amr": amr_with_mfa(amr),
        "acr": acr_for(amr),
    }
    if nonce:
        claims["nonce"] = nonce
    if sid:
        claims["sid"] = sid
    claims.update(profile_claims(user, scope))
    return sign(site, claims, "JWT")


def profile_claims(user: dict[str, Any], scope: str) -> dict[str, Any]:
    scopes = scope.split()
    out: dict[str, Any] = {}
    if "profile" in scopes:
        out["preferred_username"] = user["username"]
        if user.get("display_name"):
            out["name"] = user["display_name"]
    if "email" in scopes and user.get("email"):
        out["email"] = user["email"]
    return out


def issue_client_credentials(
    site: Site, tenant: str, client_id: str, scope: str = ""
) -> dict[str, Any]:
    """The token response for a client acting for itself; writes nothing (see README)."""
    issued = access_token(site, tenant, sub=client_id, client_id=client_id, scope=scope)
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": site.settings.oidc.access_token_ttl,
    }
    if scope:
        body["scope"] = scope
    return body


# ------------------------------------------------------------------ verification


def verifier(site: Site) -> Verifier:
    """A verifier over our published keys, rebuilt only when the JWK Set changes."""
    jwks = keys.public_jwks(site)
    cached = site.parts.get("oidc.verifier")
    if cached is None or cached[0] is not jwks:
        cached = (jwks, Verifier(jwks, leeway=LEEWAY, now=lambda: now(site) / US))
        site.parts["oidc.verifier"] = cached
    out: Verifier = cached[1]
    return out


# A token signed with a key id we do not know re-reads the keys at most this often.
UNKNOWN_KID_RELOAD_SECONDS = 0.1


def verify_ours(site: Site, token: str, **checks: Any) -> dict[str, Any]:
    """Claims of one of our JWTs (``checks`` as for Verifier.verify). A key id we do not
    know yet is looked for once more in the store: on a standby, the key that signed the
    token may have replicated after the keys were last read (they are re-read each 1 s)."""
    try:
        return verifier(site).verify(token, **checks)
    except UnknownKey:
        if not keys.keyring(site).reload_if_older(UNKNOWN_KID_RELOAD_SECONDS):
            raise
        return verifier(site).verify(token, **checks)


def revocation_id(jti: str) -> str:
    return token_hash(f"jti:{jti}")


def is_revoked(site: Site, tenant: str, jti: str, sid: str | None = None) -> bool:
    """True if the token's jti is revoked, or the session it was issued under (one read)."""
    parts = [
        select(revocations.c.id).where(
            revocations.c.id == revocation_id(jti), revocations.c.tenant == tenant
        )
    ]
    if sid is not None:
        parts.append(
            select(sessions.c.id).where(
                sessions.c.id == sid,
                sessions.c.tenant == tenant,
                sessions.c.revoked_at.is_not(None),
            )
        )
    with site.store.read() as conn:
        row = conn.execute(union_all(*parts)).first()
    return row is not None


def verify_access_token(site: Site, tenant: str, token: str) -> dict[str, Any]:
    """Claims of a valid, unrevoked access token of this tenant; InvalidToken otherwise.
    Reads only, so it works on a standby."""
    claims = verify_ours(
        site, token, issuer=issuer(site, tenant), audience=issuer(site, tenant), typ=AT_TYP
    )
    jti, sid = claims.get("jti"), claims.get("sid")
    if not isinstance(jti, str) or is_revoked(site, tenant, jti, str(sid) if sid else None):
        raise InvalidToken("revoked")
    return claims
