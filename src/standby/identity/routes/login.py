"""Per-tenant end-user endpoints: login, logout, session, TOTP enrolment, password reset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from standby.errors import ApiError
from standby.identity import mfa, reset, sessions
from standby.identity.authn import authenticate
from standby.identity.clock import US
from standby.identity.routes.deps import Session, SiteDep, Tenant
from standby.identity.routes.models import Login, PasswordReset, TotpConfirm

router = APIRouter(prefix="/t/{tenant}")


@router.post("/login")
def login(
    body: Login, tenant: Tenant, request: Request, response: Response, site: SiteDep
) -> dict[str, Any]:
    remote = request.client.host if request.client else None
    result = authenticate(
        site,
        tenant,
        body.username,
        body.password,
        body.totp,
        body.recovery_code,
        remote,
        start_session=True,
    )
    token, session = result.session_token, result.session
    if token is None or session is None:  # start_session=True always makes one
        raise ApiError(500, "no_session", "login succeeded but no session was started")
    sessions.set_session_cookie(response, site, tenant, token)
    return {
        "user_id": result.user["id"],
        "session_expires_at": session["expires_at"] // US,
        "amr": result.amr,
    }


@router.post("/logout")
def logout(tenant: Tenant, request: Request, response: Response, site: SiteDep) -> dict[str, Any]:
    row = sessions.load_session(site, tenant, request.cookies.get(sessions.SESSION_COOKIE))
    if row is not None:
        sessions.revoke_session(site, tenant, row["id"], f"user:{row['user_id']}")
    sessions.clear_session_cookie(response, tenant)
    return {"logged_out": row is not None}


@router.get("/session")
def session_info(session: Session, site: SiteDep) -> dict[str, Any]:
    return {
        "user_id": session["user_id"],
        "tenant": session["tenant"],
        "amr": session["amr"],
        "auth_time": session["auth_time"] // US,
        "expires_at": session["expires_at"] // US,
        "idle_expires_at": sessions.idle_expires_at(site, session) // US,
    }


@router.post("/mfa/totp/enroll")
def totp_enroll(session: Session, tenant: Tenant, site: SiteDep) -> dict[str, str]:
    return mfa.enroll_totp(site, tenant, session["user_id"])


@router.post("/mfa/totp/confirm")
def totp_confirm(
    body: TotpConfirm, session: Session, tenant: Tenant, site: SiteDep
) -> dict[str, Any]:
    codes = mfa.confirm_totp(site, tenant, session["user_id"], body.code)
    return {"totp_enabled": True, "recovery_codes": codes}


@router.post("/mfa/recovery-codes")
def recovery_codes(session: Session, tenant: Tenant, site: SiteDep) -> dict[str, Any]:
    """New recovery codes; the session must have used a second factor."""
    if "otp" not in session["amr"] and "mfa" not in session["amr"]:
        raise ApiError(
            403, "mfa_session_required", "log in with your TOTP code first, then ask again"
        )
    return {"recovery_codes": mfa.regenerate_recovery_codes(site, tenant, session["user_id"])}


@router.post("/password/reset")
def password_reset(body: PasswordReset, tenant: Tenant, site: SiteDep) -> dict[str, Any]:
    reset.redeem_reset_token(site, tenant, body.token, body.new_password)
    return {"password_reset": True, "sessions_revoked": True}
