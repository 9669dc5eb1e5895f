"""Serving endpoints: their rows, their deployments (scorer processes) and queries routed to them.

Lifecycle: create or update-config stores the config as `pending_config` with config_update
IN_PROGRESS and deploys it in the background. When every served entity that is not
scale-to-zero answers, the new deployment takes the traffic, the old one is stopped, and the
endpoint is READY / NOT_UPDATING. When a model fails to load the endpoint is NOT_READY /
UPDATE_FAILED with the reason on the failed entity, and the previous deployment (if any) keeps
serving. A scale-to-zero entity's process starts on its first request. After a restart
deployments come back cold: each process starts on its first request. Each entity runs in its
model's environment (see environments): a venv still building shows on the pending entity as
DEPLOYMENT_CREATING with what it installs; the environment a ready entity runs in is its state
message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kiln.catalog import Storage
from kiln.dbfs import DbfsStore
from kiln.errors import (
    BadRequest,
    InternalError,
    InvalidState,
    ResourceAlreadyExists,
    ResourceDoesNotExist,
)
from kiln.ml.serving.capture import (
    Capture,
    CaptureRecord,
    InferenceTables,
    ensure_payload_table,
)
from kiln.ml.serving.config import (
    FORMATS,
    EndpointState,
    ServedEntity,
    check_endpoint_name,
    entities_of,
    normalize_config,
    routes_of,
)
from kiln.ml.serving.environments import EnvironmentFailed, ModelEnvironment, ModelEnvironments
from kiln.ml.serving.online_store import OnlineStore
from kiln.ml.serving.scorer import SCORER_MODULE, Scorer, ScorerFailed, start_scorer
from kiln.ml.uc_registry import model_storage_path
from kiln.principal import Principal
from kiln.store import Database
from kiln.store.models import ScorerProcess, ServingEndpoint, now_utc, to_epoch_ms

__all__ = [
    "Capture",
    "CaptureRecord",
    "Deployment",
    "QueryResult",
    "ServingEndpoints",
    "check_payload",
]


@dataclass
class QueryResult:
    """A scorer's answer."""

    status: int
    body: bytes
    served_entity: str


@dataclass
class Deployment:
    """One config's live processes and its traffic split (smooth weighted round robin)."""

    endpoint: str
    config: dict[str, Any]
    entities: dict[str, ServedEntity]
    scorers: dict[str, Scorer | None] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _current: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, endpoint: str, config: dict[str, Any]) -> Deployment:
        """A deployment of `config` with no process started yet."""
        entities = {e.name: e for e in entities_of(config)}
        return cls(
            endpoint=endpoint,
            config=config,
            entities=entities,
            scorers=dict.fromkeys(entities),
            locks={n: asyncio.Lock() for n in entities},
        )

    def pick(self) -> ServedEntity:
        """The entity the next request goes to, in exact proportion to the routes' weights."""
        routes = [(n, w) for n, w in routes_of(self.config) if w > 0]
        total = sum(w for _, w in routes)
        for name, weight in routes:
            self._current[name] = self._current.get(name, 0) + weight
        chosen = max(routes, key=lambda r: self._current[r[0]])[0]
        self._current[chosen] -= total
        return self.entities[chosen]

    async def stop(self) -> None:
        """Stop every process of this deployment."""
        await asyncio.gather(*(s.stop() for s in self.scorers.values() if s is not None))


def check_payload(body: bytes) -> None:
    """Refuse a scoring request that is not one JSON object in one of the known formats."""
    try:
        payload = json.loads(body)
    except ValueError as e:
        raise BadRequest(f"The request body is not valid JSON: {e}.") from None
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.")
    given = [k for k in FORMATS if k in payload]
    if len(given) != 1:
        raise BadRequest(
            "The request must hold exactly one of the fields "
            f"{', '.join(FORMATS)}; got {', '.join(given) or 'none'}."
        )
    key = given[0]
    value = payload[key]
    if key == "dataframe_split" and (
        not isinstance(value, dict) or not isinstance(value.get("data"), list)
    ):
        raise BadRequest("dataframe_split must be an object with a 'data' list.")
    if key in ("dataframe_records", "instances") and not isinstance(value, list):
        raise BadRequest(f"{key} must be a list.")


