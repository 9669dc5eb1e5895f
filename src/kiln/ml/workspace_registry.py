"""The workspace model registry's Databricks APIs that OSS MLflow lacks.

Stage transition requests (create, list, approve, reject, cancel), comments, the Databricks
stage transition (which records who moved a version and why) and the Databricks view of a
registered model. A version's stage lives in MLflow's registry store (so MLflow's own
`transition-stage` and `models:/name/Production` agree); the requests, comments and the
activity history live in Kiln's store (`RegistryActivity`). Every function that touches MLflow
runs its store calls in a thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import InvalidParameterValue, PermissionDenied, ResourceDoesNotExist
from kiln.ml.uc_registry import call_mlflow
from kiln.principal import Principal
from kiln.store.models import RegistryActivity, now_utc, to_epoch_ms

__all__ = [
    "ActivityType",
    "Stage",
    "approve_transition_request",
    "create_comment",
    "create_transition_request",
    "delete_comment",
    "delete_transition_request",
    "get_model_databricks",
    "list_transition_requests",
    "reject_transition_request",
    "transition_stage",
    "update_comment",
]

T = TypeVar("T")


class Stage(StrEnum):
    """A model version's stage (databricks-sdk `Stage`)."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, value: object) -> Stage:
        """A client's stage, matched without regard to case (as MLflow does), or a 400."""
        for stage in cls:
            if isinstance(value, str) and value.lower() == stage.value.lower():
                return stage
        raise InvalidParameterValue(
            f"Invalid stage {value!r}: expected one of None, Staging, Production, Archived."
        )


class ActivityType(StrEnum):
    """What an activity records (databricks-sdk `ActivityType`)."""

    APPLIED_TRANSITION = "APPLIED_TRANSITION"
    APPROVED_REQUEST = "APPROVED_REQUEST"
    CANCELLED_REQUEST = "CANCELLED_REQUEST"
    NEW_COMMENT = "NEW_COMMENT"
    REJECTED_REQUEST = "REJECTED_REQUEST"
    REQUESTED_TRANSITION = "REQUESTED_TRANSITION"
    SYSTEM_TRANSITION = "SYSTEM_TRANSITION"


