"""where the server reaches each workspace's agent, as its provider said

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as table:
        table.add_column(sa.Column("agent_url", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as table:
        table.drop_column("agent_url")
