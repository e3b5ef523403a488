"""The store's schema: identity tables (replicated through the change log) and bookkeeping.

Every replicated table has a single string primary key ``id`` and a ``tenant`` column,
so a change-log record can name any row by (entity, key) and filter by tenant.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = 64  # ids: uuids, hashes (hex sha256 = 64)


def _id() -> Column[str]:
    return Column("id", String(ID), primary_key=True)


def _tenant(nullable: bool = False) -> Column[str]:
    return Column("tenant", String(ID), nullable=nullable, index=True)


# ---------------------------------------------------------------- change log

change_log = Table(
    "change_log",
    metadata,
    Column("lsn", BigInteger, primary_key=True, autoincrement=False),
    Column("epoch", Integer, nullable=False),
    Column("site", String(ID), nullable=False),
    Column("committed_at", BigInteger, nullable=False),  # UTC microseconds since 1970
    Column("txn", BigInteger, nullable=False),  # lsn of the first record of its transaction
    Column("tenant", String(ID), nullable=True),
    Column("entity", String(ID), nullable=False),
    Column("key", String(255), nullable=False),
    Column("op", String(8), nullable=False),  # insert | update | delete
    Column("payload", Text, nullable=True),  # canonical JSON row image; NULL for delete
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_change_log_committed_at", "committed_at"),
    Index("ix_change_log_tenant_lsn", "tenant", "lsn"),
)

# Promotions: epoch E started at start_lsn (first LSN written on E) on site.
timeline_history = Table(
    "timeline_history",
    metadata,
    Column("epoch", Integer, primary_key=True, autoincrement=False),
    Column("start_lsn", BigInteger, nullable=False),
    Column("site", String(ID), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("reason", Text, nullable=True),
)

# Site-local bookkeeping (never replicated): role, epoch, applied position, checkpoints.
store_meta = Table(
    "store_meta",
    metadata,
    Column("name", String(ID), primary_key=True),
    Column("value", Text, nullable=False),
)

# Records a rejoining old primary held after the divergence point (never discarded).
quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("quarantined_at", BigInteger, nullable=False),
    Column("divergence_lsn", BigInteger, nullable=False),
    Column("lsn", BigInteger, nullable=False),
    Column("epoch", Integer, nullable=False),
    Column("record", Text, nullable=False),  # the full change-log record as JSON
    Column("status", String(16), nullable=False, default="pending"),  # pending|reapplied|dismissed
    Column("resolved_at", BigInteger, nullable=True),
)

# ---------------------------------------------------------------- identity

tenants = Table(
    "tenants",
    metadata,
    _id(),
    _tenant(),  # equals id; lets a tenant be filtered like every other row
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

users = Table(
    "users",
    metadata,
    _id(),
    _tenant(),
    Column("username", String(200), nullable=False),
    Column("email", String(320), nullable=True),
    Column("display_name", String(200), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", BigInteger, nullable=True),
    Column("totp_secret", Text, nullable=True),  # sealed under the KEK
    Column("totp_enabled", Boolean, nullable=False, default=False),
    Column("totp_last_step", BigInteger, nullable=True),  # replay protection
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("tenant", "username", name="uq_users_tenant_username"),
)

groups = Table(
    "groups",
    metadata,
    _id(),
    _tenant(),
    Column("name", String(200), nullable=False),
    Column("roles", Text, nullable=False, default="[]"),  # JSON list of role names
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("tenant", "name", name="uq_groups_tenant_name"),
)

group_members = Table(
    "group_members",
    metadata,
    _id(),  # "<group_id>:<user_id>"
    _tenant(),
    Column("group_id", String(ID), nullable=False, index=True),
    Column("user_id", String(ID), nullable=False, index=True),
)

clients = Table(
    "clients",
    metadata,
    _id(),  # the client_id
    _tenant(),
    Column("name", String(200), nullable=False),
    Column("secret_hash", String(255), nullable=True),  # argon2; NULL for public clients
    Column("redirect_uris", Text, nullable=False, default="[]"),
    Column("post_logout_redirect_uris", Text, nullable=False, default="[]"),
    Column("grant_types", Text, nullable=False, default='["authorization_code","refresh_token"]'),
    Column("scopes", Text, nullable=False, default='["openid","profile","email"]'),
    Column("token_endpoint_auth_method", String(64), nullable=False),
    Column("jwks", Text, nullable=True),  # public keys for private_key_jwt
    Column("created_at", BigInteger, nullable=False),
    # First-party clients get no consent page and a refresh token without offline_access.
    Column("first_party", Boolean, nullable=False, default=False),
    # Client ids that may introspect this client's tokens (its resource servers).
    Column("resource_servers", Text, nullable=False, default="[]"),
)

sessions = Table(
    "sessions",
    metadata,
    _id(),  # sha256 hex of the session token; the token itself is never stored
    _tenant(),
    Column("user_id", String(ID), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # absolute timeout
    Column("revoked_at", BigInteger, nullable=True),
    Column("amr", Text, nullable=False, default='["pwd"]'),
    Column("auth_time", BigInteger, nullable=False),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    _id(),  # sha256 hex of "<user_id>:<code>"
    _tenant(),
    Column("user_id", String(ID), nullable=False, index=True),
    Column("used_at", BigInteger, nullable=True),
)

reset_tokens = Table(
    "reset_tokens",
    metadata,
    _id(),  # sha256 hex of the token
    _tenant(),
    Column("user_id", String(ID), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
)

audit_events = Table(
    "audit_events",
    metadata,
    _id(),
    _tenant(nullable=True),
    Column("at", BigInteger, nullable=False, index=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=True),
    Column("outcome", String(32), nullable=False),
    Column("detail", Text, nullable=False, default="{}"),
)

# ---------------------------------------------------------------- OIDC

signing_keys = Table(
    "signing_keys",
    metadata,
    _id(),  # kid
    _tenant(nullable=True),  # NULL: shared by all tenants
    Column("alg", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # staged | active | retired | removed
    Column("public_jwk", Text, nullable=False),
    Column("private_jwk", Text, nullable=False),  # sealed under the KEK
    Column("created_at", BigInteger, nullable=False),
    Column("activated_at", BigInteger, nullable=True),
    Column("retired_at", BigInteger, nullable=True),
    Column("removed_at", BigInteger, nullable=True),
)

auth_codes = Table(
    "auth_codes",
    metadata,
    _id(),  # sha256 hex of the code
    _tenant(),
    Column("client_id", String(ID), nullable=False),
    Column("user_id", String(ID), nullable=False),
    Column("session_id", String(ID), nullable=True),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("nonce", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(16), nullable=True),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", Text, nullable=False, default='["pwd"]'),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),
    Column("issued", Text, nullable=False, default="[]"),  # token ids issued from it
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    _id(),  # sha256 hex of the token
    _tenant(),
    Column("family", String(ID), nullable=False, index=True),
    Column("client_id", String(ID), nullable=False),
    Column("user_id", String(ID), nullable=False, index=True),
    Column("session_id", String(ID), nullable=True, index=True),
    Column("scope", Text, nullable=False),
    Column("auth_time", BigInteger, nullable=False),
    Column("amr", Text, nullable=False, default='["pwd"]'),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger, nullable=True),  # rotated: presenting it again is reuse
    Column("revoked_at", BigInteger, nullable=True),
    # The access token issued with this refresh token, revoked with its family.
    Column("access_jti", String(ID), nullable=True),
    Column("access_expires_at", BigInteger, nullable=True),
)

# Revoked access tokens (by jti) until they would have expired anyway.
revocations = Table(
    "revocations",
    metadata,
    _id(),  # jti
    _tenant(),
    Column("revoked_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("reason", String(64), nullable=False),
)

# What a user allowed a client: one row per (tenant, user, client), the scopes granted.
consents = Table(
    "consents",
    metadata,
    _id(),  # sha256 hex of "tenant:user:client"
    _tenant(),
    Column("user_id", String(ID), nullable=False, index=True),
    Column("client_id", String(ID), nullable=False),
    Column("scopes", Text, nullable=False, default="[]"),  # JSON list
    Column("granted_at", BigInteger, nullable=False),
)

REPLICATED_TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        tenants,
        users,
        groups,
        group_members,
        clients,
        sessions,
        recovery_codes,
        reset_tokens,
        audit_events,
        signing_keys,
        auth_codes,
        refresh_tokens,
        revocations,
        consents,
    )
}