async def _mlflow(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(call_mlflow, fn)


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterValue(f"Missing required parameter '{what}'.")
    return value


def _version_text(value: object) -> str:
    text = str(value) if isinstance(value, int | str) else ""
    if not text.isdigit() or int(text) < 1:
        raise InvalidParameterValue(f"Model version {value!r} is not a positive integer.")
    return str(int(text))


def _comment(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidParameterValue("comment must be a string.")
    return value or None


async def _model_version(store: Any, name: object, version: object) -> Any:
    """MLflow's model version (404 for an unknown model or version)."""
    model, number = _text(name, "name"), _version_text(version)
    return await _mlflow(lambda: store.get_model_version(model, number))


def _activity(row: RegistryActivity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row.id),
        "activity_type": row.activity_type,
        "user_id": row.user_name,
        "creation_timestamp": to_epoch_ms(row.created_at),
        "last_updated_timestamp": to_epoch_ms(row.updated_at),
    }
    for key in ("from_stage", "to_stage", "comment", "system_comment"):
        value = getattr(row, key)
        if value is not None:
            out[key] = value
    return out


def _request_actions(actor: Principal, row: RegistryActivity) -> list[str]:
    actions = ["APPROVE_TRANSITION_REQUEST", "REJECT_TRANSITION_REQUEST"]
    if actor.is_admin or actor.user_name == row.user_name:
        actions.append("CANCEL_TRANSITION_REQUEST")
    return actions


def _comment_object(actor: Principal, row: RegistryActivity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(row.id),
        "comment": row.comment,
        "user_id": row.user_name,
        "creation_timestamp": to_epoch_ms(row.created_at),
        "last_updated_timestamp": to_epoch_ms(row.updated_at),
    }
    if actor.is_admin or actor.user_name == row.user_name:
        out["available_actions"] = ["EDIT_COMMENT", "DELETE_COMMENT"]
    return out


async def _record(
    session: AsyncSession,
    actor: Principal,
    mv: Any,
    kind: ActivityType,
    *,
    to_stage: str | None = None,
    comment: str | None = None,
    system_comment: str | None = None,
    is_open: bool = False,
) -> RegistryActivity:
    now = now_utc()
    row = RegistryActivity(
        model_name=mv.name,
        version=str(mv.version),
        activity_type=kind.value,
        from_stage=mv.current_stage if to_stage is not None else None,
        to_stage=to_stage,
        user_name=actor.user_name,
        comment=comment,
        system_comment=system_comment,
        is_open=is_open,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def create_transition_request(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Request that a version move to a stage (`{"request": TransitionRequest}`)."""
    stage = Stage.parse(p.get("stage"))
    comment = _comment(p.get("comment"))
    mv = await _model_version(store, p.get("name"), p.get("version"))
    row = await _record(
        session, actor, mv, ActivityType.REQUESTED_TRANSITION, to_stage=stage, comment=comment
    )
    row.is_open = True
    await session.flush()
    request: dict[str, Any] = {
        "to_stage": stage.value,
        "user_id": actor.user_name,
        "creation_timestamp": to_epoch_ms(row.created_at),
        "available_actions": _request_actions(actor, row),
    }
    if comment is not None:
        request["comment"] = comment
    return {"request": request}


async def list_transition_requests(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """A version's open transition requests (`{"requests": [Activity]}`)."""
    mv = await _model_version(store, p.get("name"), p.get("version"))
    rows = await _open_requests(session, mv)
    return {"requests": [_activity(r) for r in rows]}


async def _open_requests(
    session: AsyncSession, mv: Any, stage: Stage | None = None
) -> list[RegistryActivity]:
    query = select(RegistryActivity).where(
        RegistryActivity.model_name == mv.name,
        RegistryActivity.version == str(mv.version),
        RegistryActivity.activity_type == ActivityType.REQUESTED_TRANSITION.value,
        RegistryActivity.is_open.is_(True),
    )
    if stage is not None:
        query = query.where(RegistryActivity.to_stage == stage.value)
    return list(await session.scalars(query.order_by(RegistryActivity.id)))


async def _close_request(
    session: AsyncSession, mv: Any, stage: Stage, creator: str | None = None
) -> RegistryActivity:
    rows = await _open_requests(session, mv, stage)
    if creator is not None:
        rows = [r for r in rows if r.user_name == creator]
    if not rows:
        by = f" by {creator}" if creator is not None else ""
        raise ResourceDoesNotExist(
            f"No open request{by} to transition version {mv.version} of model {mv.name} "
            f"to {stage.value}."
        )
    for row in rows:
        row.is_open = False
        row.updated_at = now_utc()
    return rows[0]


def _archive_existing(p: dict[str, Any]) -> bool:
    value = p.get("archive_existing_versions", False)
    if not isinstance(value, bool):
        raise InvalidParameterValue("archive_existing_versions must be a boolean.")
    return value


async def _transition(
    session: AsyncSession,
    store: Any,
    actor: Principal,
    mv: Any,
    stage: Stage,
    archive: bool,
    kind: ActivityType,
    comment: str | None,
) -> tuple[Any, RegistryActivity]:
    """Move the version in MLflow's store and record the activity (and the side effects)."""
    archived: list[Any] = []
    if archive and stage in (Stage.STAGING, Stage.PRODUCTION):
        found = await _mlflow(lambda: store.search_model_versions(f"name='{_quote(mv.name)}'"))
        archived = [v for v in found if v.current_stage == stage and v.version != mv.version]
    row = await _record(session, actor, mv, kind, to_stage=stage.value, comment=comment)
    moved = await _mlflow(
        lambda: store.transition_model_version_stage(mv.name, mv.version, stage.value, archive)
    )
    for other in archived:
        await _record(
            session,
            actor,
            other,
            ActivityType.SYSTEM_TRANSITION,
            to_stage=Stage.ARCHIVED.value,
            system_comment=(
                f"Version {other.version} archived when version {mv.version} moved to {stage}."
            ),
        )
    return moved, row


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


async def approve_transition_request(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Approve an open request: the version moves (`{"activity": Activity}`)."""
    stage = Stage.parse(p.get("stage"))
    archive = _archive_existing(p)
    comment = _comment(p.get("comment"))
    mv = await _model_version(store, p.get("name"), p.get("version"))
    await _close_request(session, mv, stage)
    _moved, row = await _transition(
        session, store, actor, mv, stage, archive, ActivityType.APPROVED_REQUEST, comment
    )
    return {"activity": _activity(row)}


async def reject_transition_request(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Reject an open request (`{"activity": Activity}`)."""
    stage = Stage.parse(p.get("stage"))
    comment = _comment(p.get("comment"))
    mv = await _model_version(store, p.get("name"), p.get("version"))
    await _close_request(session, mv, stage)
    row = await _record(
        session, actor, mv, ActivityType.REJECTED_REQUEST, to_stage=stage.value, comment=comment
    )
    return {"activity": _activity(row)}


async def delete_transition_request(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Cancel one's own open request (admins: anyone's) (`{"activity": Activity}`)."""
    stage = Stage.parse(p.get("stage"))
    creator = _text(p.get("creator"), "creator")
    comment = _comment(p.get("comment"))
    if creator != actor.user_name and not actor.is_admin:
        raise PermissionDenied(f"Only {creator} or an admin may cancel {creator}'s request.")
    mv = await _model_version(store, p.get("name"), p.get("version"))
    await _close_request(session, mv, stage, creator)
    row = await _record(
        session, actor, mv, ActivityType.CANCELLED_REQUEST, to_stage=stage.value, comment=comment
    )
    return {"activity": _activity(row)}


async def transition_stage(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Move a version to a stage now (`{"model_version_databricks": ...}`)."""
    stage = Stage.parse(p.get("stage"))
    archive = _archive_existing(p)
    comment = _comment(p.get("comment"))
    mv = await _model_version(store, p.get("name"), p.get("version"))
    moved, _row = await _transition(
        session, store, actor, mv, stage, archive, ActivityType.APPLIED_TRANSITION, comment
    )
    view = _model_version_databricks(moved)
    view["open_requests"] = [_activity(r) for r in await _open_requests(session, moved)]
    return {"model_version_databricks": view}


def _model_version_databricks(mv: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": mv.name,
        "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp,
        "current_stage": mv.current_stage,
        "source": mv.source,
        "status": mv.status,
        "permission_level": "CAN_MANAGE",
        "tags": [{"key": k, "value": v} for k, v in (mv.tags or {}).items()],
    }
    for key in ("description", "user_id", "run_id", "run_link", "status_message"):
        value = getattr(mv, key, None)
        if value:
            out[key] = value
    return out


async def get_model_databricks(store: Any, p: dict[str, Any]) -> dict[str, Any]:
    """A registered model with Databricks' extra fields (`{"registered_model_databricks": ...}`)."""
    name = _text(p.get("name"), "name")
    model = await _mlflow(lambda: store.get_registered_model(name))
    out: dict[str, Any] = {
        "name": model.name,
        "id": model.name,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "permission_level": "CAN_MANAGE",
        "latest_versions": [_model_version_databricks(v) for v in model.latest_versions or []],
        "tags": [{"key": k, "value": v} for k, v in (model.tags or {}).items()],
    }
    if model.description:
        out["description"] = model.description
    return {"registered_model_databricks": out}


async def create_comment(
    session: AsyncSession, store: Any, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Comment on a version (`{"comment": CommentObject}`)."""
    comment = _text(p.get("comment"), "comment")
    mv = await _model_version(store, p.get("name"), p.get("version"))
    row = await _record(session, actor, mv, ActivityType.NEW_COMMENT, comment=comment)
    return {"comment": _comment_object(actor, row)}


async def _own_comment(session: AsyncSession, actor: Principal, comment_id: object) -> Any:
    text = _text(comment_id if not isinstance(comment_id, int) else str(comment_id), "id")
    row = await session.get(RegistryActivity, int(text)) if text.isdigit() else None
    if row is None or row.activity_type != ActivityType.NEW_COMMENT:
        raise ResourceDoesNotExist(f"Comment {text} does not exist.")
    if row.user_name != actor.user_name and not actor.is_admin:
        raise PermissionDenied(f"Only {row.user_name} or an admin may change this comment.")
    return row


async def update_comment(
    session: AsyncSession, actor: Principal, p: dict[str, Any]
) -> dict[str, Any]:
    """Edit one's own comment (`{"comment": CommentObject}`)."""
    comment = _text(p.get("comment"), "comment")
    row = await _own_comment(session, actor, p.get("id"))
    row.comment = comment
    row.updated_at = now_utc()
    await session.flush()
    return {"comment": _comment_object(actor, row)}


async def delete_comment(session: AsyncSession, actor: Principal, p: dict[str, Any]) -> None:
    """Delete one's own comment."""
    row = await _own_comment(session, actor, p.get("id"))
    await session.delete(row)
    await session.flush()
