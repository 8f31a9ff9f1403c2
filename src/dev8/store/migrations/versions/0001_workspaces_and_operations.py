"""workspaces and operations

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

from dev8.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("image_ref", sa.String(512), nullable=False),
        sa.Column("image_id", sa.String(128), nullable=False),
        sa.Column("cpus", sa.Float, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("env", sa.JSON, nullable=False),
        sa.Column("secrets", sa.JSON, nullable=False),
        sa.Column("desired_state", sa.String(16), nullable=False),
        sa.Column("observed_state", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text, nullable=False),
        sa.Column("container_id", sa.String(128), nullable=True),
        sa.Column("ports", sa.JSON, nullable=False),
        sa.Column("host_ports", sa.JSON, nullable=False),
        sa.Column("fixed_ports", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_workspaces_owner_name", "workspaces", ["owner", "name"], unique=True)
    op.create_table(
        "operations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "workspace_id",
            sa.String(32),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_operations_workspace_id", "operations", ["workspace_id"])


def downgrade() -> None:
    op.drop_table("operations")
    op.drop_table("workspaces")
