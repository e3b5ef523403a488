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

    for router in (
        admin_tenants.router,
        admin_users.router,
        admin_groups.router,
        admin_clients.router,
        login.router,
    ):
        app.include_router(router)
