"""The workspace model registry's Databricks additions that MLflow's store lacks.

Activities (stage transitions applied, requested, approved, rejected, cancelled; comments) on a
model version, and registry webhooks. A model version's stage itself lives in MLflow's registry
store; these rows name the model and version they belong to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["RegistryActivity", "RegistryWebhook"]


class RegistryActivity(Base):
    """One activity on a model version: a transition (applied, requested...) or a comment."""

    __tablename__ = "ml_registry_activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(256), index=True)
    version: Mapped[str] = mapped_column(String(32))
    # Databricks' ActivityType values (NEW_COMMENT for comments).
    activity_type: Mapped[str] = mapped_column(String(32))
    from_stage: Mapped[str | None] = mapped_column(String(32))
    to_stage: Mapped[str | None] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    system_comment: Mapped[str | None] = mapped_column(Text)
    # A REQUESTED_TRANSITION stays open until approved, rejected or cancelled.
    is_open: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)


class RegistryWebhook(Base):
    """A registry webhook: which events (of one model, or all) call which HTTP URL."""

    __tablename__ = "ml_registry_webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    model_name: Mapped[str | None] = mapped_column(String(256), index=True)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str | None] = mapped_column(Text)
    # RegistryWebhookStatus: ACTIVE, TEST_MODE or DISABLED.
    status: Mapped[str] = mapped_column(String(16))
    # HttpUrlSpec: url, secret (signs each payload), authorization, enable_ssl_verification.
    http_url_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)
