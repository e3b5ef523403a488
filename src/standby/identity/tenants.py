"""Tenants: the top-level namespace every identity row belongs to."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from standby.errors import ApiError
from standby.identity import audit
from standby.identity.clock import now
from standby.store.schema import clients, groups, tenants, users

if TYPE_CHECKING:
    from standby.server import Site

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def check_tenant_id(tenant_id: str) -> None:
    if not TENANT_ID.match(tenant_id):
        raise ApiError(
            400,
            "invalid_request",
            f"tenant id {tenant_id[:70]!r} is not valid; use 1-63 lower-case letters, "
            "digits and dashes, starting with a letter or digit",
        )


def unknown_tenant(tenant_id: str) -> ApiError:
    return ApiError(404, "unknown_tenant", f"tenant {tenant_id[:70]!r} does not exist")


def create_tenant(site: Site, tenant_id: str, name: str, actor: str) -> dict[str, Any]:
    check_tenant_id(tenant_id)
    at = now(site)
    with site.store.write() as w:
        if w.get(tenants, tenant_id) is not None:
            raise ApiError(409, "duplicate_tenant", f"tenant {tenant_id!r} already exists")
        row = w.insert(
            tenants, {"id": tenant_id, "tenant": tenant_id, "name": name, "created_at": at}
        )
        audit.record(w, tenant_id, actor, "tenant.create", tenant_id, "ok", {"name": name}, at=at)
    return row


def get_tenant(site: Site, tenant_id: str) -> dict[str, Any] | None:
    with site.store.read() as conn:
        row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).mappings().first()
    return None if row is None else dict(row)


def require_tenant(site: Site, tenant_id: str) -> dict[str, Any]:
    """The tenant row, or ApiError 404 ``unknown_tenant``."""
    row = get_tenant(site, tenant_id)
    if row is None:
        raise unknown_tenant(tenant_id)
    return row


def list_tenants(site: Site) -> list[dict[str, Any]]:
    with site.store.read() as conn:
        return [dict(r) for r in conn.execute(select(tenants).order_by(tenants.c.id)).mappings()]


def update_tenant(site: Site, tenant_id: str, name: str, actor: str) -> dict[str, Any]:
    at = now(site)
    with site.store.write() as w:
        if w.get(tenants, tenant_id) is None:
            raise unknown_tenant(tenant_id)
        row = w.update(tenants, tenant_id, {"name": name})
        audit.record(w, tenant_id, actor, "tenant.update", tenant_id, "ok", {"name": name}, at=at)
    return row


def delete_tenant(site: Site, tenant_id: str, actor: str) -> None:
    """Delete an empty tenant; one that still has users, groups or clients is refused."""
    at = now(site)
    with site.store.write() as w:
        if w.get(tenants, tenant_id) is None:
            raise unknown_tenant(tenant_id)
        for table in (users, groups, clients):
            n = w.conn.execute(
                select(func.count()).select_from(table).where(table.c.tenant == tenant_id)
            ).scalar()
            if n:
                raise ApiError(
                    409,
                    "tenant_not_empty",
                    f"tenant {tenant_id!r} still has {n} {table.name}; delete them first",
                )
        w.delete(tenants, tenant_id)
        audit.record(w, tenant_id, actor, "tenant.delete", tenant_id, "ok", at=at)
