"""Registry webhooks: which workspace-registry events call which HTTP URL, and their delivery.

A webhook listens to some events of one model (or, without `model_name`, of every model) and
POSTs Databricks' JSON payload to its URL, signed with HMAC-SHA256 of the body under its secret
(header `X-Databricks-Signature`). Deliveries run as background tasks with a short timeout: an
API call that triggers an event never waits for (or fails because of) a receiver. A webhook's
secret and authorization are stored encrypted with the workspace key, and never returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import BadRequest, InvalidParameterValue, ResourceDoesNotExist
from kiln.paging import decode_page_token, encode_page_token
from kiln.secrets import SecretBox
from kiln.store import Database
from kiln.store.models import RegistryWebhook, now_utc, to_epoch_ms

__all__ = [
    "EVENTS",
    "WebhookDispatcher",
    "create_webhook",
    "delete_webhook",
    "get_webhook",
    "list_webhooks",
    "mlflow_events",
    "payload",
    "sign",
    "stage_events",
    "update_webhook",
]

log = logging.getLogger(__name__)

EVENTS = frozenset(
    {
        "MODEL_VERSION_CREATED",
        "MODEL_VERSION_TRANSITIONED_STAGE",
        "TRANSITION_REQUEST_CREATED",
        "COMMENT_CREATED",
        "REGISTERED_MODEL_CREATED",
        "MODEL_VERSION_TAG_SET",
        "MODEL_VERSION_TRANSITIONED_TO_STAGING",
        "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
        "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED",
        "TRANSITION_REQUEST_TO_STAGING_CREATED",
        "TRANSITION_REQUEST_TO_PRODUCTION_CREATED",
        "TRANSITION_REQUEST_TO_ARCHIVED_CREATED",
    }
)
STATUSES = ("ACTIVE", "TEST_MODE", "DISABLED")
DELIVERY_TIMEOUT_S = 5.0
MAX_RESULTS = 100
SIGNATURE_HEADER = "X-Databricks-Signature"


def stage_events(kind: str, stage: str) -> list[str]:
    """A transition's (or request's) events: the general one and the per-stage one, if any."""
    general = {
        "transition": "MODEL_VERSION_TRANSITIONED_STAGE",
        "request": "TRANSITION_REQUEST_CREATED",
    }[kind]
    upper = stage.upper()
    if upper not in ("STAGING", "PRODUCTION", "ARCHIVED"):
        return [general]
    if kind == "transition":
        return [general, f"MODEL_VERSION_TRANSITIONED_TO_{upper}"]
    return [general, f"TRANSITION_REQUEST_TO_{upper}_CREATED"]


def sign(secret: str, body: bytes) -> str:
    """The `X-Databricks-Signature` of a payload: HMAC-SHA256 under the secret, hex."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def payload(event: str, webhook_id: str, data: dict[str, Any]) -> bytes:
    """The JSON body POSTed for one event to one webhook."""
    body = {"event": event, "webhook_id": webhook_id, "event_timestamp": to_epoch_ms(now_utc())}
    body.update({k: v for k, v in data.items() if v is not None})
    return json.dumps(body).encode()


