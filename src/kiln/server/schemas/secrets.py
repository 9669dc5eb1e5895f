"""Secrets API wire shapes (Databricks' `/api/2.0/secrets/...` field names)."""

from __future__ import annotations

import base64
from typing import Any

from pydantic import BaseModel

from kiln.secrets.values import SecretMetadata as SecretMetadataRow
from kiln.store.models import SecretAcl, SecretScope, to_epoch_ms

__all__ = [
    "AclItem",
    "CreateScopeRequest",
    "DeleteAclRequest",
    "DeleteScopeRequest",
    "DeleteSecretRequest",
    "GetSecretResponse",
    "ListAclsResponse",
    "ListScopesResponse",
    "ListSecretsResponse",
    "PutAclRequest",
    "PutSecretRequest",
    "SecretMetadata",
    "SecretScopeInfo",
]


class CreateScopeRequest(BaseModel):
    scope: str
    initial_manage_principal: str | None = None
    scope_backend_type: str | None = None
    backend_azure_keyvault: dict[str, Any] | None = None


class DeleteScopeRequest(BaseModel):
    scope: str


class PutSecretRequest(BaseModel):
    scope: str
    key: str
    string_value: str | None = None
    bytes_value: str | None = None

    def __repr__(self) -> str:
        # The value must never reach a log through a stray repr of the request.
        return f"PutSecretRequest(scope={self.scope!r}, key={self.key!r})"

    __str__ = __repr__


class DeleteSecretRequest(BaseModel):
    scope: str
    key: str


class PutAclRequest(BaseModel):
    scope: str
    principal: str
    permission: str


class DeleteAclRequest(BaseModel):
    scope: str
    principal: str


class SecretScopeInfo(BaseModel):
    name: str
    backend_type: str

    @classmethod
    def of(cls, row: SecretScope) -> SecretScopeInfo:
        return cls(name=row.name, backend_type=row.backend_type)


class ListScopesResponse(BaseModel):
    scopes: list[SecretScopeInfo]


class SecretMetadata(BaseModel):
    key: str
    last_updated_timestamp: int

    @classmethod
    def of(cls, row: SecretMetadataRow) -> SecretMetadata:
        return cls(key=row.key, last_updated_timestamp=to_epoch_ms(row.last_updated))


class ListSecretsResponse(BaseModel):
    secrets: list[SecretMetadata]


class AclItem(BaseModel):
    principal: str
    permission: str

    @classmethod
    def of(cls, row: SecretAcl) -> AclItem:
        return cls(principal=row.principal, permission=row.permission)


class ListAclsResponse(BaseModel):
    items: list[AclItem]


class GetSecretResponse(BaseModel):
    """The one response that carries a value: base64, as dbutils and databricks-sdk decode it."""

    key: str
    value: str

    @classmethod
    def of(cls, key: str, value: bytes) -> GetSecretResponse:
        return cls(key=key, value=base64.b64encode(value).decode("ascii"))

    def __repr__(self) -> str:
        return f"GetSecretResponse(key={self.key!r})"

    __str__ = __repr__
