"""Feature tables as the control plane knows them, and who produces and consumes them.

Producers are notebooks and jobs that created or wrote a table; consumers are model versions
logged with lookups of it and notebooks that built training sets from it. The client says which
notebook it runs in and which run (if any); a run of a job makes the job a producer as well.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, ResourceAlreadyExists, ResourceDoesNotExist
from kiln.ml.uc_registry import is_model_version
from kiln.paths import normalize_absolute_path
from kiln.store.models import (
    FeatureLineage,
    FeatureTableRecord,
    JobRun,
    JobTaskRun,
    WorkspaceObject,
    now_utc,
    to_epoch_ms,
)

__all__ = [
    "check_table_name",
    "create_table",
    "delete_table",
    "find_table",
    "get_table",
    "record_consumers",
    "record_write",
    "table_lineage",
]

_NAME = re.compile(r"^[A-Za-z0-9_]{1,255}\.[A-Za-z0-9_]{1,255}\.[A-Za-z0-9_]{1,255}$")
_COLUMN = re.compile(r"^[^`\x00-\x1f]{1,255}$")
_MODEL = re.compile(r"^[A-Za-z0-9_.\-]{1,512}$")
_RUN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PRODUCER, CONSUMER = "PRODUCER", "CONSUMER"
NOTEBOOK, JOB, MODEL = "NOTEBOOK", "JOB", "MODEL"


def check_table_name(name: Any) -> str:
    """A feature table's full name, lower case; INVALID_PARAMETER_VALUE if malformed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterValue(
            f"Invalid feature table name {name!r}: expected catalog.schema.table."
        )
    return name.lower()


def _columns(value: Any, field: str, *, required: bool) -> list[str]:
    if value is None:
        value = []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(
        isinstance(v, str) and _COLUMN.match(v) for v in value
    ):
        raise InvalidParameterValue(f"Field '{field}' must be a list of column names.")
    if required and not value:
        raise InvalidParameterValue(f"Field '{field}' must name at least one column.")
    if len(set(value)) != len(value):
        raise InvalidParameterValue(f"Field '{field}' names a column twice.")
    return list(value)


async def find_table(session: AsyncSession, name: Any) -> FeatureTableRecord:
    """A known feature table, or RESOURCE_DOES_NOT_EXIST."""
    row = await session.get(FeatureTableRecord, check_table_name(name))
    if row is None:
        raise ResourceDoesNotExist(f"Feature table '{name}' does not exist.")
    return row


async def _producers(
    session: AsyncSession, notebook_path: Any, run_id: Any
) -> list[tuple[str, str, str]]:
    """(kind, ref, detail) of the notebook and the job the client runs in."""
    out: list[tuple[str, str, str]] = []
    if notebook_path is not None:
        if not isinstance(notebook_path, str):
            raise InvalidParameterValue("Field 'notebook_path' must be a string.")
        out.append((NOTEBOOK, normalize_absolute_path(notebook_path), ""))
    if run_id is not None:
        if not isinstance(run_id, str | int) or not _RUN_ID.match(str(run_id)):
            raise InvalidParameterValue("Field 'run_id' must be a run id.")
        job_run_id = await _job_run_of(session, str(run_id))
        job_id = await session.scalar(select(JobRun.job_id).where(JobRun.run_id == job_run_id))
        if job_id is not None:
            out.append((JOB, str(job_id), str(job_run_id)))
    return out


async def _job_run_of(session: AsyncSession, run_id: str) -> int | None:
    """The job run a notebook run (or a task run, or a job run) id belongs to."""
    if run_id.isdigit():
        task_parent = await session.scalar(
            select(JobTaskRun.job_run_id).where(JobTaskRun.run_id == int(run_id))
        )
        return task_parent or int(run_id)
    # A notebook task's notebook run: its task run holds its id while it runs.
    running = await session.scalars(
        select(JobTaskRun).where(JobTaskRun.life_cycle_state == "RUNNING")
    )
    for task in running.all():
        if (task.checkpoint or {}).get("notebook_run_id") == run_id:
            return task.job_run_id
    return None


async def _record(
    session: AsyncSession, table: str, role: str, kind: str, ref: str, detail: str, action: str
) -> None:
    exists = await session.scalar(
        select(FeatureLineage.id).where(
            FeatureLineage.table_name == table,
            FeatureLineage.role == role,
            FeatureLineage.kind == kind,
            FeatureLineage.ref == ref,
            FeatureLineage.detail == detail,
        )
    )
    if exists is None:
        session.add(
            FeatureLineage(
                table_name=table, role=role, kind=kind, ref=ref, detail=detail, action=action
            )
        )


