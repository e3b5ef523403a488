"""Request dependencies: the site, the admin bearer token, the tenant, the session."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request

from standby.crypto import constant_time_equals
from standby.errors import ApiError, unauthorized
from standby.identity.sessions import SESSION_COOKIE, load_session
from standby.identity.tenants import require_tenant
from standby.server import Site

ADMIN_ACTOR = "admin"


def get_site(request: Request) -> Site:
    site: Site = request.app.state.site
    return site


SiteDep = Annotated[Site, Depends(get_site)]
TenantPath = Annotated[str, Path(min_length=1, max_length=63)]
IdPath = Annotated[str, Path(min_length=1, max_length=64)]


def admin(site: SiteDep, authorization: Annotated[str | None, Header()] = None) -> str:
    """Require ``Authorization: Bearer <admin_token>`` (constant-time); returns the actor."""
    scheme, _, token = (authorization or "").partition(" ")
    expected = site.secrets.admin_token.get_secret_value()
    if scheme.lower() != "bearer" or not constant_time_equals(token.strip(), expected):
        raise unauthorized("missing or wrong admin token (Authorization: Bearer <admin_token>)")
    return ADMIN_ACTOR


Admin = Annotated[str, Depends(admin)]


def tenant(site: SiteDep, tenant: TenantPath) -> str:
    """The tenant named in the path, which must exist (404 unknown_tenant)."""
    require_tenant(site, tenant)
    return tenant


Tenant = Annotated[str, Depends(tenant)]


def admin_tenant(site: SiteDep, tenant: TenantPath, _: Admin) -> str:
    """Like ``tenant``, but only after the admin token checked out, so an unauthenticated
    caller cannot probe which tenants exist."""
    require_tenant(site, tenant)
    return tenant


AdminTenant = Annotated[str, Depends(admin_tenant)]


def session(request: Request, site: SiteDep, tenant: Tenant) -> dict[str, Any]:
    """The caller's live session in this tenant (cookie), or 401 ``no_session``."""
    row = load_session(site, tenant, request.cookies.get(SESSION_COOKIE))
    if row is None:
        raise ApiError(401, "no_session", "not logged in (or the session expired); log in again")
    return row


Session = Annotated[dict[str, Any], Depends(session)]
