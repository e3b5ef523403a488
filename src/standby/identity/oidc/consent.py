"""Consent: what a user allowed a client, remembered per user, client and scopes.

A client that is not first-party shows the user a consent page before the first code
for a set of scopes (OIDC Core 3.1.2.4); ``prompt=consent`` asks again, even for a
first-party client; ``offline_access`` is one of the scopes consented to (OIDC Core 11).
The answers are rows in the store, so they replicate like everything else.
"""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

from fastapi.responses import HTMLResponse

from standby.identity.clock import now
from standby.identity.oidc import pages
from standby.identity.tokens import json_list, token_hash
from standby.store.schema import consents

if TYPE_CHECKING:
    from standby.server import Site

# What each scope lets the application do, in the words the page shows.
SCOPE_TEXT = {
    "openid": "know who you are (your user id on this site)",
    "profile": "see your username and name",
    "email": "see your email address",
    "offline_access": "keep access while you are away (a refresh token)",
}


def consent_needed(
    first_party: bool, prompt: list[str], asked: list[str], granted: list[str]
) -> bool:
    """Pure decision: must the user be asked before a code is issued?"""
    if "consent" in prompt:
        return True
    return not first_party and not set(asked) <= set(granted)


def _id(tenant: str, user_id: str, client_id: str) -> str:
    return token_hash(json.dumps([tenant, user_id, client_id]))


def granted_scopes(site: Site, tenant: str, user_id: str, client_id: str) -> list[str]:
    with site.store.read() as conn:
        row = conn.execute(
            consents.select().where(consents.c.id == _id(tenant, user_id, client_id))
        ).first()
    return json_list(row.scopes) if row is not None else []


def needed(
    site: Site, tenant: str, user_id: str, client: dict[str, Any], scope: str, prompt: list[str]
) -> bool:
    """Whether this user must be asked before ``client`` gets a code for ``scope``."""
    first_party = bool(client.get("first_party"))
    if first_party and "consent" not in prompt:
        return False  # no read needed
    granted = granted_scopes(site, tenant, user_id, client["id"])
    return consent_needed(first_party, prompt, scope.split(), granted)


def record(site: Site, tenant: str, user_id: str, client_id: str, scope: str) -> None:
    """Remember that the user allowed ``scope`` (added to what they allowed before)."""
    key = _id(tenant, user_id, client_id)
    at = now(site)
    with site.store.write() as w:
        row = w.get(consents, key)
        before = json_list(row["scopes"]) if row else []
        scopes = json.dumps(sorted(set(before) | set(scope.split())))
        if row is None:
            w.insert(
                consents,
                {
                    "id": key,
                    "tenant": tenant,
                    "user_id": user_id,
                    "client_id": client_id,
                    "scopes": scopes,
                    "granted_at": at,
                },
            )
        elif row["scopes"] != scopes:
            w.update(consents, key, {"scopes": scopes, "granted_at": at})


def form(
    site: Site,
    tenant: str,
    cookie: str,
    query: str,
    *,
    client: dict[str, Any],
    scope: str,
    user: dict[str, Any],
    redirect_uri: str,
) -> HTMLResponse:
    """The consent page: who is signed in, which application asks, for what; Allow or
    Deny post to ``/t/{tenant}/authorize/consent`` and end at the client's redirect URI."""
    items = "".join(
        f"<li>{escape(SCOPE_TEXT.get(s, s))}</li>" for s in scope.split() if s != "openid"
    )
    parts = [
        f'<form method="post" action="/t/{escape(tenant)}/authorize/consent">',
        pages.hidden("csrf", pages.csrf_field(site, cookie)),
        pages.hidden("q", query),
        pages.hidden("user", user["id"]),
        f"<p><strong>{escape(client['name'])}</strong> would like to "
        f"{escape(SCOPE_TEXT['openid'])}"
        + (f" and to:</p><ul>{items}</ul>" if items else ".</p>"),
        f'<p class="muted">Signed in as {escape(user["username"])}.</p>',
        '<button type="submit" name="decision" value="allow">Allow</button> ',
        '<button type="submit" name="decision" value="deny">Deny</button></form>',
    ]
    resp = pages.page("Allow access?", "".join(parts), form_targets=[redirect_uri])
    pages.set_csrf(site, resp, tenant, cookie)
    return resp
