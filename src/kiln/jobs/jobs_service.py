"""The Jobs API's job operations: create, get, list, update, reset, delete.

A job's settings are validated whole (`kiln.jobs.spec`, then `kiln.jobs.checks` against the
store) before anything is written, so a bad request creates nothing. Changing a schedule
moves the job's next tick in the same transaction, and the scheduler is woken after commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue
from kiln.jobs.checks import check_settings, next_fire
from kiln.jobs.engine import new_id
from kiln.jobs.launch import require_manage
from kiln.jobs.spec import merge_update, parse_job_settings
from kiln.jobs.states import ACTIVE_RUN_STATES, LifeCycleState
from kiln.paging import decode_page_token, encode_page_token
from kiln.principal import Principal
from kiln.store.models import Job, JobRun, now_utc

if TYPE_CHECKING:
    from kiln.jobs.service import Jobs

__all__ = [
    "JobPage",
    "create_job",
    "delete_job",
    "get_job",
    "list_jobs",
    "parse_job_id",
    "reset_job",
    "update_job",
]

MAX_LIST_LIMIT = 100
DEFAULT_LIST_LIMIT = 20


def parse_job_id(raw: object, what: str = "job_id") -> int:
    """A job id: an integer, or its decimal text (the legacy CLI sends strings)."""
    if isinstance(raw, bool):
        raise InvalidParameterValue(f"{what} must be an integer.")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and raw.strip().isdigit():
        value = int(raw.strip())
    elif raw is None:
        raise InvalidParameterValue(f"{what} is required.")
    else:
        raise InvalidParameterValue(f"{what} must be an integer.")
    if value <= 0:
        raise InvalidParameterValue(f"{what} must be a positive integer.")
    return value


async def get_job(session: AsyncSession, job_id: object) -> Job:
    """A job (400 INVALID_PARAMETER_VALUE "Job <id> does not exist." as on Databricks)."""
    jid = parse_job_id(job_id)
    job = await session.get(Job, jid, populate_existing=True)
    if job is None:
        raise InvalidParameterValue(f"Job {jid} does not exist.")
    return job


def _run_as(principal: Principal, raw: object) -> str:
    if raw is None:
        return principal.user_name
    if not isinstance(raw, dict):
        raise InvalidParameterValue("run_as must be an object.")
    name = raw.get("user_name") or raw.get("service_principal_name")
    if name not in (None, principal.user_name):
        raise InvalidParameterValue(
            "run_as: a Kiln job runs as the user who owns it; run_as may only name yourself."
        )
    return principal.user_name


async def create_job(
    session: AsyncSession, jobs: Jobs, principal: Principal, body: dict[str, Any]
) -> int:
    """Validate and save a job; its id."""
    settings = parse_job_settings(body)
    run_as_name = _run_as(principal, body.get("run_as"))
    await check_settings(session, jobs.engine.clusters, principal, settings)
    now = now_utc()
    job = Job(
        job_id=new_id(),
        creator_id=principal.user_id or None,
        creator_user_name=principal.user_name,
        run_as_user_name=run_as_name,
        name=settings["name"],
        settings=settings,
        created_at=now,
        updated_at=now,
        next_fire_at=next_fire(settings, now),
    )
    session.add(job)
    await session.flush()
    jobs.wake_scheduler_after_commit(session)
    return job.job_id


async def _replace(
    session: AsyncSession, jobs: Jobs, principal: Principal, job: Job, raw: dict[str, Any]
) -> None:
    settings = parse_job_settings(raw)
    await check_settings(session, jobs.engine.clusters, principal, settings, own_job_id=job.job_id)
    before = job.settings.get("schedule")
    job.settings = settings
    job.name = settings["name"]
    now = now_utc()
    job.updated_at = now
    if settings.get("schedule") != before:
        job.next_fire_at = next_fire(settings, now)
    await session.flush()
    jobs.wake_scheduler_after_commit(session)
    jobs.admit_after_commit(session, job.job_id)


async def update_job(
    session: AsyncSession,
    jobs: Jobs,
    principal: Principal,
    job_id: object,
    new_settings: object,
    fields_to_remove: object,
) -> None:
    """`jobs/update`: merge the new settings into the job's (tasks and job clusters by key)."""
    job = await get_job(session, job_id)
    require_manage(principal, job)
    merged = merge_update(job.settings, new_settings, fields_to_remove)
    await _replace(session, jobs, principal, job, merged)


async def reset_job(
    session: AsyncSession, jobs: Jobs, principal: Principal, job_id: object, new_settings: object
) -> None:
    """`jobs/reset`: replace the job's settings whole."""
    job = await get_job(session, job_id)
    require_manage(principal, job)
    if not isinstance(new_settings, dict):
        raise InvalidParameterValue("new_settings is required.")
    await _replace(session, jobs, principal, job, new_settings)


async def delete_job(
    session: AsyncSession, jobs: Jobs, principal: Principal, job_id: object
) -> None:
    """Delete a job; its active runs are canceled once the deletion commits."""
    job = await get_job(session, job_id)
    require_manage(principal, job)
    active = (
        await session.scalars(
            select(JobRun.run_id).where(
                JobRun.job_id == job.job_id,
                JobRun.life_cycle_state.in_(
                    [s.value for s in ACTIVE_RUN_STATES] + [LifeCycleState.QUEUED.value]
                ),
            )
        )
    ).all()
    await session.delete(job)
    await session.flush()
    jobs.wake_scheduler_after_commit(session)
    jobs.cancel_after_commit(session, list(active))


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of jobs/list."""

    jobs: list[Job]
    has_more: bool
    next_page_token: str | None
    prev_page_token: str | None


def _limit(raw: object, default: int, high: int, what: str = "limit") -> int:
    if raw is None:
        return default
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidParameterValue(f"{what} must be an integer.") from None
    if value == 0:
        return high
    if not 1 <= value <= high:
        raise InvalidParameterValue(f"{what} must be between 1 and {high} (got {value}).")
    return value


def _offset(raw: object, token: object) -> int:
    if token:
        return decode_page_token(str(token))
    if raw is None:
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidParameterValue("offset must be an integer.") from None
    if value < 0:
        raise InvalidParameterValue("offset must be >= 0.")
    return value


async def list_jobs(
    session: AsyncSession,
    *,
    limit: object = None,
    offset: object = None,
    page_token: object = None,
    name: object = None,
) -> JobPage:
    """Jobs, newest first, one page (name filters on the exact name, ignoring case)."""
    size = _limit(limit, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)
    start = _offset(offset, page_token)
    query = select(Job)
    if name:
        query = query.where(func.lower(Job.name) == str(name).lower())
    query = query.order_by(Job.created_at.desc(), Job.job_id.desc()).offset(start).limit(size + 1)
    rows = list((await session.scalars(query)).all())
    more = len(rows) > size
    rows = rows[:size]
    return JobPage(
        jobs=rows,
        has_more=more,
        next_page_token=encode_page_token(start + size) if more else None,
        prev_page_token=encode_page_token(max(0, start - size)) if start > 0 else None,
    )
