"""Initial schema: change log, timeline history, site metadata, identity and OIDC tables.

Revision ID: 0001
Revises:
"""

from alembic import op

from standby.store.schema import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The first release's schema is the metadata as shipped with it; later changes get
    # their own explicit revisions.
    metadata.create_all(op.get_bind())
