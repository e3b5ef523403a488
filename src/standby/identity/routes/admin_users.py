"""Admin API: users, their passwords, reset tokens, sessions and MFA."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from standby.identity import mfa, reset, sessions, users
from standby.identity.routes.deps import Admin, AdminTenant, IdPath, SiteDep
from standby.identity.routes.models import (
    PasswordSet,
    ResetTokenIssue,
    SessionRevoke,
    UserCreate,
    UserUpdate,
)

router = APIRouter(prefix="/admin/tenants/{tenant}/users")


@router.post("", status_code=201)
def post_user(body: UserCreate, tenant: AdminTenant, site: SiteDep, actor: Admin) -> dict[str, Any]:
    return users.create_user(
        site,
        tenant,
        body.username,
        body.password,
        email=body.email,
        display_name=body.display_name,
        actor=actor,
    )


@router.get("")
def get_users(
    tenant: AdminTenant,
    site: SiteDep,
    _: Admin,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = users.list_users(site, tenant, after, limit)
    return {"users": rows, "next": rows[-1]["username"] if len(rows) == limit else None}


@router.get("/{user_id}")
def get_user(user_id: IdPath, tenant: AdminTenant, site: SiteDep, _: Admin) -> dict[str, Any]:
    return users.require_user(site, tenant, user_id)


@router.patch("/{user_id}")
def patch_user(
    user_id: IdPath, body: UserUpdate, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    return users.update_user(site, tenant, user_id, body.model_dump(exclude_none=True), actor)


@router.delete("/{user_id}")
def delete_user(
    user_id: IdPath, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    users.delete_user(site, tenant, user_id, actor)
    return {"deleted": user_id}


@router.post("/{user_id}/password")
def set_password(
    user_id: IdPath, body: PasswordSet, tenant: AdminTenant, site: SiteDep, actor: Admin
) -> dict[str, Any]:
    users.set_password(site, tenant, user_id, body.password, actor)
    return {"user_id": user_id, "password_set": True, "sessions_revoked": True}


@router.post("/{user_id}/reset-token", status_code=201)
def issue_reset_token(
    user_id: IdPath,
    tenant: AdminTenant,
    site: SiteDep,
    actor: Admin,
    body: ResetTokenIssue | None = None,
) -> dict[str, Any]:
    ttl = body.ttl if body else reset.DEFAULT_TTL
    return reset.issue_reset_token(site, tenant, user_id, actor, ttl)


@router.get("/{user_id}/sessions")
def get_sessions(user_id: IdPath, tenant: AdminTenant, site: SiteDep, _: Admin) -> dict[str, Any]:
    users.require_user(site, tenant, user_id)
    return {"sessions": sessions.list_user_sessions(site, tenant, user_id)}


@router.post("/{user_id}/sessions/revoke")
def revoke_sessions(
    user_id: IdPath,
    tenant: AdminTenant,
    site: SiteDep,
    actor: Admin,
    body: SessionRevoke | None = None,
) -> dict[str, Any]:
    users.require_user(site, tenant, user_id)
    if body and body.session_id:
        row = next(
            (
                s
                for s in sessions.list_user_sessions(site, tenant, user_id)
                if s["id"] == body.session_id
            ),
            None,
        )
        done = row is not None and sessions.revoke_session(site, tenant, body.session_id, actor)
        return {"revoked": int(done)}
    return {"revoked": sessions.revoke_user_sessions(site, tenant, user_id, actor)}


@router.delete("/{user_id}/mfa")
def reset_mfa(user_id: IdPath, tenant: AdminTenant, site: SiteDep, actor: Admin) -> dict[str, Any]:
    mfa.reset_totp(site, tenant, user_id, actor)
    return {"user_id": user_id, "totp_enabled": False}