class ServingEndpoints:
    """Every serving endpoint of one server and the processes that serve them."""

    def __init__(
        self, db: Database, dbfs: DbfsStore, log_dir: Path, capture_storage: Storage
    ) -> None:
        self.db = db
        self.dbfs = dbfs
        self.log_dir = log_dir
        self.deployments: dict[str, Deployment] = {}
        self.capture_storage = capture_storage
        self.inference = InferenceTables(capture_storage)
        self.capture: Capture | None = self.inference.record
        self._tasks: set[asyncio.Task[None]] = set()
        self.environments = ModelEnvironments(log_dir / "envs")
        self.online_store = OnlineStore(log_dir / "online-store.db")
        # (endpoint id, served entity) -> what its pending deployment is doing now.
        self._progress: dict[tuple[str, str], str] = {}
        self._started = False
        self._start_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Stop scorer processes an earlier server left (by their PID records); idempotent."""
        if self._started:
            return
        async with self._start_lock:
            if self._started:
                return
            async with self.db.session() as session:
                rows = (await session.scalars(select(ScorerProcess))).all()
                for row in rows:
                    _kill_stale(row.pid)
                await session.execute(delete(ScorerProcess))
            self._started = True

    async def stop(self) -> None:
        """Stop every scorer process (server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        for dep in list(self.deployments.values()):
            await dep.stop()
        self.deployments.clear()
        await self.inference.flush_all()

    # -- API -------------------------------------------------------------------------------

    async def create(self, me: Principal, raw: dict[str, Any]) -> dict[str, Any]:
        """Create an endpoint and start deploying its config."""
        await self.start()
        name = check_endpoint_name(raw.get("name"))
        config = normalize_config(raw.get("config"), 1)
        self._check_models(config)
        tags = raw.get("tags") or []
        async with self.db.session() as session:
            taken = await session.scalar(
                select(ServingEndpoint).where(ServingEndpoint.name == name)
            )
            if taken is not None:
                raise ResourceAlreadyExists(f"Endpoint with name '{name}' already exists.")
            await self._prepare_capture(session, me.user_name, config)
            row = ServingEndpoint(
                id=uuid.uuid4().hex,
                name=name,
                creator=me.user_name,
                config=None,
                pending_config=config,
                ready=EndpointState.NOT_READY,
                config_update=EndpointState.IN_PROGRESS,
                tags=tags if isinstance(tags, list) else [],
            )
            session.add(row)
        self._deploy_later(row.id, config)
        return self._wire(row)

    async def get(self, name: str) -> dict[str, Any]:
        """One endpoint."""
        await self.start()
        async with self.db.session() as session:
            return self._wire(await _find(session, name))

    async def list(self) -> list[dict[str, Any]]:
        """Every endpoint, by name."""
        await self.start()
        async with self.db.session() as session:
            rows = (
                await session.scalars(select(ServingEndpoint).order_by(ServingEndpoint.name))
            ).all()
            return [self._wire(r) for r in rows]

    async def update_config(self, name: str, raw: dict[str, Any]) -> dict[str, Any]:
        """Deploy a new config; the current one serves until the new one is ready."""
        await self.start()
        async with self.db.session() as session:
            row = await _find(session, name)
            if row.config_update == EndpointState.IN_PROGRESS:
                raise ResourceAlreadyExists(
                    f"Endpoint '{name}' already has a config update in progress."
                )
            current = row.config or row.pending_config or {}
            config = normalize_config(raw, int(current.get("config_version", 0)) + 1)
            self._check_models(config)
            await self._prepare_capture(session, row.creator, config)
            row.pending_config = config
            row.config_update = EndpointState.IN_PROGRESS
            row.state_message = None
            row.updated_at = now_utc()
        self._deploy_later(row.id, config)
        return self._wire(row)

    async def delete(self, name: str) -> None:
        """Delete an endpoint and stop its processes."""
        await self.start()
        async with self.db.session() as session:
            row = await _find(session, name)
            await session.delete(row)
        dep = self.deployments.pop(name, None)
        if dep is not None:
            await dep.stop()

    async def query(self, name: str, body: bytes) -> QueryResult:
        """Score one request on the served entity the traffic split picks."""
        dep = self.deployments.get(name)
        if dep is None:
            dep = await self._cold_deployment(name)
        check_payload(body)
        entity = dep.pick()
        scorer = await self._ensure_scorer(dep, entity)
        started = time.perf_counter()
        try:
            status, answer = await scorer.pool.post("/invocations", body)
        except (OSError, EOFError, ValueError) as e:
            raise InternalError(f"Served entity '{entity.name}' did not answer: {e!r}") from None
        result = QueryResult(status, answer, entity.name)
        if self.capture is not None and _capturing(dep.config):
            self.capture(
                CaptureRecord(
                    endpoint_name=name,
                    capture_config=dep.config["auto_capture_config"],
                    served_entity=entity.name,
                    model_name=entity.entity_name,
                    entity_version=entity.entity_version,
                    request=body,
                    response=result.body,
                    status=result.status,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    timestamp_ms=int(time.time() * 1000),
                )
            )
        return result

    # -- internals -------------------------------------------------------------------------

    async def _prepare_capture(
        self, session: AsyncSession, owner: str, config: dict[str, Any]
    ) -> None:
        capture = config.get("auto_capture_config")
        if capture and capture.get("enabled"):
            location = await ensure_payload_table(session, self.capture_storage, owner, capture)
            capture["_location"] = location

    def _model_dir(self, entity: ServedEntity) -> str:
        path = model_storage_path(entity.entity_name, entity.entity_version)
        return self.dbfs.location(path)

    def _check_models(self, config: dict[str, Any]) -> None:
        for entity in entities_of(config):
            path = model_storage_path(entity.entity_name, entity.entity_version)
            entry = self.dbfs.stat(path + "/MLmodel")
            if entry is None:
                raise ResourceDoesNotExist(
                    f"Model version {entity.entity_name} version {entity.entity_version} "
                    "does not exist."
                )

    async def _cold_deployment(self, name: str) -> Deployment:
        await self.start()
        async with self.db.session() as session:
            row = await _find(session, name)
            config = row.config
        if config is None:
            raise InvalidState(f"Endpoint '{name}' is not ready: no config has deployed yet.")
        dep = self.deployments.get(name)
        if dep is None:
            dep = self.deployments[name] = Deployment.of(name, config)
        return dep

    async def _ensure_scorer(self, dep: Deployment, entity: ServedEntity) -> Scorer:
        scorer = dep.scorers.get(entity.name)
        if scorer is not None and scorer.alive():
            return scorer
        async with dep.locks[entity.name]:
            scorer = dep.scorers.get(entity.name)
            if scorer is not None and scorer.alive():
                return scorer
            try:
                env = await self.environments.resolve(Path(self._model_dir(entity)))
                scorer = await start_scorer(
                    entity.name,
                    self._model_dir(entity),
                    self.log_dir,
                    python=env.python,
                    online_store=self.online_store.path,
                )
            except (ScorerFailed, EnvironmentFailed) as e:
                raise InvalidState(f"Served entity '{entity.name}' failed to start: {e}") from None
            dep.scorers[entity.name] = scorer
            await self._record(dep, entity, scorer)
            return scorer

    async def _record(self, dep: Deployment, entity: ServedEntity, scorer: Scorer) -> None:
        async with self.db.session() as session:
            endpoint_id = await session.scalar(
                select(ServingEndpoint.id).where(ServingEndpoint.name == dep.endpoint)
            )
            if endpoint_id is not None:
                session.add(
                    ScorerProcess(
                        endpoint_id=endpoint_id,
                        served_entity=entity.name,
                        config_version=int(dep.config.get("config_version", 0)),
                        pid=scorer.pid,
                        port=scorer.port,
                    )
                )

    def _deploy_later(self, endpoint_id: str, config: dict[str, Any]) -> None:
        task = asyncio.create_task(self._deploy(endpoint_id, config))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deploy(self, endpoint_id: str, config: dict[str, Any]) -> None:
        async with self.db.session() as session:
            row = await session.get(ServingEndpoint, endpoint_id)
            if row is None:
                return
            name = row.name
        dep = Deployment.of(name, config)
        entities = list(dep.entities.values())
        try:
            results = await asyncio.gather(
                *(self._start_entity(endpoint_id, dep, e) for e in entities),
                return_exceptions=True,
            )
        finally:
            for e in entities:
                self._progress.pop((endpoint_id, e.name), None)
        failures: list[str] = []
        for entity, result in zip(entities, results, strict=True):
            if isinstance(result, ModelEnvironment):
                for raw in config["served_entities"]:
                    if raw["name"] == entity.name:
                        raw["_environment"] = result.message
            elif isinstance(result, ScorerFailed | EnvironmentFailed):
                failures.append(f"{entity.name}: {result}")
            elif isinstance(result, BaseException):
                failures.append(f"{entity.name}: {result!r}")
        async with self.db.session() as session:
            row = await session.get(ServingEndpoint, endpoint_id)
            if row is None or failures:
                await dep.stop()
                if row is not None:
                    row.ready = EndpointState.NOT_READY
                    row.config_update = EndpointState.UPDATE_FAILED
                    row.state_message = "; ".join(failures)
                    row.updated_at = now_utc()
                return
            old = self.deployments.get(name)
            self.deployments[name] = dep
            row.config = config
            row.pending_config = None
            row.ready = EndpointState.READY
            row.config_update = EndpointState.NOT_UPDATING
            row.state_message = None
            row.updated_at = now_utc()
            await session.execute(delete(ScorerProcess).where(ScorerProcess.endpoint_id == row.id))
            for entity_name, scorer in dep.scorers.items():
                if scorer is not None:
                    session.add(
                        ScorerProcess(
                            endpoint_id=row.id,
                            served_entity=entity_name,
                            config_version=int(config["config_version"]),
                            pid=scorer.pid,
                            port=scorer.port,
                        )
                    )
        if old is not None:
            await old.stop()

    async def _start_entity(
        self, endpoint_id: str, dep: Deployment, entity: ServedEntity
    ) -> ModelEnvironment:
        """Build the entity's environment; start its scorer unless it scales to zero."""
        key = (endpoint_id, entity.name)
        self._progress[key] = "Checking the model's requirements."
        model_dir = self._model_dir(entity)

        def building(missing: list[str]) -> None:
            self._progress[key] = "Building the model's environment: " + ", ".join(missing) + "."

        env = await self.environments.resolve(Path(model_dir), building)
        if not entity.scale_to_zero_enabled:
            self._progress[key] = "Loading the model."
            dep.scorers[entity.name] = await start_scorer(
                entity.name,
                model_dir,
                self.log_dir,
                python=env.python,
                online_store=self.online_store.path,
            )
        return env

    def _wire(self, row: ServingEndpoint) -> dict[str, Any]:
        dep = self.deployments.get(row.name)
        body: dict[str, Any] = {
            "name": row.name,
            "id": row.id,
            "creator": row.creator,
            "creation_timestamp": to_epoch_ms(row.created_at),
            "last_updated_timestamp": to_epoch_ms(row.updated_at),
            "state": {"ready": row.ready, "config_update": row.config_update},
            "tags": row.tags or [],
            "permission_level": "CAN_MANAGE",
        }
        if row.config is not None:
            body["config"] = _wire_config(row.config, row, dep, pending=False)
        if row.pending_config is not None:
            progress = {e: m for (i, e), m in self._progress.items() if i == row.id}
            body["pending_config"] = _wire_config(
                row.pending_config, row, None, pending=True, progress=progress
            )
        return body


def _capturing(config: dict[str, Any]) -> bool:
    capture = config.get("auto_capture_config")
    return bool(capture and capture.get("enabled"))


def _wire_config(
    config: dict[str, Any],
    row: ServingEndpoint,
    dep: Deployment | None,
    *,
    pending: bool,
    progress: dict[str, str] | None = None,
) -> dict[str, Any]:
    entities = []
    for raw in config["served_entities"]:
        e = {k: v for k, v in raw.items() if not k.startswith("_")}
        if not pending:
            state = {"deployment": "DEPLOYMENT_READY"}
            scorer = dep.scorers.get(e["name"]) if dep is not None else None
            notes = [raw["_environment"]] if raw.get("_environment") else []
            if e["scale_to_zero_enabled"] and scorer is None:
                notes.insert(0, "Scaled to zero; starts on the next request.")
            if notes:
                state["deployment_state_message"] = " ".join(notes)
        elif row.config_update == EndpointState.UPDATE_FAILED:
            state = {
                "deployment": "DEPLOYMENT_FAILED",
                "deployment_state_message": row.state_message or "The model failed to load.",
            }
        else:
            state = {"deployment": "DEPLOYMENT_CREATING"}
            message = (progress or {}).get(e["name"])
            if message:
                state["deployment_state_message"] = message
        entities.append({**e, "creator": row.creator, "state": state})
    out: dict[str, Any] = {
        "served_entities": entities,
        "served_models": [
            {
                "name": e["name"],
                "model_name": e["entity_name"],
                "model_version": e["entity_version"],
                "workload_size": e["workload_size"],
                "scale_to_zero_enabled": e["scale_to_zero_enabled"],
                "state": e["state"],
            }
            for e in entities
        ],
        "traffic_config": config["traffic_config"],
        "config_version": config["config_version"],
    }
    capture = config.get("auto_capture_config")
    if capture is not None:
        out["auto_capture_config"] = {k: v for k, v in capture.items() if k != "_location"}
        if capture.get("_location"):
            out["auto_capture_config"]["state"] = {
                "payload_table": {
                    "name": f"{capture['table_name_prefix']}_payload",
                    "status": "ACTIVE",
                }
            }
    if pending:
        out["start_time"] = to_epoch_ms(row.updated_at)
    return out


async def _find(session: Any, name: str) -> ServingEndpoint:
    row: ServingEndpoint | None = await session.scalar(
        select(ServingEndpoint).where(ServingEndpoint.name == name)
    )
    if row is None:
        raise ResourceDoesNotExist(f"Endpoint with name '{name}' does not exist.")
    return row


def _kill_stale(pid: int) -> None:
    """SIGTERM a scorer an earlier server left, if that PID is still a scoring server."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
    except OSError:
        return
    if SCORER_MODULE.encode() in cmdline:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
