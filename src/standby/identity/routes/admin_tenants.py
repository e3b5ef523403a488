"""Admin API: tenants and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from standby.identity import audit
from standby.identity.routes.deps import Admin, SiteDep, TenantPath
from standby.identity.routes.models import TenantCreate, TenantUpdate
from standby.identity.tenants import (
    create_tenant,
    delete_tenant,
    list_tenants,
    require_tenant,
    update_tenant,
)

router = APIRouter(prefix="/admin")

Cursor = Annotated[str | None, Query(max_length=64)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post("/tenants", status_code=201)
def post_tenant(body: TenantCreate, site: SiteDep, actor: Admin) -> dict[str, Any]:
    return create_tenant(site, body.id, body.name, actor)


@router.get("/tenants")
def get_tenants(site: SiteDep, _: Admin) -> dict[str, Any]:
    return {"tenants": list_tenants(site)}


@router.get("/tenants/{tenant}")
def get_tenant(tenant: TenantPath, site: SiteDep, _: Admin) -> dict[str, Any]:
    return require_tenant(site, tenant)


@router.patch("/tenants/{tenant}")
def patch_tenant(
    tenant: TenantPath, body: TenantUpdate, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    return update_tenant(site, tenant, body.name, actor)


@router.delete("/tenants/{tenant}")
def remove_tenant(tenant: TenantPath, site: SiteDep, actor: Admin) -> dict[str, Any]:
    delete_tenant(site, tenant, actor)
    return {"deleted": tenant}


# The audit trail outlives its tenant: no existence check here.
@router.get("/tenants/{tenant}/audit")
def tenant_audit(
    tenant: TenantPath, site: SiteDep, _: Admin, after: Cursor = None, limit: Limit = 100
) -> dict[str, Any]:
    events, cursor = audit.list_events(site, tenant, after, limit)
    return {"events": events, "next": cursor}


@router.get("/audit")
def all_audit(site: SiteDep, _: Admin, after: Cursor = None, limit: Limit = 100) -> dict[str, Any]:
    events, cursor = audit.list_events(site, None, after, limit)
    return {"events": events, "next": cursor}
