"""The token endpoint's grants: authorization_code (single use, PKCE), refresh_token
(rotation with reuse detection) and client_credentials.

Each grant that changes state does it in one store transaction. When a replay is
detected the revocation is committed first and the error raised after, so the
revocation survives the error response.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from standby.crypto import constant_time_equals
from standby.errors import ApiError
from standby.identity import keys
from standby.identity.clock import US, now
from standby.identity.oidc import errors, families
from standby.identity.oidc.client_auth import AuthenticatedClient, require_grant
from standby.identity.oidc.tokens import access_token, id_token, issue_client_credentials
from standby.identity.tokens import token_hash
from standby.identity.users import get_user
from standby.store import Writer
from standby.store.schema import auth_codes, refresh_tokens

if TYPE_CHECKING:
    from standby.server import Site

VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def scopes_of(text: str | None) -> list[str]:
    return [s for s in (text or "").split(" ") if s]


def _token_response(
    site: Site,
    tenant: str,
    client: AuthenticatedClient,
    *,
    user: dict[str, Any],
    scope: str,
    auth_time: int,
    amr: list[str],
    at: int,
    nonce: str | None,
    sid: str | None,
) -> tuple[dict[str, Any], str, int]:
    """The token response (no refresh token yet); also the access token's jti and exp."""
    issued = access_token(
        site,
        tenant,
        sub=user["id"],
        client_id=client.id,
        scope=scope,
        auth_time=auth_time,
        amr=amr,
        at=at,
        sid=sid,
    )
    body: dict[str, Any] = {
        "access_token": issued.token,
        "token_type": "Bearer",
        "expires_in": site.settings.oidc.access_token_ttl,
        "scope": scope,
    }
    if "openid" in scopes_of(scope):
        body["id_token"] = id_token(
            site,
            tenant,
            user=user,
            client_id=client.id,
            scope=scope,
            auth_time=auth_time,
            amr=amr,
            nonce=nonce,
            sid=sid,
            at=at,
        )
    return body, issued.jti, issued.exp


def offers_refresh(client: AuthenticatedClient, scope: str) -> bool:
    """A refresh token only for a client allowed the grant, and only when the user
    granted offline_access or the client is first-party (see README)."""
    if "refresh_token" not in client.list("grant_types"):
        return False
    return "offline_access" in scopes_of(scope) or bool(client.row.get("first_party"))


def _live_user(site: Site, tenant: str, user_id: str) -> dict[str, Any]:
    user = get_user(site, tenant, user_id)
    if user is None or user.get("disabled"):
        raise errors.invalid_grant("the user of this grant no longer exists or is disabled")
    return user


def authorization_code(
    site: Site, tenant: str, client: AuthenticatedClient, form: dict[str, str]
) -> dict[str, Any]:
    require_grant(client, "authorization_code")
    code, redirect_uri = form.get("code"), form.get("redirect_uri")
    if not code:
        raise errors.invalid_request("code is required")
    if not redirect_uri:
        raise errors.invalid_request("redirect_uri is required")
    verifier = form.get("code_verifier")
    if verifier is not None and not VERIFIER.match(verifier):
        raise errors.invalid_request("code_verifier must be 43-128 unreserved characters")
    keys.signing_key(site)  # make sure a key exists before the transaction opens
    at = now(site)
    failure: ApiError | None = None
    body: dict[str, Any] = {}
    with site.store.write() as w:
        row = families.locked_row(w, auth_codes, token_hash(code), tenant)
        if row is None or row["client_id"] != client.id:
            raise errors.invalid_grant("unknown authorization code")
        if row["used_at"] is not None:
            families.revoke_issued(w, tenant, json.loads(row["issued"]), at)
            failure = errors.invalid_grant(
                "authorization code was already used; the tokens it issued are revoked"
            )
        else:
            try:
                _check_code(row, redirect_uri, verifier, at)
                user = _live_user(site, tenant, row["user_id"])
            except ApiError as exc:
                # A failed redemption uses the code up (a guessed PKCE verifier gets one
                # try); committed before the error is answered.
                w.update(auth_codes, row["id"], {"used_at": at})
                failure = exc
            else:
                body = _redeem(site, w, tenant, client, row, user, at)
    if failure:
        raise failure
    return body


def _redeem(
    site: Site,
    w: Writer,
    tenant: str,
    client: AuthenticatedClient,
    row: dict[str, Any],
    user: dict[str, Any],
    at: int,
) -> dict[str, Any]:
    """Issue the tokens of a valid code and record them on it (for reuse detection)."""
    amr = json.loads(row["amr"])
    body, jti, exp = _token_response(
        site,
        tenant,
        client,
        user=user,
        scope=row["scope"],
        auth_time=row["auth_time"],
        amr=amr,
        at=at,
        nonce=row["nonce"],
        sid=row["session_id"],
    )
    issued = [f"at:{jti}:{exp * US}"]
    if offers_refresh(client, row["scope"]):
        body["refresh_token"], family = _next_refresh(
            w,
            tenant,
            client,
            user,
            row,
            amr,
            at,
            family=None,
            expires_at=at + site.settings.oidc.refresh_token_ttl * US,
            access=(jti, exp),
        )
        issued.append(f"rt:{family}")
    w.update(auth_codes, row["id"], {"used_at": at, "issued": json.dumps(issued)})
    return body


