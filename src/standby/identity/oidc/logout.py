"""RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) at ``/t/{tenant}/end-session``.

With a valid ``id_token_hint`` for the signed-in user the session ends at once; without
one the user confirms on a page (CSRF-protected POST), so a third-party page cannot sign
people out. Ending the session also revokes the tokens issued under it.
``post_logout_redirect_uri`` must be registered exactly for the client.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from standby.identity import sessions
from standby.identity.clients import get_client_row
from standby.identity.oidc import pages
from standby.identity.oidc.issuer import issuer
from standby.identity.oidc.tokens import verify_ours
from standby.identity.oidc.verify import InvalidToken
from standby.identity.tenants import get_tenant
from standby.store import NotWritable

if TYPE_CHECKING:
    from standby.server import Site


class _Refuse(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _hint(site: Site, tenant: str, token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        # An expired ID token is still a fine hint of who is signing out.
        return verify_ours(site, token, issuer=issuer(site, tenant), check_exp=False)
    except InvalidToken as exc:
        raise _Refuse(f"id_token_hint is not valid: {exc}") from None


def _target(site: Site, tenant: str, p: dict[str, str], hint: dict[str, Any] | None) -> str | None:
    uri = p.get("post_logout_redirect_uri")
    if not uri:
        return None
    client_id = p.get("client_id") or (hint or {}).get("aud")
    if isinstance(client_id, list):
        client_id = client_id[0] if len(client_id) == 1 else None
    if p.get("client_id") and hint and hint.get("aud") not in (p["client_id"], [p["client_id"]]):
        raise _Refuse("client_id does not match the id_token_hint")
    client = get_client_row(site, tenant, client_id) if isinstance(client_id, str) else None
    if client is None:
        raise _Refuse("post_logout_redirect_uri needs client_id or id_token_hint")
    if uri not in json.loads(client["post_logout_redirect_uris"] or "[]"):
        raise _Refuse("post_logout_redirect_uri is not registered for this client")
    state = p.get("state")
    if state is None:
        return uri
    return uri + ("&" if "?" in uri else "?") + urlencode({"state": state})


def end_session(site: Site, tenant: str, session: dict[str, Any]) -> None:
    """Revoke the session (and with it every token issued under it: sessions.revoke_in)."""
    sessions.revoke_session(site, tenant, session["id"], f"user:{session['user_id']}")


def _done(tenant: str, target: str | None, posted: bool) -> Response:
    resp: Response
    if target:
        resp = RedirectResponse(target, status_code=303)
        if posted:  # the confirmation form's redirect chain ends at the client
            resp = pages.after_form(resp)
    else:
        resp = pages.page("Signed out", "<p>You are signed out.</p>")
    sessions.clear_session_cookie(resp, tenant)
    return resp


def handle(
    site: Site, tenant: str, request: Request, p: dict[str, str], confirmed: bool
) -> Response:
    if get_tenant(site, tenant) is None:
        return pages.error_page(f"there is no tenant {tenant[:70]!r} here", 404)
    try:
        hint = _hint(site, tenant, p.get("id_token_hint"))
        target = _target(site, tenant, p, hint)
    except _Refuse as exc:
        return pages.error_page(str(exc), exc.status)
    session = sessions.load_session(site, tenant, request.cookies.get(sessions.SESSION_COOKIE))
    posted = request.method == "POST"
    if session is None:
        return _done(tenant, target, posted)
    hinted = hint is not None and hint.get("sub") == session["user_id"]
    if not hinted and not confirmed:
        cookie = pages.csrf_cookie(request)
        fields = "".join(pages.hidden(k, v) for k, v in p.items() if k != "csrf")
        body = (
            f'<form method="post" action="/t/{tenant}/end-session">'
            f"{pages.hidden('csrf', pages.csrf_field(site, cookie))}{fields}"
            '<p>Sign out of this site?</p><button type="submit">Sign out</button></form>'
        )
        resp = pages.page("Sign out", body, form_targets=[target] if target else [])
        pages.set_csrf(site, resp, tenant, cookie)
        return resp
    try:
        end_session(site, tenant, session)
    except NotWritable:
        return pages.error_page("signing out needs the primary site; try again shortly", 503)
    return _done(tenant, target, posted)


def router() -> APIRouter:
    r = APIRouter()

    @r.api_route("/t/{tenant}/end-session", methods=["GET", "POST"])
    async def end_session_route(tenant: str, request: Request) -> Response:
        site: Site = request.app.state.site
        if request.method == "POST":
            form = await request.form()
            p = {k: v for k, v in form.items() if isinstance(v, str)}
            confirmed = pages.csrf_ok(site, request, p.get("csrf"))
        else:
            p, confirmed = dict(request.query_params), False
        return await run_in_threadpool(handle, site, tenant, request, p, confirmed)

    return r
