"""Durable state of DBFS streaming handles and Files API multipart uploads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from kiln.store.models.base import Base, now_utc

__all__ = ["DbfsHandle", "FileUpload"]


class DbfsHandle(Base):
    """An open `dbfs/create` handle; blocks go to a staging file until `close` publishes it."""

    __tablename__ = "dbfs_handles"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(String(4096))
    staging_path: Mapped[str] = mapped_column(String(4096))
    overwrite: Mapped[bool] = mapped_column(default=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)


class FileUpload(Base):
    """A Files API multipart upload session (databricks-sdk's handshake for large files)."""

    __tablename__ = "file_uploads"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_token: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(4096))
    staging_dir: Mapped[str] = mapped_column(String(4096))
    overwrite: Mapped[bool] = mapped_column(default=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=now_utc)
