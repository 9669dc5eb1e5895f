"""Secret scopes, their encrypted values and their ACLs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["Secret", "SecretAcl", "SecretScope"]


class SecretScope(Base):
    __tablename__ = "secret_scopes"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    backend_type: Mapped[str] = mapped_column(String(32), default="DATABRICKS")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class Secret(Base):
    """A value encrypted with the data dir's key (Fernet); never stored in the clear."""

    __tablename__ = "secrets"
    __table_args__ = (UniqueConstraint("scope_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    scope_id: Mapped[int] = mapped_column(
        ForeignKey("secret_scopes.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(128))
    value_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime] = mapped_column(default=now_utc)


class SecretAcl(Base):
    __tablename__ = "secret_acls"
    __table_args__ = (UniqueConstraint("scope_id", "principal"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    scope_id: Mapped[int] = mapped_column(
        ForeignKey("secret_scopes.id", ondelete="CASCADE"), index=True
    )
    principal: Mapped[str] = mapped_column(String(255))
    permission: Mapped[str] = mapped_column(String(16))  # READ, WRITE, MANAGE
