"""HTTP routes for discovery, JWKS, token, userinfo, revocation and introspection."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from standby.errors import ApiError
from standby.identity import keys
from standby.identity.clock import US, now
from standby.identity.oidc import errors, grants, revocation
from standby.identity.oidc.client_auth import authenticate_client
from standby.identity.oidc.issuer import discovery
from standby.identity.oidc.tokens import profile_claims, verify_access_token
from standby.identity.oidc.verify import InvalidToken
from standby.identity.tenants import require_tenant as require_tenant_row
from standby.identity.users import get_user
from standby.store import NotWritable

if TYPE_CHECKING:
    from standby.server import Site

# Verifiers refetch the JWK Set at least this often; a staged key is published for the
# pre-publish lead time (hours) before it signs, far longer than this.
JWKS_MAX_AGE = 300
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


METRICS_PART = "oidc.token_requests"


def register_metrics(site: Site) -> None:
    """Token requests by grant and outcome (no audit event per machine token: too many),
    and the age of the signing key, so an alert can say rotation stopped."""
    site.parts[METRICS_PART] = Counter(
        "standby_token_requests",
        "Token endpoint requests by grant type and outcome (ok or the OAuth error code)",
        ["grant", "outcome"],
        registry=site.metrics.registry,
    )

    def key_age() -> float | None:
        row = keys.active_row(site)
        if row is None or row["activated_at"] is None:
            return None
        return (now(site) - int(row["activated_at"])) / US

    site.metrics.gauge_callback(
        "standby_signing_key_age_seconds", "Time since the active signing key started", key_age
    )


def _count(site: Site, grant: str | None, outcome: str) -> None:
    counter = site.parts.get(METRICS_PART)
    if isinstance(counter, Counter):
        known = grant if grant in grants.GRANTS else "other"
        counter.labels(known, outcome).inc()


TENANT_TTL = 1.0  # seconds a tenant known to exist is not looked up again


def require_tenant(site: Site, tenant: str) -> None:
    """ApiError 404 ``unknown_tenant`` unless the tenant exists; hits are remembered
    briefly so a client asking for tokens in a loop costs no tenant read."""
    seen = site.parts.setdefault("oidc.tenants_seen", {})
    mono = time.monotonic()
    if mono - seen.get(tenant, -TENANT_TTL) < TENANT_TTL:
        return
    require_tenant_row(site, tenant)
    if len(seen) > 10_000:
        seen.clear()
    seen[tenant] = mono


def _site(request: Request) -> Site:
    return request.app.state.site  # type: ignore[no-any-return]


async def _form(request: Request) -> FormData:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise errors.invalid_request("send the parameters as application/x-www-form-urlencoded")
    try:
        return await request.form()
    except Exception as exc:  # noqa: BLE001 - a malformed body is the client's error
        raise errors.invalid_request("malformed form body") from exc


def _fields(form: FormData) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in set(form.keys()):
        values = form.getlist(name)
        if len(values) > 1:
            raise errors.invalid_request(f"parameter {name} is repeated")
        if isinstance(values[0], str):
            out[name] = values[0]
    return out


def _bearer(request: Request, form: dict[str, str] | None = None) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if form and form.get("access_token"):
        return form["access_token"]
    return None


def _no_token() -> JSONResponse:
    # RFC 6750 3.1: a request without credentials gets the bare challenge, no error code.
    return JSONResponse(
        {"message": "send an access token: Authorization: Bearer <token>"},
        status_code=401,
        headers={"WWW-Authenticate": "Bearer", **NO_STORE},
    )


def _signing_algs(site: Site) -> list[str]:
    algs = sorted({k["alg"] for k in keys.list_keys(site) if k["state"] in ("staged", "active")})
    return algs or [site.settings.oidc.signing_alg]


def router() -> APIRouter:
    r = APIRouter()

    @r.get("/t/{tenant}/.well-known/openid-configuration")
    def openid_configuration(tenant: str, request: Request) -> JSONResponse:
        site = _site(request)
        body = discovery(site, tenant, _signing_algs(site))
        return JSONResponse(body, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})

    @r.get("/t/{tenant}/.well-known/oauth-authorization-server")
    def oauth_metadata(tenant: str, request: Request) -> JSONResponse:
        return openid_configuration(tenant, request)

    @r.get("/t/{tenant}/jwks")
    def jwks(tenant: str, request: Request) -> JSONResponse:
        site = _site(request)
        require_tenant(site, tenant)
        return JSONResponse(
            keys.public_jwks(site),
            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
            media_type="application/jwk-set+json",
        )

    @r.post("/t/{tenant}/token")
    async def token(tenant: str, request: Request) -> JSONResponse:
        site = _site(request)
        form = await _form(request)
        fields = _fields(form)

        def work() -> dict[str, Any]:
            require_tenant(site, tenant)
            grant_type = fields.get("grant_type")
            if not grant_type:
                raise errors.invalid_request("grant_type is required")
            handler = grants.GRANTS.get(grant_type)
            if handler is None:
                raise errors.oauth_error(
                    "unsupported_grant_type", f"grant_type {grant_type[:60]!r} is not supported"
                )
            client = authenticate_client(site, tenant, form, request.headers)
            return handler(site, tenant, client, fields)

        grant = fields.get("grant_type")
        try:
            body = await run_in_threadpool(work)
        except NotWritable as exc:
            _count(site, grant, "temporarily_unavailable")
            raise errors.needs_primary(f"needs the primary site: {exc}", exc) from exc
        except ApiError as exc:
            _count(site, grant, exc.error)
            raise
        _count(site, grant, "ok")
        return JSONResponse(body, headers=NO_STORE)

    @r.api_route("/t/{tenant}/userinfo", methods=["GET", "POST"])
    async def userinfo(tenant: str, request: Request) -> JSONResponse:
        site = _site(request)
        has_body = request.method == "POST" and request.headers.get("content-type")
        form = _fields(await _form(request)) if has_body else None
        token = _bearer(request, form)
        if token is None:
            return _no_token()

        def work() -> dict[str, Any]:
            require_tenant(site, tenant)
            try:
                claims = verify_access_token(site, tenant, token)
            except InvalidToken as exc:
                raise errors.invalid_token(str(exc)) from None
            scope = str(claims.get("scope", ""))
            if "openid" not in scope.split():
                raise errors.oauth_error(
                    "insufficient_scope",
                    "the token lacks the openid scope",
                    403,
                    {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="openid"'},
                )
            user = get_user(site, tenant, str(claims.get("sub")))
            if user is None or user.get("disabled"):
                raise errors.invalid_token("the token's user no longer exists")
            return {"sub": user["id"], **profile_claims(user, scope)}

        return JSONResponse(await run_in_threadpool(work), headers=NO_STORE)

    @r.post("/t/{tenant}/revoke")
    async def revoke(tenant: str, request: Request) -> JSONResponse:
        site = _site(request)
        form = await _form(request)
        fields = _fields(form)

        def work() -> None:
            require_tenant(site, tenant)
            client = authenticate_client(site, tenant, form, request.headers)
            revocation.revoke(site, tenant, client, fields)

        try:
            await run_in_threadpool(work)
        except NotWritable as exc:
            raise errors.needs_primary(f"revocation needs the primary: {exc}", exc) from exc
        return JSONResponse({}, headers=NO_STORE)

    @r.post("/t/{tenant}/introspect")
    async def introspect(tenant: str, request: Request) -> JSONResponse:
        site = _site(request)
        form = await _form(request)
        fields = _fields(form)

        def work() -> dict[str, Any]:
            require_tenant(site, tenant)
            client = authenticate_client(site, tenant, form, request.headers, allow_public=False)
            return revocation.introspect(site, tenant, client, fields)

        try:
            body = await run_in_threadpool(work)
        except NotWritable as exc:
            raise errors.needs_primary(f"needs the primary site: {exc}", exc) from exc
        return JSONResponse(body, headers=NO_STORE)

    return r
