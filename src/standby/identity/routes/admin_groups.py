"""Admin API: groups, their roles and members."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from standby.identity import groups
from standby.identity.routes.deps import Admin, AdminTenant, IdPath, SiteDep
from standby.identity.routes.models import GroupCreate, GroupUpdate, MemberAdd

router = APIRouter(prefix="/admin/tenants/{tenant}/groups")


@router.post("", status_code=201)
def post_group(
    body: GroupCreate, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    return groups.create_group(site, tenant, body.name, body.roles, actor)


@router.get("")
def get_groups(tenant: AdminTenant, site: SiteDep, _: Admin) -> dict[str, Any]:
    return {"groups": groups.list_groups(site, tenant)}


@router.patch("/{group_id}")
def patch_group(
    group_id: IdPath, body: GroupUpdate, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    return groups.update_group(site, tenant, group_id, body.model_dump(exclude_none=True), actor)


@router.delete("/{group_id}")
def delete_group(
    group_id: IdPath, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    groups.delete_group(site, tenant, group_id, actor)
    return {"deleted": group_id}


@router.get("/{group_id}/members")
def get_members(group_id: IdPath, tenant: AdminTenant, site: SiteDep, _: Admin) -> dict[str, Any]:
    return {"group_id": group_id, "members": groups.members(site, tenant, group_id)}


@router.post("/{group_id}/members")
def add_member(
    group_id: IdPath, body: MemberAdd, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    added = groups.add_member(site, tenant, group_id, body.user_id, actor)
    return {"group_id": group_id, "user_id": body.user_id, "added": added}


@router.delete("/{group_id}/members/{user_id}")
def remove_member(
    group_id: IdPath, user_id: IdPath, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    removed = groups.remove_member(site, tenant, group_id, user_id, actor)
    return {"group_id": group_id, "user_id": user_id, "removed": removed}
