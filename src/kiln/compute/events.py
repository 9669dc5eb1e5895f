"""A cluster's event timeline: recording events and paging through them (`clusters/events`).

Pages are stable: the first request fixes `end_time`, and both `next_page` (the request body
for the next page, which databricks-sdk follows) and `next_page_token` carry it, so events
recorded while a client pages do not shift the pages it has yet to read.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.states import EventType
from kiln.errors import InvalidParameterValue
from kiln.store.models import ClusterEvent, now_utc, to_epoch_ms

__all__ = ["EventPage", "EventQuery", "add_event", "list_events"]

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def add_event(
    session: AsyncSession, cluster_id: str, event_type: EventType, **details: Any
) -> ClusterEvent:
    """Record one event (its details in Databricks' `EventDetails` field names)."""
    row = ClusterEvent(
        cluster_id=cluster_id,
        type=event_type.value,
        details={k: v for k, v in details.items() if v is not None},
        timestamp=now_utc(),
    )
    session.add(row)
    return row


@dataclass(frozen=True, slots=True)
class EventQuery:
    """One `clusters/events` request, validated."""

    cluster_id: str
    start_time: int | None = None
    end_time: int | None = None
    event_types: tuple[str, ...] = ()
    order: str = "DESC"
    offset: int = 0
    limit: int = DEFAULT_LIMIT
    tokens: bool = False  # the client pages with page_token rather than offset

    @classmethod
    def parse(cls, body: dict[str, Any]) -> EventQuery:
        """Validate a request body (either pagination style), or raise a 400."""
        order = str(body.get("order") or "DESC").upper()
        if order not in ("ASC", "DESC"):
            raise InvalidParameterValue("order must be ASC or DESC.")
        types = tuple(str(t) for t in body.get("event_types") or ())
        known = {t.value for t in EventType}
        for t in types:
            if t not in known:
                raise InvalidParameterValue(f"event_types: unknown event type {t!r}.")
        start, end = _ms(body, "start_time"), _ms(body, "end_time")
        if start is not None and end is not None and start > end:
            raise InvalidParameterValue("start_time must not be after end_time.")
        offset, limit, tokens = 0, DEFAULT_LIMIT, False
        if body.get("page_token"):
            tokens = True
            offset, token_end = _decode_token(str(body["page_token"]))
            end = token_end if token_end is not None else end
        elif body.get("offset") is not None:
            offset = _count(body, "offset")
        if body.get("page_size") is not None:
            tokens = True
            # Databricks clamps page_size into [0, 500]; 0 lets the server choose.
            limit = min(max(_count(body, "page_size", allow_negative=True), 0), MAX_LIMIT)
            limit = limit or DEFAULT_LIMIT
        elif body.get("limit") is not None:
            limit = _count(body, "limit")
            if not 1 <= limit <= MAX_LIMIT:
                raise InvalidParameterValue(f"limit must be between 1 and {MAX_LIMIT}.")
        return cls(str(body["cluster_id"]), start, end, types, order, offset, limit, tokens)


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of events and how to ask for the next."""

    events: list[ClusterEvent]
    total_count: int
    next_page: dict[str, Any] | None
    next_page_token: str
    prev_page_token: str


def _ms(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    return _count(body, key)


def _count(body: dict[str, Any], key: str, *, allow_negative: bool = False) -> int:
    value = body.get(key)
    if isinstance(value, bool):
        raise InvalidParameterValue(f"{key} must be an integer.")
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise InvalidParameterValue(f"{key} must be an integer.") from exc
    if number < 0 and not allow_negative:
        raise InvalidParameterValue(f"{key} must not be negative.")
    return number


def _encode_token(offset: int, end_time: int) -> str:
    raw = json.dumps({"o": offset, "e": end_time}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[int, int | None]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, end = data["o"], data.get("e")
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidParameterValue(f"Invalid page_token: {token!r}") from exc
    if not isinstance(offset, int) or offset < 0 or not isinstance(end, int | None):
        raise InvalidParameterValue(f"Invalid page_token: {token!r}")
    return offset, end


def _instant(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def list_events(session: AsyncSession, query: EventQuery) -> EventPage:
    """One page of a cluster's events, with the request for the next page."""
    # Fix the window's end on the first page, so later pages see the same events.
    end_ms = query.end_time if query.end_time is not None else to_epoch_ms(now_utc()) + 1
    where = [
        ClusterEvent.cluster_id == query.cluster_id,
        ClusterEvent.timestamp <= _instant(end_ms),
    ]
    if query.start_time is not None:
        where.append(ClusterEvent.timestamp >= _instant(query.start_time))
    if query.event_types:
        where.append(ClusterEvent.type.in_(query.event_types))
    total = await session.scalar(select(func.count()).select_from(ClusterEvent).where(*where)) or 0
    ordering = (
        (ClusterEvent.timestamp.asc(), ClusterEvent.id.asc())
        if query.order == "ASC"
        else (ClusterEvent.timestamp.desc(), ClusterEvent.id.desc())
    )
    rows = list(
        (
            await session.scalars(
                select(ClusterEvent)
                .where(*where)
                .order_by(*ordering)
                .offset(query.offset)
                .limit(query.limit)
            )
        ).all()
    )
    following = query.offset + len(rows)
    next_page: dict[str, Any] | None = None
    next_token = ""
    if following < total:
        next_token = _encode_token(following, end_ms)
        next_page = {"cluster_id": query.cluster_id, "order": query.order, "end_time": end_ms}
        if query.start_time is not None:
            next_page["start_time"] = query.start_time
        if query.event_types:
            next_page["event_types"] = list(query.event_types)
        if query.tokens:
            next_page.update(page_token=next_token, page_size=query.limit)
        else:
            next_page.update(offset=following, limit=query.limit)
    prev_token = (
        _encode_token(max(query.offset - query.limit, 0), end_ms) if query.offset > 0 else ""
    )
    return EventPage(rows, total, next_page, next_token, prev_token)
