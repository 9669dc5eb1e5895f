"""The declarative base and the column helpers every table shares."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

__all__ = ["Base", "UTCDateTime", "new_principal_id", "now_utc", "to_epoch_ms"]

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp; SQLite drops the zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        # SQLite keeps only the wall-clock time, so store every instant as UTC.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    """Base of every Kiln table."""

    metadata = MetaData(naming_convention=NAMING)
    # BIGINT ids on PostgreSQL; SQLite only auto-increments a column typed INTEGER.
    type_annotation_map = {
        datetime: UTCDateTime,
        int: BigInteger().with_variant(Integer(), "sqlite"),
    }


def now_utc() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def to_epoch_ms(value: datetime) -> int:
    """Databricks' wire form of a timestamp: milliseconds since the epoch."""
    return int(value.timestamp() * 1000)


def new_principal_id() -> int:
    """A random id for a user or group: unique across both, exact in JavaScript (< 2**53)."""
    return 10**15 + secrets.randbelow(2**53 - 10**15)
