"""users.disabled_at: when an admin disabled the account (NULL: enabled)

A timestamp rather than a boolean: the same one column says whether and since when, which
the admin page shows, at no extra cost; nullable, so that every existing user stays enabled
without a default to backfill.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from dev8.store.models import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.add_column(sa.Column("disabled_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.drop_column("disabled_at")