def mlflow_events(
    op: str, request: dict[str, Any], response: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """The events (and their data) of one successful call to MLflow's own registry handlers."""
    found = response.get("model_version")
    mv: dict[str, Any] = found if isinstance(found, dict) else {}
    if op == "registered-models/create":
        return ["REGISTERED_MODEL_CREATED"], {"model_name": request.get("name")}
    if op == "model-versions/create":
        return ["MODEL_VERSION_CREATED"], {
            "model_name": mv.get("name"),
            "version": mv.get("version"),
        }
    if op == "model-versions/transition-stage":
        stage = str(mv.get("current_stage") or request.get("stage") or "")
        data = {"model_name": mv.get("name"), "version": mv.get("version"), "to_stage": stage}
        return stage_events("transition", stage), data
    if op == "model-versions/set-tag":
        tag = {"key": request.get("key"), "value": request.get("value")}
        data = {
            "model_name": request.get("name"),
            "version": str(request.get("version")),
            "tags": [tag],
        }
        return ["MODEL_VERSION_TAG_SET"], data
    return [], {}


def _events(value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(e, str) for e in items):
        raise InvalidParameterValue("events must be a non-empty list of registry webhook events.")
    unknown = sorted(set(items) - EVENTS)
    if unknown:
        raise InvalidParameterValue(f"Unknown registry webhook event(s): {', '.join(unknown)}.")
    return list(dict.fromkeys(items))


def _status(value: object) -> str:
    if value not in STATUSES:
        raise InvalidParameterValue(f"Invalid status {value!r}: expected one of {STATUSES}.")
    return str(value)


def _text(value: object, what: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidParameterValue(f"{what} must be a string.")
    return value


def _url_spec(box: SecretBox, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidParameterValue("http_url_spec must be an object with a url.")
    url = value.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidParameterValue(f"http_url_spec.url {url!r} is not an http or https URL.")
    ssl = value.get("enable_ssl_verification", True)
    if not isinstance(ssl, bool):
        raise InvalidParameterValue("http_url_spec.enable_ssl_verification must be a boolean.")
    spec: dict[str, Any] = {"url": url, "enable_ssl_verification": ssl}
    for key in ("secret", "authorization"):
        secret = _text(value.get(key), f"http_url_spec.{key}")
        if secret:
            spec[key] = box.encrypt(secret.encode()).decode()
    return spec


def _view(row: RegistryWebhook) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id,
        "events": row.events,
        "status": row.status,
        "http_url_spec": {
            "url": row.http_url_spec["url"],
            "enable_ssl_verification": row.http_url_spec["enable_ssl_verification"],
        },
        "creation_timestamp": to_epoch_ms(row.created_at),
        "last_updated_timestamp": to_epoch_ms(row.updated_at),
    }
    if row.model_name is not None:
        out["model_name"] = row.model_name
    if row.description:
        out["description"] = row.description
    return out


def _check_scope(events: list[str], model_name: str | None) -> None:
    if model_name is not None and "REGISTERED_MODEL_CREATED" in events:
        raise InvalidParameterValue(
            "REGISTERED_MODEL_CREATED can only be used by a registry-wide webhook (no model_name)."
        )


def _no_job_spec(p: dict[str, Any]) -> None:
    if p.get("job_spec") is not None:
        raise InvalidParameterValue(
            "Kiln's registry webhooks call HTTP URLs; job_spec is not supported."
        )


async def create_webhook(
    session: AsyncSession, box: SecretBox, p: dict[str, Any], model_exists: bool
) -> dict[str, Any]:
    """Create a webhook (`{"webhook": RegistryWebhook}`); `model_exists` for its model_name."""
    events = _events(p.get("events"))
    model_name = _text(p.get("model_name"), "model_name") or None
    _check_scope(events, model_name)
    if model_name is not None and not model_exists:
        raise ResourceDoesNotExist(f"Registered model {model_name} does not exist.")
    _no_job_spec(p)
    now = now_utc()
    row = RegistryWebhook(
        id=uuid.uuid4().hex,
        model_name=model_name,
        events=events,
        description=_text(p.get("description"), "description"),
        status=_status(p.get("status", "ACTIVE")),
        http_url_spec=_url_spec(box, p.get("http_url_spec")),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return {"webhook": _view(row)}


async def get_webhook(session: AsyncSession, webhook_id: object) -> RegistryWebhook:
    """The webhook with this id, or RESOURCE_DOES_NOT_EXIST."""
    if not isinstance(webhook_id, str) or not webhook_id:
        raise InvalidParameterValue("Missing required parameter 'id'.")
    row = await session.get(RegistryWebhook, webhook_id)
    if row is None:
        raise ResourceDoesNotExist(f"Webhook {webhook_id} does not exist.")
    return row


async def update_webhook(
    session: AsyncSession, box: SecretBox, p: dict[str, Any]
) -> dict[str, Any]:
    """Change a webhook's events, URL, description or status (`{"webhook": ...}`)."""
    row = await get_webhook(session, p.get("id"))
    _no_job_spec(p)
    if p.get("events") is not None:
        events = _events(p.get("events"))
        _check_scope(events, row.model_name)
        row.events = events
    if p.get("http_url_spec") is not None:
        row.http_url_spec = _url_spec(box, p.get("http_url_spec"))
    if p.get("description") is not None:
        row.description = _text(p.get("description"), "description")
    if p.get("status") is not None:
        row.status = _status(p.get("status"))
    row.updated_at = now_utc()
    await session.flush()
    return {"webhook": _view(row)}


async def delete_webhook(session: AsyncSession, p: dict[str, Any]) -> None:
    """Delete a webhook."""
    row = await get_webhook(session, p.get("id"))
    await session.delete(row)
    await session.flush()


async def list_webhooks(session: AsyncSession, p: dict[str, Any]) -> dict[str, Any]:
    """Webhooks, optionally of one model and listening to any of some events, paged."""
    events = _events(p["events"]) if p.get("events") else None
    model_name = _text(p.get("model_name"), "model_name")
    raw = p.get("max_results", MAX_RESULTS)
    try:
        limit = int(raw)
    except (TypeError, ValueError):
        raise InvalidParameterValue(f"Invalid max_results {raw!r}.") from None
    if not 1 <= limit <= MAX_RESULTS:
        raise InvalidParameterValue(f"max_results must be between 1 and {MAX_RESULTS}.")
    offset = decode_page_token(p.get("page_token"))
    query = select(RegistryWebhook).order_by(RegistryWebhook.created_at, RegistryWebhook.id)
    if model_name:
        query = query.where(RegistryWebhook.model_name == model_name)
    rows = [r for r in await session.scalars(query) if not events or set(events) & set(r.events)]
    page = rows[offset : offset + limit]
    out: dict[str, Any] = {"webhooks": [_view(r) for r in page]}
    if offset + limit < len(rows):
        out["next_page_token"] = encode_page_token(offset + limit)
    return out


class WebhookDispatcher:
    """Delivers events to the webhooks listening for them, in background tasks."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box
        self._tasks: set[asyncio.Task[None]] = set()

    async def fire(self, events: Iterable[str], data: dict[str, Any]) -> None:
        """Deliver `events` about `data` (model_name, version...) to the webhooks listening now.

        Which webhooks listen is read before the caller answers (so a later status change
        cannot reach back to this event); the deliveries themselves run in the background.
        """
        wanted = list(events)
        if not wanted:
            return
        model = data.get("model_name")
        async with self.db.session() as session:
            rows = await session.scalars(
                select(RegistryWebhook).where(RegistryWebhook.status == "ACTIVE")
            )
            targets = [
                (row.id, dict(row.http_url_spec), event)
                for row in rows
                if row.model_name in (None, model)
                for event in wanted
                if event in row.events
            ]
        if targets:
            task = asyncio.get_running_loop().create_task(self._deliver_all(targets, data))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Cancel the deliveries in flight."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _deliver_all(
        self, targets: list[tuple[str, dict[str, Any], str]], data: dict[str, Any]
    ) -> None:
        for webhook_id, spec, event in targets:
            try:
                await self._post(spec, payload(event, webhook_id, data))
            except Exception:  # a receiver's failure must never reach the API call
                log.warning("registry webhook %s: delivery failed", webhook_id, exc_info=True)

    async def _post(self, spec: dict[str, Any], body: bytes) -> tuple[int, str]:
        import httpx

        headers = {"Content-Type": "application/json"}
        if spec.get("secret"):
            secret = self.box.decrypt(spec["secret"].encode()).decode()
            headers[SIGNATURE_HEADER] = sign(secret, body)
        if spec.get("authorization"):
            headers["Authorization"] = self.box.decrypt(spec["authorization"].encode()).decode()
        verify = bool(spec.get("enable_ssl_verification", True))
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S, verify=verify) as client:
            r = await client.post(spec["url"], content=body, headers=headers)
            return r.status_code, r.text

    async def test(self, row: RegistryWebhook, event: object) -> dict[str, Any]:
        """Deliver a test event now and answer the receiver's status and body."""
        if event is None:
            chosen = row.events[0]
        elif isinstance(event, str) and event in EVENTS:
            chosen = event
        else:
            raise InvalidParameterValue(f"Unknown registry webhook event {event!r}.")
        if chosen not in row.events:
            raise InvalidParameterValue(f"Webhook {row.id} does not listen to {chosen}.")
        if row.status == "DISABLED":
            raise InvalidParameterValue(f"Webhook {row.id} is DISABLED.")
        data = {"model_name": row.model_name or "test-model", "version": "1", "text": "test"}
        try:
            status, text = await self._post(row.http_url_spec, payload(chosen, row.id, data))
        except Exception as e:
            raise BadRequest(f"Could not reach {row.http_url_spec['url']}: {e}") from None
        return {"status_code": status, "body": text}