def _next_refresh(
    w: Writer,
    tenant: str,
    client: AuthenticatedClient,
    user: dict[str, Any],
    row: dict[str, Any],
    amr: list[str],
    at: int,
    *,
    family: str | None,
    expires_at: int,
    access: tuple[str, int],
) -> tuple[str, str]:
    """A refresh token carrying the session, scope and auth time of ``row`` (the code it
    is issued for, or the refresh token it replaces), linked to the access token
    ``access`` (jti, exp in seconds) issued with it; a new family when ``family`` is None."""
    jti, exp = access
    return families.insert_refresh(
        w,
        tenant,
        family=family,
        client_id=client.id,
        user_id=user["id"],
        session_id=row["session_id"],
        scope=row["scope"],
        auth_time=row["auth_time"],
        amr=amr,
        at=at,
        expires_at=expires_at,
        access_jti=jti,
        access_expires_at=exp * US,
    )


def _check_code(row: dict[str, Any], redirect_uri: str, verifier: str | None, at: int) -> None:
    if at >= row["expires_at"]:
        raise errors.invalid_grant("authorization code has expired")
    if not constant_time_equals(row["redirect_uri"], redirect_uri):
        raise errors.invalid_grant("redirect_uri does not match the authorization request")
    challenge = row["code_challenge"]
    if challenge:
        if not verifier:
            raise errors.invalid_grant("code_verifier is required (PKCE)")
        if not constant_time_equals(create_s256_code_challenge(verifier), challenge):
            raise errors.invalid_grant("code_verifier does not match the code_challenge")
    elif verifier:
        raise errors.invalid_grant("code_verifier sent but the request had no code_challenge")


def refresh_token(
    site: Site, tenant: str, client: AuthenticatedClient, form: dict[str, str]
) -> dict[str, Any]:
    require_grant(client, "refresh_token")
    token = form.get("refresh_token")
    if not token:
        raise errors.invalid_request("refresh_token is required")
    keys.signing_key(site)
    at = now(site)
    failure: ApiError | None = None
    body: dict[str, Any] = {}
    with site.store.write() as w:
        row = families.locked_row(w, refresh_tokens, token_hash(token), tenant)
        if row is None or row["client_id"] != client.id:
            raise errors.invalid_grant("unknown refresh token")
        if row["revoked_at"] is not None:
            raise errors.invalid_grant("refresh token has been revoked")
        if at >= row["expires_at"]:
            raise errors.invalid_grant("refresh token has expired")
        if row["used_at"] is not None:
            # Reuse of a rotated token: someone holds a copy. Revoke the whole family.
            families.revoke_family(w, tenant, row["family"], at, "refresh_reuse")
            failure = errors.invalid_grant(
                "refresh token was already used; every token of its family is revoked"
            )
        else:
            granted = scopes_of(row["scope"])
            asked = scopes_of(form.get("scope")) or granted
            if not set(asked) <= set(granted):
                raise errors.invalid_scope("scope exceeds what was granted")
            scope = " ".join(s for s in granted if s in asked)
            user = _live_user(site, tenant, row["user_id"])
            amr = json.loads(row["amr"])
            w.update(refresh_tokens, row["id"], {"used_at": at})
            body, jti, exp = _token_response(
                site,
                tenant,
                client,
                user=user,
                scope=scope,
                auth_time=row["auth_time"],
                amr=amr,
                at=at,
                nonce=None,
                sid=row["session_id"],
            )
            body["refresh_token"], _ = _next_refresh(
                w,
                tenant,
                client,
                user,
                row,
                amr,
                at,
                family=row["family"],
                expires_at=row["expires_at"],
                access=(jti, exp),
            )
    if failure:
        raise failure
    return body


def client_credentials(
    site: Site, tenant: str, client: AuthenticatedClient, form: dict[str, str]
) -> dict[str, Any]:
    require_grant(client, "client_credentials")
    if client.method == "none":
        raise errors.unauthorized_client("a public client cannot use client_credentials")
    allowed = [s for s in client.list("scopes") if s not in ("openid", "offline_access")]
    asked = scopes_of(form.get("scope"))
    if not set(asked) <= set(allowed):
        raise errors.invalid_scope(f"this client may ask for: {' '.join(allowed) or 'no scope'}")
    scope = " ".join(s for s in allowed if s in asked) if asked else " ".join(allowed)
    return issue_client_credentials(site, tenant, client.id, scope)


GRANTS = {
    "authorization_code": authorization_code,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
}
