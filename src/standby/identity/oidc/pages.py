"""The hosted HTML pages (login, second factor, sign-out, errors) and their CSRF tokens.

CSRF: a random cookie (``standby_csrf``, SameSite=Lax, HttpOnly) and a form field that is
an HMAC of it under a key derived from the KEK, so a forged form cannot carry a valid
token even if an attacker can plant cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from functools import cache
from html import escape
from importlib.resources import files
from string import Template
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from standby.crypto import constant_time_equals
from standby.identity.oidc import csp

if TYPE_CHECKING:
    from standby.server import Site

CSRF_COOKIE = "standby_csrf"
PAGE_HEADERS = {"Cache-Control": "no-store", "X-Frame-Options": "DENY"}


@cache
def _template() -> Template:
    text = files("standby.identity.oidc").joinpath("templates/page.html").read_text()
    return Template(text)


def page(
    title: str, body: str, status: int = 200, *, form_targets: Iterable[str] = ()
) -> HTMLResponse:
    """A hosted page; ``form_targets`` are the URIs its forms may end at after redirects
    (the client's redirect URI), whose origins its ``form-action`` allows."""
    html = _template().substitute(title=escape(title), body=body)
    headers = {**PAGE_HEADERS, "Content-Security-Policy": csp.policy(form_targets)}
    return HTMLResponse(html, status_code=status, headers=headers)


def after_form(redirect: Response) -> Response:
    """What a form POST answers when it sends the browser on to a client: the redirect
    itself when the form's page could allow the target's origin in ``form-action``;
    otherwise (CSP cannot name an IPv6 literal, so Chromium would block the redirect) a
    page of this site that forwards with a ``Refresh`` header and a link."""
    target = redirect.headers.get("location", "")
    if redirect.status_code not in (302, 303) or csp.origin_source(target) is not None:
        return redirect
    resp = page("Continue", f'<p><a href="{escape(target)}">Continue to the application</a></p>')
    resp.headers["Refresh"] = f"0; url={target}"
    return resp


def error_page(message: str, status: int = 400) -> HTMLResponse:
    return page("Sign-in problem", f'<p class="error">{escape(message)}</p>', status)


def _csrf_key(site: Site) -> bytes:
    return hmac.new(site.secrets.kek_bytes(), b"standby-csrf-v1", hashlib.sha256).digest()


def csrf_cookie(request: Request) -> str:
    """This browser's CSRF cookie value, or a new one (set it with ``set_csrf``)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    return value if 20 <= len(value) <= 100 else secrets.token_urlsafe(24)


def csrf_field(site: Site, cookie: str) -> str:
    return hmac.new(_csrf_key(site), cookie.encode(), hashlib.sha256).hexdigest()


def csrf_ok(site: Site, request: Request, field: str | None) -> bool:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not field:
        return False
    return constant_time_equals(csrf_field(site, cookie), field)


def set_csrf(site: Site, response: HTMLResponse, tenant: str, cookie: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        cookie,
        path=f"/t/{tenant}",
        httponly=True,
        samesite="lax",
        secure=site.settings.http.cookie_secure,
    )


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def login_form(
    site: Site,
    tenant: str,
    cookie: str,
    query: str,
    *,
    error: str | None = None,
    username: str = "",
    pending: str | None = None,
    status: int = 200,
    redirect_uri: str,
) -> HTMLResponse:
    """Step 1 (username + password) or, with ``pending``, step 2 (TOTP or recovery code);
    the form's POST ends at the client's ``redirect_uri``."""
    parts = [f'<form method="post" action="/t/{escape(tenant)}/authorize/login">']
    parts.append(hidden("csrf", csrf_field(site, cookie)))
    parts.append(hidden("q", query))
    if error:
        parts.append(f'<p class="error">{escape(error)}</p>')
    if pending is None:
        title = f"Sign in to {tenant}"
        parts.append(
            '<label for="username">Username</label>'
            f'<input id="username" name="username" value="{escape(username)}" '
            'autocomplete="username" required autofocus>'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" '
            'autocomplete="current-password" required>'
        )
    else:
        title = "Two-step verification"
        parts.append(hidden("pending", pending))
        parts.append(
            '<label for="totp">Code from your authenticator app</label>'
            '<input id="totp" name="totp" inputmode="numeric" autocomplete="one-time-code" '
            "autofocus>"
            '<p class="muted">Lost your device? Use a recovery code instead:</p>'
            '<label for="recovery_code">Recovery code</label>'
            '<input id="recovery_code" name="recovery_code" autocomplete="off">'
        )
    parts.append('<button type="submit">Continue</button></form>')
    resp = page(title, "".join(parts), status, form_targets=[redirect_uri])
    set_csrf(site, resp, tenant, cookie)
    return resp
