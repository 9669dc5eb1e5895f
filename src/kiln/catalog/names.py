"""Catalog object names: validation and three-level full names (`catalog.schema.object`)."""

from __future__ import annotations

import re

from kiln.errors import InvalidParameterValue

__all__ = [
    "DEFAULT_CATALOG",
    "DEFAULT_SCHEMA",
    "HIVE_METASTORE",
    "MAX_NAME_LENGTH",
    "split_full_name",
    "validate_name",
]

DEFAULT_CATALOG = "main"
DEFAULT_SCHEMA = "default"
# Two-level names (`schema.table`) and the legacy metastore live here, as on Databricks.
HIVE_METASTORE = "hive_metastore"
MAX_NAME_LENGTH = 255
# Unity Catalog refuses periods, spaces, slashes and control characters in a name; Kiln keeps
# to the characters every client can quote without surprises.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def validate_name(kind: str, name: str | None) -> str:
    """`name` lower-cased if it is a valid catalog, schema, table or volume name, else a 400."""
    if not name:
        raise InvalidParameterValue(f"A {kind} name is required.")
    if len(name) > MAX_NAME_LENGTH or not _NAME.fullmatch(name):
        raise InvalidParameterValue(
            f"Invalid {kind} name {name[: MAX_NAME_LENGTH + 1]!r}: use 1 to {MAX_NAME_LENGTH} "
            "letters, digits, underscores and dashes (no periods, spaces or slashes)."
        )
    return name.lower()


def split_full_name(kind: str, full_name: str, parts: int) -> tuple[str, ...]:
    """The `parts` validated, lower-cased segments of a dotted full name, else a 400."""
    segments = full_name.split(".") if full_name else []
    if len(segments) != parts:
        shape = ".".join(("catalog", "schema", kind)[3 - parts :])
        raise InvalidParameterValue(
            f"Invalid {kind} full name {full_name!r}: expected the form {shape}."
        )
    kinds = ("catalog", "schema", kind)[3 - parts :]
    return tuple(validate_name(k, s) for k, s in zip(kinds, segments, strict=True))
