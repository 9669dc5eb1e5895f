"""Model serving: endpoints (their live and pending configs) and the scorer processes Kiln runs.

An endpoint's `config` is the configuration that serves traffic; `pending_config` the one being
deployed (None when no update is in flight). Both hold Databricks' wire shape of an endpoint
config. A scorer process row is the PID record of one served entity's process, so a restarted
server can stop the processes an earlier one left.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["ScorerProcess", "ServingEndpoint"]


class ServingEndpoint(Base):
    __tablename__ = "serving_endpoints"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    creator: Mapped[str] = mapped_column(String(255))
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pending_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # EndpointStateReady and EndpointStateConfigUpdate values, exactly Databricks' strings.
    ready: Mapped[str] = mapped_column(String(32))
    config_update: Mapped[str] = mapped_column(String(32))
    # Why the last update failed (shown in the served entities' deployment state).
    state_message: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)


class ScorerProcess(Base):
    __tablename__ = "serving_scorer_processes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("serving_endpoints.id", ondelete="CASCADE"), index=True
    )
    served_entity: Mapped[str] = mapped_column(String(255))
    config_version: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int] = mapped_column(Integer)
    port: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=now_utc)
