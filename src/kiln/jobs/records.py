"""The run driver's records between passes: what a pass changed on records it kept from the
last pass (outside any session, so that a flush does not visit every iteration of a for_each)
as Core statements, and the bookkeeping that makes the kept records hold the store's values
once those are committed.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, insert, inspect, update
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import set_committed_value

from kiln.store.db import Statement
from kiln.store.models import JobTaskOutput

__all__ = ["changes", "loaded_as_inserted", "mark_written", "outputs_insert"]

_INSERT_OUTPUTS = insert(cast(Table, JobTaskOutput.__table__))
# Each record class's column attributes.
_COLUMNS: dict[type, list[str]] = {}


def changes(records: list[Any]) -> tuple[list[Statement], list[tuple[Any, list[str]]]]:
    """UPDATE statements for what this pass changed on records kept from the last pass (which
    are in no session), and the attributes this pass set on each."""
    statements: list[Statement] = []
    written = []
    for record in records:
        state = inspect(record)
        if not state.detached:
            continue
        mapper = state.mapper
        columns = _COLUMNS.get(mapper.class_)
        if columns is None:
            columns = _COLUMNS[mapper.class_] = [p.key for p in mapper.column_attrs]
        unmodified = state.unmodified
        touched = [k for k in columns if k not in unmodified]
        if not touched:
            continue
        changed = tuple(k for k in touched if state.attrs[k].history.has_changes())
        if changed:
            parameters = {f"v_{k}": getattr(record, k) for k in changed}
            parameters["k_"] = state.identity[0]
            statements.append((_update(mapper.class_, changed), parameters))
        written.append((record, touched))
    return statements, written


@functools.cache
def _update(cls: type, keys: tuple[str, ...]) -> Executable:
    """UPDATE of these attributes of one record, by primary key (made once per shape)."""
    mapper: Mapper[Any] = inspect(cls)
    table = cast(Table, mapper.local_table)
    return (
        update(table)
        .where(mapper.primary_key[0] == bindparam("k_"))
        .values({mapper.columns[k]: bindparam(f"v_{k}") for k in keys})
    )


def mark_written(written: list[tuple[Any, list[str]]]) -> None:
    """What `changes` wrote is committed: the records hold the store's values (also those
    attributes that were set to the value they had)."""
    for record, keys in written:
        for key in keys:
            set_committed_value(record, key, getattr(record, key))


def loaded_as_inserted(created: list[Any]) -> None:
    """Give records just inserted the NULLs the store holds for what they did not set, so a
    later pass reads them without going back to the store."""
    for record in created:
        for key in inspect(record).unloaded:
            set_committed_value(record, key, None)


def outputs_insert(outputs: list[JobTaskOutput]) -> Statement:
    """One INSERT of task outputs (get-output's records)."""
    rows = [{"run_id": o.run_id, "output": o.output, "notebook": o.notebook} for o in outputs]
    return _INSERT_OUTPUTS, rows
