"""Secrets API (/api/2.0/secrets): scopes, secrets and scope ACLs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kiln.secrets import acls, scopes, values
from kiln.server.deps import CurrentPrincipal, Session, State
from kiln.server.schemas.secrets import (
    AclItem,
    CreateScopeRequest,
    DeleteAclRequest,
    DeleteScopeRequest,
    DeleteSecretRequest,
    GetSecretResponse,
    ListAclsResponse,
    ListScopesResponse,
    ListSecretsResponse,
    PutAclRequest,
    PutSecretRequest,
    SecretMetadata,
    SecretScopeInfo,
)

router = APIRouter(tags=["secrets"])

PREFIX = "/api/2.0/secrets"


@router.post(f"{PREFIX}/scopes/create")
async def create_scope(
    body: CreateScopeRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Create a Databricks-backed scope; the caller (or `users`) gets MANAGE."""
    await scopes.create_scope(
        session,
        me,
        body.scope,
        initial_manage_principal=body.initial_manage_principal,
        backend_type=body.scope_backend_type,
        keyvault_metadata=body.backend_azure_keyvault,
    )
    return {}


@router.get(f"{PREFIX}/scopes/list")
async def list_scopes(session: Session, me: CurrentPrincipal) -> ListScopesResponse:
    """Every scope of the workspace."""
    rows = await scopes.list_scopes(session)
    return ListScopesResponse(scopes=[SecretScopeInfo.of(r) for r in rows])


@router.post(f"{PREFIX}/scopes/delete")
async def delete_scope(
    body: DeleteScopeRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a scope with its secrets (needs MANAGE)."""
    await scopes.delete_scope(session, me, body.scope)
    return {}


@router.post(f"{PREFIX}/put")
async def put_secret(
    body: PutSecretRequest, session: Session, state: State, me: CurrentPrincipal
) -> dict[str, Any]:
    """Create or overwrite a secret (needs WRITE)."""
    await values.put_secret(
        session,
        state.secret_box,
        me,
        body.scope,
        body.key,
        string_value=body.string_value,
        bytes_value=body.bytes_value,
        limit=state.settings.limits.secret_value,
    )
    return {}


@router.get(f"{PREFIX}/list")
async def list_secrets(scope: str, session: Session, me: CurrentPrincipal) -> ListSecretsResponse:
    """A scope's keys and update times, never values (needs READ)."""
    rows = await values.list_secrets(session, me, scope)
    return ListSecretsResponse(secrets=[SecretMetadata.of(r) for r in rows])


@router.post(f"{PREFIX}/delete")
async def delete_secret(
    body: DeleteSecretRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Delete a secret (needs WRITE)."""
    await values.delete_secret(session, me, body.scope, body.key)
    return {}


@router.get(f"{PREFIX}/get")
async def get_secret(
    scope: str, key: str, session: Session, state: State, me: CurrentPrincipal
) -> GetSecretResponse:
    """A secret's value, base64-encoded (needs READ)."""
    value = await values.get_secret(session, state.secret_box, me, scope, key)
    return GetSecretResponse.of(key, value)


@router.post(f"{PREFIX}/acls/put")
async def put_acl(body: PutAclRequest, session: Session, me: CurrentPrincipal) -> dict[str, Any]:
    """Grant a principal a permission on a scope (needs MANAGE)."""
    await acls.put_acl(session, me, body.scope, body.principal, body.permission)
    return {}


@router.get(f"{PREFIX}/acls/get")
async def get_acl(scope: str, principal: str, session: Session, me: CurrentPrincipal) -> AclItem:
    """One principal's permission on a scope (needs MANAGE)."""
    return AclItem.of(await acls.get_acl(session, me, scope, principal))


@router.get(f"{PREFIX}/acls/list")
async def list_acls(scope: str, session: Session, me: CurrentPrincipal) -> ListAclsResponse:
    """A scope's ACLs (needs MANAGE)."""
    rows = await acls.list_acls(session, me, scope)
    return ListAclsResponse(items=[AclItem.of(r) for r in rows])


@router.post(f"{PREFIX}/acls/delete")
async def delete_acl(
    body: DeleteAclRequest, session: Session, me: CurrentPrincipal
) -> dict[str, Any]:
    """Remove a principal's ACL from a scope (needs MANAGE)."""
    await acls.delete_acl(session, me, body.scope, body.principal)
    return {}
