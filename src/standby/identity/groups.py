"""Groups, the roles they grant, and group membership."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from standby.errors import ApiError
from standby.identity import audit
from standby.identity.clock import now
from standby.identity.tenants import unknown_tenant
from standby.identity.tokens import new_id
from standby.identity.users import locked_row
from standby.store import Conflict, Writer
from standby.store.schema import group_members, groups, tenants

if TYPE_CHECKING:
    from standby.server import Site


def public(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "roles": json.loads(row["roles"] or "[]")}


def group_not_found(group_id: str) -> ApiError:
    return ApiError(404, "unknown_group", f"group {group_id[:70]!r} does not exist in this tenant")


def duplicate(name: str) -> ApiError:
    return ApiError(409, "duplicate_group", f"group name {name!r} is taken in this tenant")


def _group(w: Writer, tenant: str, group_id: str) -> dict[str, Any]:
    row = w.get(groups, group_id)
    if row is None or row["tenant"] != tenant:
        raise group_not_found(group_id)
    return row


def create_group(
    site: Site, tenant: str, name: str, roles: list[str], actor: str
) -> dict[str, Any]:
    at = now(site)
    with site.store.write() as w:
        if w.get(tenants, tenant) is None:
            raise unknown_tenant(tenant)
        try:
            row = w.insert(
                groups,
                {
                    "id": new_id(),
                    "tenant": tenant,
                    "name": name,
                    "roles": json.dumps(sorted(set(roles))),
                    "created_at": at,
                },
            )
        except Conflict:
            raise duplicate(name) from None
        audit.record(
            w, tenant, actor, "group.create", row["id"], "ok", {"name": name, "roles": roles}, at=at
        )
    return public(row)


def list_groups(site: Site, tenant: str) -> list[dict[str, Any]]:
    with site.store.read() as conn:
        rows = conn.execute(
            select(groups).where(groups.c.tenant == tenant).order_by(groups.c.name)
        ).mappings()
        return [public(dict(r)) for r in rows]


def update_group(
    site: Site, tenant: str, group_id: str, changes: dict[str, Any], actor: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if changes.get("name") is not None:
        values["name"] = changes["name"]
    if changes.get("roles") is not None:
        values["roles"] = json.dumps(sorted(set(changes["roles"])))
    at = now(site)
    with site.store.write() as w:
        current = _group(w, tenant, group_id)
        if not values:  # nothing to change: answer the group as it is, write nothing
            return public(current)
        try:
            row = w.update(groups, group_id, values)
        except Conflict:
            raise duplicate(str(values.get("name"))) from None
        audit.record(
            w, tenant, actor, "group.update", group_id, "ok", {"fields": sorted(values)}, at=at
        )
    return public(row)


def delete_group(site: Site, tenant: str, group_id: str, actor: str) -> None:
    """Delete a group and its memberships."""
    at = now(site)
    with site.store.write() as w:
        row = _group(w, tenant, group_id)
        members = w.conn.execute(
            select(group_members.c.id).where(group_members.c.group_id == group_id)
        ).scalars()
        for key in list(members):
            w.delete(group_members, key)
        w.delete(groups, group_id)
        audit.record(w, tenant, actor, "group.delete", group_id, "ok", {"name": row["name"]}, at=at)


def add_member(site: Site, tenant: str, group_id: str, user_id: str, actor: str) -> bool:
    """Add a user to a group; False if already a member."""
    at = now(site)
    with site.store.write() as w:
        _group(w, tenant, group_id)
        locked_row(w, tenant, user_id)
        key = f"{group_id}:{user_id}"
        if w.get(group_members, key) is not None:
            return False
        w.insert(
            group_members, {"id": key, "tenant": tenant, "group_id": group_id, "user_id": user_id}
        )
        audit.record(w, tenant, actor, "group.add_member", group_id, "ok", {"user": user_id}, at=at)
    return True


def remove_member(site: Site, tenant: str, group_id: str, user_id: str, actor: str) -> bool:
    at = now(site)
    with site.store.write() as w:
        _group(w, tenant, group_id)
        if not w.delete(group_members, f"{group_id}:{user_id}"):
            return False
        audit.record(
            w, tenant, actor, "group.remove_member", group_id, "ok", {"user": user_id}, at=at
        )
    return True


def members(site: Site, tenant: str, group_id: str) -> list[str]:
    with site.store.read() as conn:
        return list(
            conn.execute(
                select(group_members.c.user_id)
                .where(group_members.c.tenant == tenant, group_members.c.group_id == group_id)
                .order_by(group_members.c.user_id)
            ).scalars()
        )


def user_groups(site: Site, tenant: str, user_id: str) -> list[dict[str, Any]]:
    """The groups a user belongs to (for claims): [{id, name, roles}]."""
    q = (
        select(groups)
        .join(group_members, group_members.c.group_id == groups.c.id)
        .where(group_members.c.tenant == tenant, group_members.c.user_id == user_id)
        .order_by(groups.c.name)
    )
    with site.store.read() as conn:
        return [public(dict(r)) for r in conn.execute(q).mappings()]


def user_roles(site: Site, tenant: str, user_id: str) -> list[str]:
    """Every role a user holds through their groups, sorted."""
    return sorted({role for g in user_groups(site, tenant, user_id) for role in g["roles"]})
