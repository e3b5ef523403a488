"""The identity provider: tenants, users, sessions, MFA, OIDC, keys, admin, audit."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from standby.server import Site


def mount(app: FastAPI, site: Site) -> None:
    """Add the identity routes to a site's app."""
    from standby.identity.routes import (
        admin_clients,
        admin_groups,
        admin_tenants,
        admin_users,
        login,
    )
    from standby.openapi import errors

    # What these routes answer besides success, for the API document: bad input,
    # credentials, unknown tenant or object, conflicts, and writes on a standby; the
    # end-user routes also a disabled (403) or locked (423) account.
    admin = errors(400, 401, 404, 409, 503)
    for router in (
        admin_tenants.router,
        admin_users.router,
        admin_groups.router,
        admin_clients.router,
    ):
        app.include_router(router, responses=admin)
    app.include_router(login.router, responses=errors(400, 401, 403, 404, 409, 423, 503))
