"""a dotfiles repository per user (account setting) and per workspace (override)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as table:
        table.add_column(
            sa.Column("dotfiles_repo", sa.String(512), nullable=False, server_default="")
        )
    # NULL: the owner's account setting applies; "": none for this workspace.
    with op.batch_alter_table("workspaces") as table:
        table.add_column(sa.Column("dotfiles_repo", sa.String(512), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as table:
        table.drop_column("dotfiles_repo")
    with op.batch_alter_table("users") as table:
        table.drop_column("dotfiles_repo")
