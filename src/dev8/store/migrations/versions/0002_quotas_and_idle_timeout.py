"""per-workspace volume quotas, idle timeout and last activity

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from dev8.store.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as table:
        table.add_column(sa.Column("quotas", sa.JSON, nullable=False, server_default="{}"))
        table.add_column(sa.Column("idle_timeout_s", sa.Integer, nullable=True))
        table.add_column(sa.Column("last_activity_at", UTCDateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as table:
        table.drop_column("last_activity_at")
        table.drop_column("idle_timeout_s")
        table.drop_column("quotas")
