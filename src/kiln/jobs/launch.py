"""What a run of a saved job records when it starts, whoever starts it (run-now, the
scheduler, a run_job_task), and the principal a run acts as."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, PermissionDenied
from kiln.identity import ADMINS_GROUP
from kiln.identity.users import groups_of_user
from kiln.jobs.engine import NewRun
from kiln.jobs.states import RunType, TriggerType
from kiln.principal import Principal
from kiln.store.models import Job, User

__all__ = [
    "LEGACY_PARAMS",
    "can_manage",
    "job_run",
    "merge_parameters",
    "parameter_map",
    "require_manage",
    "run_as",
]

# run-now's per-task-kind parameters (deprecated by job parameters, still sent by clients).
LEGACY_PARAMS = (
    "notebook_params",
    "python_params",
    "python_named_params",
    "jar_params",
    "spark_submit_params",
    "sql_params",
    "dbt_commands",
    "pipeline_params",
)


def can_manage(principal: Principal, job: Job) -> bool:
    """Whether a principal may change, run or delete a job (its owner, or an admin)."""
    return principal.is_admin or (
        job.creator_id is not None and job.creator_id == principal.user_id
    )


def require_manage(principal: Principal, job: Job) -> None:
    """403 unless the principal may manage the job."""
    if not can_manage(principal, job):
        raise PermissionDenied(
            f"{principal.user_name} does not have Manage permissions on job {job.job_id}."
        )


async def run_as(session: AsyncSession, user_id: int | None, user_name: str) -> Principal:
    """The principal a run acts as (admin rights as its user has them now)."""
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None:
        return Principal(0, user_name or "unknown", False, "")
    groups = await groups_of_user(session, user.id)
    return Principal(
        user.id, user.user_name, any(g.display_name == ADMINS_GROUP for g in groups), ""
    )


def merge_parameters(
    definitions: list[dict[str, Any]], given: Mapping[str, Any] | None, where: str
) -> list[dict[str, Any]]:
    """A run's `job_parameters` ({name, default, value}) from the job's definitions and the
    values given for this run (400 for a name the job does not define)."""
    given = dict(given or {})
    names = {d["name"] for d in definitions}
    for name, value in given.items():
        if name not in names:
            raise InvalidParameterValue(f"{where}: the job has no parameter {name!r}.")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise InvalidParameterValue(f"{where}.{name}: must be a string.")
    out = []
    for d in definitions:
        item: dict[str, Any] = {"name": d["name"], "default": d["default"]}
        if d["name"] in given:
            value = given[d["name"]]
            item["value"] = value if isinstance(value, str) else str(value)
        out.append(item)
    return out


def parameter_map(job_parameters: list[dict[str, Any]]) -> dict[str, str]:
    """{name: value} of a run's job parameters (the default where none was given)."""
    return {p["name"]: str(p.get("value", p.get("default", ""))) for p in job_parameters}


def _legacy(overrides: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not overrides:
        return None
    out: dict[str, Any] = {}
    for name in LEGACY_PARAMS:
        value = overrides.get(name)
        if value is None:
            continue
        if name in ("notebook_params", "python_named_params", "sql_params"):
            if not isinstance(value, dict):
                raise InvalidParameterValue(f"{name} must be an object of strings.")
            out[name] = {str(k): v if isinstance(v, str) else str(v) for k, v in value.items()}
        elif name == "pipeline_params":
            out[name] = value
        else:
            if not isinstance(value, list):
                raise InvalidParameterValue(f"{name} must be an array of strings.")
            out[name] = [str(v) for v in value]
    return out or None


def job_run(
    job: Job,
    *,
    trigger: TriggerType,
    creator_user_name: str,
    job_parameters: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    idempotency_key: str | None = None,
    parent_run_id: int | None = None,
    parent_task_run_id: int | None = None,
    where: str = "job_parameters",
) -> NewRun:
    """A run of a saved job with its current settings."""
    settings = job.settings
    if not settings.get("tasks"):
        raise InvalidParameterValue(f"Job {job.job_id} has no tasks to run.")
    return NewRun(
        spec=settings,
        run_type=RunType.JOB_RUN.value,
        trigger=trigger.value,
        run_name=settings.get("name", ""),
        creator_user_name=creator_user_name,
        run_as_id=job.creator_id,
        run_as_user_name=job.run_as_user_name or job.creator_user_name,
        job_id=job.job_id,
        job_parameters=merge_parameters(settings.get("parameters", []), job_parameters, where),
        overriding_parameters=_legacy(overrides),
        idempotency_key=idempotency_key,
        parent_run_id=parent_run_id,
        parent_task_run_id=parent_task_run_id,
    )
