"""Database tables. Schema changes go through an Alembic migration in ``migrations/``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class Base(DeclarativeBase):
    pass


class WorkspaceRow(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    owner: Mapped[str] = mapped_column(String(255))
    image_ref: Mapped[str] = mapped_column(String(512))
    image_id: Mapped[str] = mapped_column(String(128))
    cpus: Mapped[float] = mapped_column(Float)
    memory_mb: Mapped[int] = mapped_column(Integer)
    env: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    secrets: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    desired_state: Mapped[str] = mapped_column(String(16))
    observed_state: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    container_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ports: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    agent_url: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host_ports: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    fixed_ports: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    quotas: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    idle_timeout_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # NULL: the owner's account setting applies; "": no dotfiles for this workspace.
    dotfiles_repo: Mapped[str | None] = mapped_column(String(512), nullable=True)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # Unique per owner among live workspaces; a removed one keeps its row (and its name, so
    # `up` with that name adopts its volumes) until purged.
    __table_args__ = (Index("ix_workspaces_owner_name", "owner", "name", unique=True),)


class OperationRow(Base):
    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # NULL once the workspace is purged: the record of what happened to it stays.
    workspace_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("workspaces.id", ondelete="SET NULL"), index=True, nullable=True
    )
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(255))
    result: Mapped[str] = mapped_column(String(16), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    owner: Mapped[str] = mapped_column(String(255), default="")
    workspace_name: Mapped[str] = mapped_column(String(63), default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class OperationEventRow(Base):
    __tablename__ = "operation_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("operations.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    message: Mapped[str] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    ssh_keys: Mapped[str] = mapped_column(Text, default="")
    dotfiles_repo: Mapped[str] = mapped_column(String(512), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ApiTokenRow(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class AuditRow(Base):
    """One mutating API request. No foreign keys: the record outlives users and workspaces."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    status: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text, default="")


class SharedPortRow(Base):
    """A port of a workspace shared beyond its owner (subdomain mode). No row: private."""

    __tablename__ = "shared_ports"

    workspace_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    port: Mapped[int] = mapped_column(Integer, primary_key=True)
    sharing: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class IdentityRow(Base):
    """Who a user is at an identity provider: ``issuer`` and ``subject`` name them, never the
    email (which a provider may let its users change)."""

    __tablename__ = "identities"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # NULL once the user is deleted: that identity may not come back as a new member.
    user_id: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("users.id", ondelete="SET NULL"), index=True, nullable=True
    )
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (UniqueConstraint("issuer", "subject", name="uq_identities_issuer_subject"),)
