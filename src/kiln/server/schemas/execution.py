"""Command Execution API 1.2 wire shapes: camelCase fields, as databricks-sdk sends and reads
them (`clusterId`, `contextId`, `commandId`, `resultType`...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kiln.compute.execution import CommandInfo, ContextInfo

__all__ = [
    "CancelCommandRequest",
    "CommandStatusResponse",
    "ContextIdRequest",
    "ContextStatusResponse",
    "CreateContextRequest",
    "Created",
    "ExecuteCommandRequest",
]


class _Request(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    cluster_id: str | None = Field(default=None, alias="clusterId")


class CreateContextRequest(_Request):
    """`contexts/create`."""

    language: str | None = None


class ContextIdRequest(_Request):
    """`contexts/destroy`."""

    context_id: str | None = Field(default=None, alias="contextId")


class ExecuteCommandRequest(ContextIdRequest):
    """`commands/execute`."""

    command: str | None = None
    language: str | None = None


class CancelCommandRequest(ContextIdRequest):
    """`commands/cancel`."""

    command_id: str | None = Field(default=None, alias="commandId")


class Created(BaseModel):
    """The id of a new context or command."""

    id: str


class ContextStatusResponse(BaseModel):
    """`contexts/status`."""

    id: str
    status: str

    @classmethod
    def of(cls, info: ContextInfo) -> ContextStatusResponse:
        """From the service's view."""
        return cls(id=info.id, status=info.status)


class CommandStatusResponse(BaseModel):
    """`commands/status`: `results` once the command ended."""

    id: str
    status: str
    results: dict[str, Any] | None = None

    @classmethod
    def of(cls, info: CommandInfo) -> CommandStatusResponse:
        """From the service's view."""
        return cls(id=info.id, status=info.status, results=info.results)
