"""server: users, API tokens, audit log, operation events, the operation queue

Operations outlive a purged workspace (their workspace id becomes NULL) and carry the owner
and name of the workspace, the parameters they were asked with, what they produced, and how
many times the reconciler tried them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

from dev8.store.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FK_NAME = "fk_operations_workspace_id_workspaces"
# 0001 created the foreign key without a name: PostgreSQL named it, SQLite did not.
NAMING = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _old_fk_name() -> str:
    return (
        "operations_workspace_id_fkey" if op.get_context().dialect.name == "postgresql" else FK_NAME
    )


def upgrade() -> None:
    with op.batch_alter_table("operations", naming_convention=NAMING) as table:
        table.drop_constraint(_old_fk_name(), type_="foreignkey")
        table.alter_column("workspace_id", existing_type=sa.String(32), nullable=True)
        table.create_foreign_key(
            FK_NAME, "workspaces", ["workspace_id"], ["id"], ondelete="SET NULL"
        )
        table.add_column(sa.Column("owner", sa.String(255), nullable=False, server_default=""))
        table.add_column(
            sa.Column("workspace_name", sa.String(63), nullable=False, server_default="")
        )
        table.add_column(sa.Column("params", sa.JSON, nullable=False, server_default="{}"))
        table.add_column(sa.Column("outcome", sa.JSON, nullable=False, server_default="{}"))
        table.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        table.create_index("ix_operations_result", ["result"])
    for column, source in (("owner", "owner"), ("workspace_name", "name")):
        op.execute(
            f"UPDATE operations SET {column} = (SELECT {source} FROM workspaces"
            " WHERE workspaces.id = operations.workspace_id) WHERE workspace_id IS NOT NULL"
        )
    op.create_table(
        "operation_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "operation_id",
            sa.String(32),
            sa.ForeignKey("operations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_operation_events_operation_id", "operation_events", ["operation_id"])
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("ssh_keys", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.String(32), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2048), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("operation_events")
    # Operations of purged workspaces cannot point anywhere under the old schema.
    op.execute("DELETE FROM operations WHERE workspace_id IS NULL")
    with op.batch_alter_table("operations", naming_convention=NAMING) as table:
        table.drop_index("ix_operations_result")
        for column in ("attempts", "outcome", "params", "workspace_name", "owner"):
            table.drop_column(column)
        table.drop_constraint(FK_NAME, type_="foreignkey")
        table.alter_column("workspace_id", existing_type=sa.String(32), nullable=False)
        table.create_foreign_key(
            "operations_workspace_id_fkey"
            if op.get_context().dialect.name == "postgresql"
            else FK_NAME,
            "workspaces",
            ["workspace_id"],
            ["id"],
            ondelete="CASCADE",
        )
