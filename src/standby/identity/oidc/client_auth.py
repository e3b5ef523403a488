"""Client authentication at the token, revocation and introspection endpoints:
client_secret_basic, client_secret_post, private_key_jwt (RFC 7523) and none (public).

A client must use the method it registered. Secrets are argon2-hashed, which is slow on
purpose; a verified (client, secret) pair is remembered in memory, keyed by the stored
hash, so a machine client asking for tokens in a loop pays argon2 once.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.datastructures import FormData, Headers

from standby.identity.clients import get_client_row
from standby.identity.clock import US, now
from standby.identity.oidc import errors
from standby.identity.oidc.issuer import ASSERTION_ALGS, endpoints, issuer
from standby.identity.passwords import passwords_for
from standby.identity.tokens import token_hash
from standby.store import Conflict
from standby.store.schema import revocations

if TYPE_CHECKING:
    from standby.server import Site

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LIFETIME = 3660  # seconds (common client default 1 h + skew); bounds jti memory
SECRET_CACHE_SIZE = 1024
# Client rows are cached this long (seconds): a machine client asking for tokens in a
# loop costs no store read; a changed or deleted client takes effect within this time.
CLIENT_TTL = 1.0


@dataclass(frozen=True)
class AuthenticatedClient:
    row: dict[str, Any]
    method: str

    @property
    def id(self) -> str:
        return str(self.row["id"])

    def list(self, column: str) -> list[str]:
        return list(json.loads(self.row[column] or "[]"))


class _SecretCache:
    def __init__(self) -> None:
        self._ok: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, site: Site, row: dict[str, Any], secret: str) -> bool:
        key = (row["id"], row["secret_hash"] or "", token_hash(secret))
        with self._lock:
            if key in self._ok:
                self._ok.move_to_end(key)
                return True
        if not passwords_for(site).verify(row["secret_hash"], secret):
            return False
        with self._lock:
            self._ok[key] = None
            while len(self._ok) > SECRET_CACHE_SIZE:
                self._ok.popitem(last=False)
        return True


class _ClientCache:
    def __init__(self) -> None:
        self._rows: OrderedDict[tuple[str, str], tuple[float, dict[str, Any] | None]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, site: Site, tenant: str, client_id: str) -> dict[str, Any] | None:
        key, mono = (tenant, client_id), time.monotonic()
        with self._lock:
            hit = self._rows.get(key)
        if hit is not None and mono - hit[0] < CLIENT_TTL:
            return hit[1]
        row = get_client_row(site, tenant, client_id)
        with self._lock:
            self._rows[key] = (mono, row)
            self._rows.move_to_end(key)
            while len(self._rows) > SECRET_CACHE_SIZE:
                self._rows.popitem(last=False)
        return row


def _client_row(site: Site, tenant: str, client_id: str) -> dict[str, Any] | None:
    cache = site.parts.get("oidc.client_cache")
    if not isinstance(cache, _ClientCache):
        cache = site.parts["oidc.client_cache"] = _ClientCache()
    return cache.get(site, tenant, client_id)


def _secret_cache(site: Site) -> _SecretCache:
    cache = site.parts.get("oidc.secret_cache")
    if not isinstance(cache, _SecretCache):
        cache = site.parts["oidc.secret_cache"] = _SecretCache()
    return cache


def _basic(headers: Headers) -> tuple[str, str] | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise errors.invalid_client("malformed Basic credentials") from None
    cid, sep, secret = raw.partition(":")
    if not sep:
        raise errors.invalid_client("malformed Basic credentials")
    # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
    return unquote(cid.replace("+", " ")), unquote(secret.replace("+", " "))


def authenticate_client(
    site: Site, tenant: str, form: FormData, headers: Headers, *, allow_public: bool = True
) -> AuthenticatedClient:
    """The client making this request, authenticated, or ApiError ``invalid_client``."""
    basic = _basic(headers)
    secret_post = form.get("client_secret")
    assertion = form.get("client_assertion")
    used = [m for m, v in (("basic", basic), ("post", secret_post), ("jwt", assertion)) if v]
    if len(used) > 1:
        raise errors.invalid_request("use exactly one client authentication method")
    raw_id = form.get("client_id")
    form_id = raw_id if isinstance(raw_id, str) else None
    client_id: str | None
    if basic:
        method, client_id = "client_secret_basic", basic[0]
        if form_id is not None and form_id != client_id:
            raise errors.invalid_request("client_id does not match the Basic credentials")
    elif secret_post:
        method, client_id = "client_secret_post", form_id
    elif assertion:
        method = "private_key_jwt"
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise errors.invalid_request(f"client_assertion_type must be {ASSERTION_TYPE}")
        client_id = form_id or _unverified_sub(str(assertion))
    else:
        method, client_id = "none", form_id
    if not client_id:
        raise errors.invalid_client("client authentication is required", basic=False)
    row = _client_row(site, tenant, client_id)
    if row is None:
        raise errors.invalid_client("unknown client or wrong credentials", basic=bool(basic))
    if row["token_endpoint_auth_method"] != method:
        raise errors.invalid_client(
            f"this client authenticates with {row['token_endpoint_auth_method']}, not {method}",
            basic=bool(basic),
        )
    if method in ("client_secret_basic", "client_secret_post"):
        secret = basic[1] if basic else str(secret_post)
        if not _secret_cache(site).check(site, row, secret):
            raise errors.invalid_client("unknown client or wrong credentials", basic=bool(basic))
    elif method == "private_key_jwt":
        _check_assertion(site, tenant, row, str(assertion))
    elif not allow_public:
        raise errors.invalid_client("a public client cannot use this endpoint", basic=False)
    return AuthenticatedClient(row, method)


def _unverified_sub(assertion: str) -> str | None:
    try:
        payload = assertion.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise errors.invalid_client("malformed client assertion", basic=False) from None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def _check_assertion(site: Site, tenant: str, row: dict[str, Any], assertion: str) -> None:
    """RFC 7523 3: signed by the client's key, iss = sub = client_id, aud names us, not
    expired, bounded lifetime, and a jti never seen before (recorded in the store)."""
    bad = errors.invalid_client
    try:
        keyset = KeySet.import_key_set(json.loads(row["jwks"] or '{"keys": []}'))
        token = jwt.decode(assertion, keyset, algorithms=ASSERTION_ALGS)
    except (JoseError, ValueError, TypeError):
        raise bad("client assertion signature does not verify", basic=False) from None
    claims = token.claims
    at = now(site) // US
    audiences = {issuer(site, tenant), endpoints(site, tenant)["token_endpoint"]}
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    exp, jti = claims.get("exp"), claims.get("jti")
    if claims.get("iss") != row["id"] or claims.get("sub") != row["id"]:
        raise bad("client assertion iss and sub must be the client_id", basic=False)
    if not audiences & {a for a in auds if isinstance(a, str)}:
        raise bad("client assertion aud must name this token endpoint", basic=False)
    if not isinstance(exp, int) or exp <= at:
        raise bad("client assertion has expired (or has no exp)", basic=False)
    if exp > at + MAX_ASSERTION_LIFETIME:
        raise bad(f"client assertion lives longer than {MAX_ASSERTION_LIFETIME} s", basic=False)
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > at + 30:
        raise bad("client assertion is not valid yet", basic=False)
    if not isinstance(jti, str) or not jti:
        raise bad("client assertion needs a jti", basic=False)
    _record_jti(site, tenant, row["id"], jti, exp)


def _record_jti(site: Site, tenant: str, client_id: str, jti: str, exp: int) -> None:
    rid = token_hash(f"assertion:{client_id}:{jti}")
    try:
        with site.store.write() as w:
            if w.get(revocations, rid) is not None:
                raise errors.invalid_client("client assertion jti was used before", basic=False)
            w.insert(
                revocations,
                {
                    "id": rid,
                    "tenant": tenant,
                    "revoked_at": now(site),
                    "expires_at": exp * US,
                    "reason": "client_assertion",
                },
            )
    except Conflict:
        raise errors.invalid_client("client assertion jti was used before", basic=False) from None


def require_grant(client: AuthenticatedClient, grant: str) -> None:
    if grant not in client.list("grant_types"):
        raise errors.unauthorized_client(f"this client may not use the {grant} grant")
