"""Consent and complete revocation: clients.first_party and .resource_servers, the
access token issued with each refresh token, refresh tokens by session, consents.

Revision ID: 0002
Revises: 0001
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from standby.store.schema import consents

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

COLUMNS: dict[str, list[sa.Column[Any]]] = {
    "clients": [
        sa.Column("first_party", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("resource_servers", sa.Text, nullable=False, server_default="[]"),
    ],
    "refresh_tokens": [
        sa.Column("access_jti", sa.String(64), nullable=True),
        sa.Column("access_expires_at", sa.BigInteger, nullable=True),
    ],
}
INDEX = "ix_refresh_tokens_session_id"


def upgrade() -> None:
    # 0001 creates the whole schema as shipped, so a store created by this release
    # already has everything below: add only what an older store lacks.
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    for table, columns in COLUMNS.items():
        have = {c["name"] for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in have]
        if missing:
            with op.batch_alter_table(table) as batch:
                for column in missing:
                    batch.add_column(column)
    if INDEX not in {i["name"] for i in inspector.get_indexes("refresh_tokens")}:
        op.create_index(INDEX, "refresh_tokens", ["session_id"])
    consents.create(bind, checkfirst=True)