async def create_table(
    session: AsyncSession, creator: str, body: dict[str, Any]
) -> FeatureTableRecord:
    """Record a new feature table and its creating notebook or job."""
    name = check_table_name(body.get("name"))
    keys = _columns(body.get("primary_keys"), "primary_keys", required=True)
    ts_keys = _columns(body.get("timestamp_keys"), "timestamp_keys", required=False)
    if len(ts_keys) > 1:
        raise InvalidParameterValue("A feature table has at most one timestamp key.")
    if set(keys) & set(ts_keys):
        raise InvalidParameterValue("A timestamp key cannot also be a primary key.")
    description = body.get("description")
    if description is not None and not isinstance(description, str):
        raise InvalidParameterValue("Field 'description' must be a string.")
    producers = await _producers(session, body.get("notebook_path"), body.get("run_id"))
    if await session.get(FeatureTableRecord, name) is not None:
        raise ResourceAlreadyExists(f"Feature table '{name}' already exists.")
    row = FeatureTableRecord(
        name=name,
        id=uuid.uuid4().hex,
        primary_keys=keys,
        timestamp_keys=ts_keys,
        description=description,
        creator=creator,
        online_stores=[],
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise ResourceAlreadyExists(f"Feature table '{name}' already exists.") from None
    for kind, ref, detail in producers:
        await _record(session, name, PRODUCER, kind, ref, detail, "CREATE")
    return row


async def record_write(session: AsyncSession, body: dict[str, Any]) -> FeatureTableRecord:
    """Record a write of a feature table by the client's notebook or job."""
    row = await find_table(session, body.get("name"))
    producers = await _producers(session, body.get("notebook_path"), body.get("run_id"))
    row.updated_at = now_utc()
    for kind, ref, detail in producers:
        await _record(session, row.name, PRODUCER, kind, ref, detail, "WRITE")
    return row


async def record_consumers(session: AsyncSession, body: dict[str, Any]) -> None:
    """Record a training set (its notebook) or a logged model version using some tables."""
    names = body.get("names")
    if not isinstance(names, list) or not names:
        raise InvalidParameterValue("Field 'names' must be a non-empty list of feature tables.")
    rows = [await find_table(session, n) for n in names]
    users = [(k, r, d) for k, r, d in await _producers(session, body.get("notebook_path"), None)]
    action = "TRAINING_SET"
    model, version = body.get("model_name"), body.get("model_version")
    if model is not None or version is not None:
        if not isinstance(model, str) or not _MODEL.match(model):
            raise InvalidParameterValue(f"Invalid model_name {model!r}.")
        if not is_model_version(version):
            raise InvalidParameterValue(f"Invalid model_version {version!r}.")
        users.append((MODEL, model, str(version)))
        action = "LOG_MODEL"
    for row in rows:
        for kind, ref, detail in users:
            await _record(session, row.name, CONSUMER, kind, ref, detail, action)


async def delete_table(session: AsyncSession, name: Any) -> None:
    """Forget a feature table and its lineage."""
    row = await find_table(session, name)
    for lineage in (
        await session.scalars(select(FeatureLineage).where(FeatureLineage.table_name == row.name))
    ).all():
        await session.delete(lineage)
    await session.delete(row)


async def _lineage(session: AsyncSession, table: str) -> list[FeatureLineage]:
    rows = await session.scalars(
        select(FeatureLineage).where(FeatureLineage.table_name == table).order_by(FeatureLineage.id)
    )
    return list(rows.all())


async def _notebook_ids(session: AsyncSession, paths: set[str]) -> dict[str, int]:
    if not paths:
        return {}
    rows = await session.execute(
        select(WorkspaceObject.path, WorkspaceObject.id).where(WorkspaceObject.path.in_(paths))
    )
    return {path: oid for path, oid in rows.all()}


async def get_table(session: AsyncSession, name: Any) -> dict[str, Any]:
    """The table in Databricks' FeatureTable shape, with its notebook and job producers."""
    row = await find_table(session, name)
    lineage = [r for r in await _lineage(session, row.name) if r.role == PRODUCER]
    ids = await _notebook_ids(session, {r.ref for r in lineage if r.kind == NOTEBOOK})
    return {
        "name": row.name,
        "id": row.id,
        "primary_keys": row.primary_keys,
        "timestamp_keys": row.timestamp_keys,
        "description": row.description or "",
        "creator_id": row.creator,
        "creation_timestamp": to_epoch_ms(row.created_at),
        "last_updated_timestamp": to_epoch_ms(row.updated_at),
        "notebook_producers": [
            {
                "notebook_id": ids.get(r.ref),
                "notebook_path": r.ref,
                "creation_timestamp": to_epoch_ms(r.created_at),
                "producer_action": r.action,
            }
            for r in lineage
            if r.kind == NOTEBOOK
        ],
        "job_producers": [
            {
                "job_id": int(r.ref),
                "run_id": int(r.detail),
                "creation_timestamp": to_epoch_ms(r.created_at),
                "producer_action": r.action,
            }
            for r in lineage
            if r.kind == JOB
        ],
        "online_stores": row.online_stores or [],
    }


async def table_lineage(session: AsyncSession, name: Any) -> dict[str, Any]:
    """Who consumes the table: model versions and notebooks."""
    row = await find_table(session, name)
    lineage = [r for r in await _lineage(session, row.name) if r.role == CONSUMER]
    ids = await _notebook_ids(session, {r.ref for r in lineage if r.kind == NOTEBOOK})
    return {
        "name": row.name,
        "models": [
            {"name": r.ref, "version": r.detail, "creation_timestamp": to_epoch_ms(r.created_at)}
            for r in lineage
            if r.kind == MODEL
        ],
        "notebooks": [
            {
                "notebook_id": ids.get(r.ref),
                "notebook_path": r.ref,
                "creation_timestamp": to_epoch_ms(r.created_at),
            }
            for r in lineage
            if r.kind == NOTEBOOK
        ],
    }
