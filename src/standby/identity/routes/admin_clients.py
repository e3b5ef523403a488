"""Admin API: OIDC client records (the secret is in the create response only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from standby.identity import clients
from standby.identity.routes.deps import Admin, AdminTenant, IdPath, SiteDep
from standby.identity.routes.models import ClientCreate, ClientUpdate

router = APIRouter(prefix="/admin/tenants/{tenant}/clients")


@router.post("", status_code=201)
def post_client(
    body: ClientCreate, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    return clients.create_client(
        site,
        tenant,
        body.name,
        redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        grant_types=body.grant_types,
        scopes=body.scopes,
        token_endpoint_auth_method=body.token_endpoint_auth_method,
        jwks=body.jwks,
        first_party=body.first_party,
        resource_servers=body.resource_servers,
        actor=actor,
    )


@router.get("")
def get_clients(tenant: AdminTenant, site: SiteDep, _: Admin) -> dict[str, Any]:
    return {"clients": clients.list_clients(site, tenant)}


@router.get("/{client_id}")
def get_client(client_id: IdPath, tenant: AdminTenant, site: SiteDep, _: Admin) -> dict[str, Any]:
    row = clients.get_client(site, tenant, client_id)
    if row is None:
        raise clients.client_not_found(client_id)
    return row


@router.patch("/{client_id}")
def patch_client(
    client_id: IdPath, body: ClientUpdate, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    return clients.update_client(site, tenant, client_id, body.model_dump(exclude_none=True), actor)


@router.delete("/{client_id}")
def delete_client(
    client_id: IdPath, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    clients.delete_client(site, tenant, client_id, actor)
    return {"deleted": client_id}
