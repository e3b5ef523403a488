"""Authentication: password, then TOTP or a recovery code when enrolled; durable lockout.

Password hashing runs outside the write transaction (it is the slow part); the outcome,
the lockout counters, a rehash and the audit event are written in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from standby.errors import ApiError
from standby.identity import audit, lockout, mfa
from standby.identity.clock import now
from standby.identity.passwords import passwords_for
from standby.identity.sessions import create_session_in
from standby.identity.tenants import require_tenant
from standby.identity.users import find_user_row, locked_row, public
from standby.store import NotWritable, Writer
from standby.store.schema import users

if TYPE_CHECKING:
    from standby.server import Site


@dataclass
class AuthResult:
    user: dict[str, Any]
    amr: list[str] = field(default_factory=lambda: ["pwd"])
    # With start_session=True: the new session's cookie token and row.
    session_token: str | None = None
    session: dict[str, Any] | None = None


def invalid() -> ApiError:
    return ApiError(401, "invalid_credentials", "wrong username or password")


def locked() -> ApiError:
    return ApiError(
        423,
        "account_locked",
        "too many failed logins; the account is locked for a while "
        "(an administrator can unlock it)",
    )


def authenticate(
    site: Site,
    tenant: str,
    username: str,
    password: str,
    totp: str | None = None,
    recovery_code: str | None = None,
    remote: str | None = None,
    *,
    start_session: bool = False,
) -> AuthResult:
    """Check credentials and return the user and how they authenticated, or raise
    401 invalid_credentials / 401 mfa_required / 423 account_locked / 403 account_disabled.
    ``start_session`` also creates the session in the same transaction (one commit)."""
    try:
        result = _authenticate(
            site, tenant, username, password, totp, recovery_code, remote, start_session
        )
    except ApiError as exc:
        site.metrics.logins.labels(exc.error).inc()
        raise
    except NotWritable:
        site.metrics.logins.labels("unavailable").inc()
        raise
    site.metrics.logins.labels("success").inc()
    return result


def _authenticate(
    site: Site,
    tenant: str,
    username: str,
    password: str,
    totp: str | None,
    recovery_code: str | None,
    remote: str | None,
    start_session: bool,
) -> AuthResult:
    require_tenant(site, tenant)
    pw = passwords_for(site)
    row = find_user_row(site, tenant, username)
    at = now(site)
    detail: dict[str, Any] = {"username": username, "remote": remote}
    if row is not None and lockout.is_locked(row, at):
        _write_failure(site, tenant, None, {**detail, "reason": "locked"}, at, row["id"])
        raise locked()
    password_ok = pw.verify(row["password_hash"] if row else None, password)
    if row is None or not password_ok:
        now_locked = _write_failure(
            site, tenant, row["id"] if row else None, {**detail, "reason": "password"}, at
        )
        raise locked() if now_locked else invalid()
    if row["disabled"]:
        _write_failure(site, tenant, None, {**detail, "reason": "disabled"}, at, row["id"])
        raise ApiError(403, "account_disabled", "this account is disabled")
    if row["totp_enabled"] and not totp and not recovery_code:
        raise ApiError(401, "mfa_required", "this account needs a TOTP code or a recovery code")
    new_hash = pw.hash(password) if pw.needs_rehash(row["password_hash"]) else None

    error: ApiError | None = None
    token: str | None = None
    session: dict[str, Any] | None = None
    with site.store.write() as w:
        current = locked_row(w, tenant, row["id"])
        amr = ["pwd"]
        second_ok = True
        if lockout.is_locked(current, at):  # locked by a concurrent attempt meanwhile
            _failure_in(w, site, tenant, None, {**detail, "reason": "locked"}, at, row["id"])
            error = locked()
        elif current["password_hash"] != row["password_hash"] or current["disabled"]:
            # the password was changed (or the user disabled) while we were hashing
            _failure_in(w, site, tenant, None, {**detail, "reason": "changed"}, at, row["id"])
            error = invalid()
        elif current["totp_enabled"]:
            if totp:
                second_ok, amr = mfa.check_totp_in(w, site, current, totp, at), ["pwd", "otp"]
            else:
                second_ok = mfa.use_recovery_code_in(
                    w, tenant, current["id"], recovery_code or "", at
                )
                amr = ["pwd", "mfa"]
            if not second_ok:
                reason = "totp" if totp else "recovery_code"
                now_locked = _failure_in(w, site, tenant, current, {**detail, "reason": reason}, at)
                error = locked() if now_locked else invalid()
        if error is None:
            changes = lockout.after_success(current)
            if new_hash is not None:
                changes["password_hash"] = new_hash
            if changes:
                current = w.update(users, current["id"], changes)
            audit.record(
                w,
                tenant,
                f"user:{current['id']}",
                "login",
                current["id"],
                "success",
                {**detail, "amr": amr, "rehashed": new_hash is not None},
                at=at,
            )
            if start_session:
                token, session = create_session_in(w, site, tenant, current["id"], amr, at)
    if error is not None:
        raise error
    return AuthResult(public(current), amr, token, session)


def _write_failure(
    site: Site,
    tenant: str,
    user_id: str | None,
    detail: dict[str, Any],
    at: int,
    target: str | None = None,
) -> bool:
    """Record a failed login in its own transaction; counts it against ``user_id`` if
    given. True if this failure locked the account."""
    with site.store.write() as w:
        row = locked_row(w, tenant, user_id) if user_id else None
        return _failure_in(w, site, tenant, row, detail, at, target)


def _failure_in(
    w: Writer,
    site: Site,
    tenant: str,
    row: dict[str, Any] | None,
    detail: dict[str, Any],
    at: int,
    target: str | None = None,
) -> bool:
    now_locked = False
    target = row["id"] if row is not None else target
    if row is not None:
        changes = lockout.after_failure(row, at, site.settings.lockout)
        now_locked = "locked_until" in changes
        w.update(users, row["id"], changes)
    audit.record(w, tenant, "anonymous", "login", target, "failure", detail, at=at)
    if now_locked:
        audit.record(w, tenant, "system", "login.lockout", target, "locked", detail, at=at)
    return now_locked
