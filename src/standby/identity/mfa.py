"""TOTP (pyotp) with replay protection, and single-use recovery codes.

The TOTP secret is sealed under the KEK, bound to its user (aad ``totp:<user_id>``).
A time step is accepted once: the last accepted step is stored and only later steps
pass. Recovery codes are stored as sha256 of ``<user_id>:<code>`` (they are random
80-bit values, so a fast hash is enough)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import pyotp
from sqlalchemy import select

from standby.crypto import constant_time_equals, seal, unseal
from standby.errors import ApiError
from standby.identity import audit
from standby.identity.clock import US, now
from standby.identity.users import locked_row
from standby.store import Writer
from standby.store.schema import recovery_codes, tenants, users

if TYPE_CHECKING:
    from standby.server import Site

STEP_SECONDS = 30
# Accept the previous and next step too (clock drift), but each step only once.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10


def _aad(user_id: str) -> str:
    return f"totp:{user_id}"


def seal_secret(site: Site, user_id: str, secret: str) -> str:
    return seal(site.secrets.kek_bytes(), secret.encode(), _aad(user_id))


def unseal_secret(site: Site, user_id: str, sealed: str) -> str:
    return unseal(site.secrets.kek_bytes(), sealed, _aad(user_id)).decode()


def matching_step(secret: str, code: str, at: int, last_step: int | None) -> int | None:
    """Pure decision: the time step ``code`` is valid for near ``at`` (microseconds), if
    it is later than ``last_step``; else None."""
    code = code.replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = at // US // STEP_SECONDS
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if constant_time_equals(totp.generate_otp(step), code):
            return step
    return None


def enroll_totp(site: Site, tenant: str, user_id: str) -> dict[str, str]:
    """Start enrolment: a new secret (pending until confirmed) and its otpauth URI."""
    secret = pyotp.random_base32()
    at = now(site)
    with site.store.write() as w:
        row = locked_row(w, tenant, user_id)
        if row["totp_enabled"]:
            raise ApiError(
                409,
                "totp_already_enabled",
                "TOTP is already enabled; an administrator can reset it before re-enrolling",
            )
        w.update(
            users,
            user_id,
            {
                "totp_secret": seal_secret(site, user_id, secret),
                "totp_last_step": None,
                "updated_at": at,
            },
        )
        tenant_row = w.get(tenants, tenant)
        audit.record(w, tenant, f"user:{user_id}", "mfa.totp.enroll", user_id, "ok", at=at)
    issuer = f"Standby {tenant_row['name'] if tenant_row else tenant}"
    uri = pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=row["username"], issuer_name=issuer
    )
    return {"secret": secret, "otpauth_uri": uri}


def confirm_totp(site: Site, tenant: str, user_id: str, code: str) -> list[str]:
    """Finish enrolment with a first valid code; returns fresh recovery codes (shown once)."""
    at = now(site)
    failed = False
    codes: list[str] = []
    with site.store.write() as w:
        row = locked_row(w, tenant, user_id)
        if row["totp_enabled"] or not row["totp_secret"]:
            raise ApiError(409, "no_pending_enrolment", "start with POST .../mfa/totp/enroll")
        secret = unseal_secret(site, user_id, row["totp_secret"])
        step = matching_step(secret, code, at, row["totp_last_step"])
        if step is None:
            failed = True
            audit.record(
                w, tenant, f"user:{user_id}", "mfa.totp.confirm", user_id, "failure", at=at
            )
        else:
            w.update(
                users, user_id, {"totp_enabled": True, "totp_last_step": step, "updated_at": at}
            )
            codes = replace_recovery_codes_in(w, tenant, user_id)
            audit.record(w, tenant, f"user:{user_id}", "mfa.totp.confirm", user_id, "ok", at=at)
    if failed:
        raise ApiError(400, "invalid_code", "the code does not match; check the device's clock")
    return codes


def check_totp_in(w: Writer, site: Site, row: dict[str, Any], code: str, at: int) -> bool:
    """Verify a login code for an enrolled user and burn its time step."""
    if not row["totp_enabled"] or not row["totp_secret"]:
        return False
    secret = unseal_secret(site, row["id"], row["totp_secret"])
    step = matching_step(secret, code, at, row["totp_last_step"])
    if step is None:
        return False
    w.update(users, row["id"], {"totp_last_step": step})
    return True


def new_recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def recovery_code_id(user_id: str, code: str) -> str:
    normal = code.replace("-", "").replace(" ", "").lower()
    return hashlib.sha256(f"{user_id}:{normal}".encode()).hexdigest()


def replace_recovery_codes_in(w: Writer, tenant: str, user_id: str) -> list[str]:
    old = w.conn.execute(
        select(recovery_codes.c.id).where(
            recovery_codes.c.tenant == tenant, recovery_codes.c.user_id == user_id
        )
    ).scalars()
    for key in list(old):
        w.delete(recovery_codes, key)
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        w.insert(
            recovery_codes,
            {
                "id": recovery_code_id(user_id, code),
                "tenant": tenant,
                "user_id": user_id,
                "used_at": None,
            },
        )
    return codes


def use_recovery_code_in(w: Writer, tenant: str, user_id: str, code: str, at: int) -> bool:
    """Spend a recovery code: True once, False for unknown or already used codes."""
    if len(code) > 64:
        return False
    row = w.get(recovery_codes, recovery_code_id(user_id, code))
    if row is None or row["tenant"] != tenant or row["used_at"] is not None:
        return False
    w.update(recovery_codes, row["id"], {"used_at": at})
    return True


def regenerate_recovery_codes(site: Site, tenant: str, user_id: str) -> list[str]:
    """Replace a TOTP user's recovery codes (the old ones stop working); shown once."""
    at = now(site)
    with site.store.write() as w:
        row = locked_row(w, tenant, user_id)
        if not row["totp_enabled"]:
            raise ApiError(409, "totp_not_enabled", "enrol TOTP first; recovery codes back it up")
        codes = replace_recovery_codes_in(w, tenant, user_id)
        audit.record(w, tenant, f"user:{user_id}", "mfa.recovery_codes", user_id, "ok", at=at)
    return codes


def reset_totp(site: Site, tenant: str, user_id: str, actor: str) -> None:
    """Administrator: remove a user's TOTP and recovery codes (they may enrol again)."""
    at = now(site)
    with site.store.write() as w:
        locked_row(w, tenant, user_id)
        w.update(
            users,
            user_id,
            {"totp_secret": None, "totp_enabled": False, "totp_last_step": None, "updated_at": at},
        )
        for key in list(
            w.conn.execute(
                select(recovery_codes.c.id).where(
                    recovery_codes.c.tenant == tenant, recovery_codes.c.user_id == user_id
                )
            ).scalars()
        ):
            w.delete(recovery_codes, key)
        audit.record(w, tenant, actor, "mfa.reset", user_id, "ok", at=at)
