"""identities: who a user is at an identity provider (single sign-on), by issuer and subject

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

from dev8.store.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(32), primary_key=True),
        # NULL once the user is deleted: the identity stays, so that it cannot sign in again
        # as a new member.
        sa.Column(
            "user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column("issuer", sa.String(512), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("issuer", "subject", name="uq_identities_issuer_subject"),
    )


def downgrade() -> None:
    op.drop_table("identities")
