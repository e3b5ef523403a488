"""The authorization endpoint: code flow with PKCE, state, nonce, prompt and max_age,
the hosted login (password, then a second factor when the user has TOTP) and the consent
page (clients that are not first-party, and ``prompt=consent``; see consent.py).

Errors that concern the client itself (unknown client, redirect URI not registered
exactly) are shown to the user and never redirected; every other error goes back to
the client's redirect URI with ``error``, ``state`` and ``iss`` (RFC 9207).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from standby.crypto import SealError, constant_time_equals, seal, unseal
from standby.errors import REFUSED_BEFORE_WRITE, REFUSED_HEADER, ApiError
from standby.identity import sessions
from standby.identity.authn import authenticate
from standby.identity.clients import get_client_row
from standby.identity.clock import US, now
from standby.identity.oidc import consent, families, pages
from standby.identity.oidc.grants import scopes_of
from standby.identity.oidc.issuer import issuer
from standby.identity.tenants import get_tenant
from standby.identity.users import get_user
from standby.store import NotWritable

if TYPE_CHECKING:
    from standby.server import Site

CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "login_hint",
    "response_mode",
)
PENDING_TTL = 300 * US  # how long the password step stays valid while the user finds a code


class Redirectable(Exception):
    """An error the client should get at its redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class ShowUser(Exception):
    """An error to show on a page (never redirect: the redirect URI is not trusted)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AuthRequest:
    tenant: str
    client: dict[str, Any]
    redirect_uri: str
    state: str | None
    scope: str
    nonce: str | None
    challenge: str | None
    prompt: list[str]
    max_age: int | None
    login_hint: str


def parse(site: Site, tenant: str, pairs: list[tuple[str, str]]) -> AuthRequest:
    """Validate an authorization request; raises ShowUser or Redirectable."""
    if get_tenant(site, tenant) is None:
        raise ShowUser(f"there is no tenant {tenant[:70]!r} here", 404)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params and name in PARAMS:
            raise ShowUser(f"parameter {name} is repeated")
        params[name] = value
    client_id = params.get("client_id")
    client = get_client_row(site, tenant, client_id) if client_id else None
    if client is None:
        raise ShowUser("the application that sent you here is not registered (unknown client_id)")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in json.loads(client["redirect_uris"] or "[]"):
        raise ShowUser("the application's redirect_uri is not registered exactly for it")
    req = AuthRequest(
        tenant=tenant,
        client=client,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scope="",
        nonce=params.get("nonce"),
        challenge=None,
        prompt=[],
        max_age=None,
        login_hint=params.get("login_hint", "")[:200],
    )
    return _check(req, params)


def _check(req: AuthRequest, p: dict[str, str]) -> AuthRequest:
    client = req.client
    if p.get("response_type") != "code":
        raise Redirectable("unsupported_response_type", "only response_type=code is offered")
    if p.get("response_mode", "query") != "query":
        raise Redirectable("invalid_request", "only response_mode=query is offered")
    if "authorization_code" not in json.loads(client["grant_types"]):
        raise Redirectable("unauthorized_client", "this client may not use the code flow")
    asked = scopes_of(p.get("scope"))
    allowed = set(json.loads(client["scopes"]))
    if not asked or not set(asked) <= allowed:
        raise Redirectable(
            "invalid_scope", f"scope must be a subset of: {' '.join(sorted(allowed))}"
        )
    challenge = p.get("code_challenge")
    if challenge is not None:
        if p.get("code_challenge_method") != "S256":
            raise Redirectable("invalid_request", "code_challenge_method must be S256")
        if not CHALLENGE.match(challenge):
            raise Redirectable("invalid_request", "code_challenge must be 43 base64url characters")
    elif client["token_endpoint_auth_method"] == "none":  # noqa: S105 - public client
        raise Redirectable("invalid_request", "public clients must use PKCE (code_challenge)")
    prompt = scopes_of(p.get("prompt"))
    if "none" in prompt and len(prompt) > 1:
        raise Redirectable("invalid_request", "prompt=none cannot be combined with other values")
    max_age: int | None = None
    if "max_age" in p:
        if not p["max_age"].isdigit() or len(p["max_age"]) > 9:
            raise Redirectable("invalid_request", "max_age must be a non-negative integer")
        max_age = int(p["max_age"])
    nonce = p.get("nonce")
    if nonce is not None and len(nonce) > 512:
        raise Redirectable("invalid_request", "nonce is too long")
    return AuthRequest(
        req.tenant,
        client,
        req.redirect_uri,
        req.state,
        " ".join(asked),
        nonce,
        challenge,
        prompt,
        max_age,
        req.login_hint,
    )


def _back(site: Site, req: AuthRequest, values: dict[str, str]) -> RedirectResponse:
    out = dict(values)
    if req.state is not None:
        out["state"] = req.state
    out["iss"] = issuer(site, req.tenant)
    sep = "&" if "?" in req.redirect_uri else "?"
    return RedirectResponse(req.redirect_uri + sep + urlencode(out), status_code=303)


def _error_back(site: Site, req: AuthRequest, error: str, description: str) -> RedirectResponse:
    return _back(site, req, {"error": error, "error_description": description})


def _unavailable(site: Site, req: AuthRequest, exc: NotWritable) -> Response:
    """This site could not write the sign-in (it is a standby, or a primary without its
    lease). Nothing changed, so the answer is a 503 page marked for the traffic layer and
    for write forwarding: the browser gets the primary's answer, or waits for the new one,
    instead of being sent back to the application with an error. Only a sign-in that
    committed here but could not be confirmed (strict sync) goes back as an error."""
    if exc.committed:
        return _error_back(
            site, req, "temporarily_unavailable", "sign-in needs the primary site; try again"
        )
    resp = pages.error_page("Signing in needs the primary site; try again in a moment.", 503)
    resp.headers["Retry-After"] = "1"
    resp.headers[REFUSED_HEADER] = REFUSED_BEFORE_WRITE
    return resp


def needs_login(req: AuthRequest, session: dict[str, Any] | None, at: int) -> bool:
    if session is None or "login" in req.prompt:
        return True
    return req.max_age is not None and at - int(session["auth_time"]) > req.max_age * US


def issue_code(site: Site, req: AuthRequest, session: dict[str, Any]) -> RedirectResponse:
    at = now(site)
    code = families.new_secret_token()
    amr = session["amr"] if isinstance(session["amr"], list) else json.loads(session["amr"])
    with site.store.write() as w:
        families.insert_code(
            w,
            code,
            {
                "tenant": req.tenant,
                "client_id": req.client["id"],
                "user_id": session["user_id"],
                "session_id": session["id"],
                "redirect_uri": req.redirect_uri,
                "scope": req.scope,
                "nonce": req.nonce,
                "code_challenge": req.challenge,
                "code_challenge_method": "S256" if req.challenge else None,
                "auth_time": session["auth_time"],
                "amr": json.dumps(amr),
                "created_at": at,
                "expires_at": at + site.settings.oidc.code_ttl * US,
                "used_at": None,
                "issued": "[]",
            },
        )
    return _back(site, req, {"code": code})


def _site(request: Request) -> Site:
    return request.app.state.site  # type: ignore[no-any-return]


def _continue(site: Site, request: Request, req: AuthRequest, query: str) -> Response:
    session = sessions.load_session(site, req.tenant, request.cookies.get(sessions.SESSION_COOKIE))
    if needs_login(req, session, now(site)):
        if "none" in req.prompt:
            return _error_back(site, req, "login_required", "the user is not signed in")
        cookie = pages.csrf_cookie(request)
        return pages.login_form(
            site,
            req.tenant,
            cookie,
            query,
            username=req.login_hint,
            redirect_uri=req.redirect_uri,
        )
    assert session is not None
    if consent.needed(site, req.tenant, session["user_id"], req.client, req.scope, req.prompt):
        if "none" in req.prompt:
            return _error_back(
                site, req, "consent_required", "the user has not allowed this application yet"
            )
        return _consent_form(site, request, req, query, session["user_id"])
    try:
        return issue_code(site, req, session)
    except NotWritable as exc:
        return _unavailable(site, req, exc)


def _consent_form(
    site: Site, request: Request, req: AuthRequest, query: str, user_id: str
) -> Response:
    user = get_user(site, req.tenant, user_id)
    if user is None:  # deleted since the session was read
        return pages.error_page("please sign in again")
    return consent.form(
        site,
        req.tenant,
        pages.csrf_cookie(request),
        query,
        client=req.client,
        scope=req.scope,
        user=user,
        redirect_uri=req.redirect_uri,
    )


def _request_or_page(site: Site, tenant: str, query: str) -> AuthRequest | Response:
    pairs = parse_qsl(query, keep_blank_values=True)
    try:
        return parse(site, tenant, pairs)
    except ShowUser as exc:
        return pages.error_page(str(exc), exc.status)


def _posted_request(
    site: Site, tenant: str, request: Request, form: dict[str, str]
) -> AuthRequest | Response:
    """A hosted form's POST: its CSRF token checked, then the authorization request it
    carries (``q``) validated again; or the error page to answer."""
    if not pages.csrf_ok(site, request, form.get("csrf")):
        return pages.error_page(
            "this form has expired or was not sent by this site; go back and reload", 403
        )
    try:
        return _request_or_page(site, tenant, form.get("q", ""))
    except Redirectable as exc:
        return pages.error_page(exc.description)


def login(site: Site, tenant: str, request: Request, form: dict[str, str]) -> Response:
    """The login form's POST: check CSRF, re-validate the request, authenticate, then
    start a session and send the code back (a fresh login satisfies prompt and max_age)."""
    req = _posted_request(site, tenant, request, form)
    if isinstance(req, Response):
        return req
    query = form.get("q", "")
    cookie = request.cookies[pages.CSRF_COOKIE]
    back = req.redirect_uri
    aad = f"mfa:{tenant}:{cookie}"
    pending = form.get("pending")
    if pending:
        try:
            state = json.loads(unseal(site.secrets.kek_bytes(), pending, aad))
        except (SealError, ValueError):
            return pages.login_form(
                site, tenant, cookie, query, error="please sign in again", redirect_uri=back
            )
        if now(site) > state["exp"]:
            return pages.login_form(
                site,
                tenant,
                cookie,
                query,
                error="that took too long; sign in again",
                redirect_uri=back,
            )
        username, password = state["u"], state["p"]
    else:
        username, password = form.get("username", ""), form.get("password", "")
    totp = form.get("totp") or None
    recovery = form.get("recovery_code") or None
    remote = request.client.host if request.client else None
    try:
        result = authenticate(
            site, tenant, username, password, totp, recovery, remote, start_session=True
        )
        token, row = result.session_token, result.session
        if token is None or row is None:  # pragma: no cover - start_session always sets them
            token, row = sessions.create_session(site, tenant, result.user["id"], result.amr)
        if consent.needed(site, tenant, row["user_id"], req.client, req.scope, req.prompt):
            response = _consent_form(site, request, req, query, row["user_id"])
        else:
            response = pages.after_form(issue_code(site, req, {**row, "amr": result.amr}))
    except NotWritable as exc:
        return pages.after_form(_unavailable(site, req, exc))
    except ApiError as exc:
        if exc.error == "mfa_required":
            sealed = seal(
                site.secrets.kek_bytes(),
                json.dumps({"u": username, "p": password, "exp": now(site) + PENDING_TTL}).encode(),
                aad,
            )
            return pages.login_form(site, tenant, cookie, query, pending=sealed, redirect_uri=back)
        return pages.login_form(
            site,
            tenant,
            cookie,
            query,
            error=exc.message,
            username=username,
            pending=pending or None,
            status=exc.status if exc.status < 500 else 400,
            redirect_uri=back,
        )
    sessions.set_session_cookie(response, site, tenant, token)
    return response


def consent_answer(site: Site, tenant: str, request: Request, form: dict[str, str]) -> Response:
    """The consent form's POST: the signed-in user allows (remembered, then a code) or
    denies (``access_denied``). The sign-in checks were made before the page was shown."""
    req = _posted_request(site, tenant, request, form)
    if isinstance(req, Response):
        return req
    query = form.get("q", "")
    session = sessions.load_session(site, tenant, request.cookies.get(sessions.SESSION_COOKIE))
    if session is None:
        return pages.login_form(
            site,
            tenant,
            pages.csrf_cookie(request),
            query,
            error="please sign in again",
            redirect_uri=req.redirect_uri,
        )
    if not constant_time_equals(form.get("user", ""), session["user_id"]):
        # someone else signed in on this browser since the page was shown: ask them
        return _consent_form(site, request, req, query, session["user_id"])
    try:
        if form.get("decision") != "allow":
            return pages.after_form(
                _error_back(site, req, "access_denied", "the user did not allow the application")
            )
        consent.record(site, tenant, session["user_id"], req.client["id"], req.scope)
        return pages.after_form(issue_code(site, req, session))
    except NotWritable as exc:
        return pages.after_form(_unavailable(site, req, exc))


async def _pairs(request: Request) -> list[tuple[str, str]]:
    if request.method == "POST":
        form = await request.form()
        return [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    return list(request.query_params.multi_items())


def router() -> APIRouter:
    r = APIRouter()

    @r.api_route("/t/{tenant}/authorize", methods=["GET", "POST"])
    async def authorize_route(tenant: str, request: Request) -> Response:
        site = _site(request)
        pairs = await _pairs(request)

        def work() -> Response:
            try:
                req = parse(site, tenant, pairs)
            except ShowUser as exc:
                return pages.error_page(str(exc), exc.status)
            except Redirectable as exc:
                partial = _partial(site, tenant, pairs)
                return _error_back(site, partial, exc.error, exc.description)
            return _continue(site, request, req, urlencode(pairs))

        return await run_in_threadpool(work)

    @r.post("/t/{tenant}/authorize/login")
    async def login_route(tenant: str, request: Request) -> Response:
        site = _site(request)
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}

        def work() -> Response:
            try:
                return login(site, tenant, request, fields)
            except Redirectable as exc:  # pragma: no cover - handled inside login
                return pages.error_page(exc.description)

        return await run_in_threadpool(work)

    @r.post("/t/{tenant}/authorize/consent")
    async def consent_route(tenant: str, request: Request) -> Response:
        site = _site(request)
        form = await request.form()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return await run_in_threadpool(consent_answer, site, tenant, request, fields)

    return r


def _partial(site: Site, tenant: str, pairs: list[tuple[str, str]]) -> AuthRequest:
    """Enough of a request to redirect an error back (client and redirect URI are valid)."""
    p = dict(pairs)
    client = get_client_row(site, tenant, p["client_id"]) or {}
    return AuthRequest(
        tenant, client, p["redirect_uri"], p.get("state"), "", None, None, [], None, ""
    )
