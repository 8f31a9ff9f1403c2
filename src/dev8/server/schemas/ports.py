"""Shared ports: who may open a workspace port's own URL (subdomain mode)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from dev8.server.schemas.base import Input
from dev8.store.ports import Sharing


class PortSharingUpdate(Input):
    sharing: Sharing = Field(
        description="private: the owner only; authenticated: any signed-in user; public: "
        "anyone, without signing in. The server's max_port_sharing caps it."
    )


class PortPublic(BaseModel):
    port: int
    sharing: Sharing
    url: str | None = Field(description="The port's own address; none without subdomain mode.")
    updated_at: datetime | None
