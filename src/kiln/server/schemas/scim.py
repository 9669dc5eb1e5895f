"""SCIM v2 wire shapes for Me, Users and Groups, as Databricks serves them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kiln.store.models import Group, User

__all__ = [
    "LIST_SCHEMA",
    "PatchRequest",
    "ScimGroupIn",
    "ScimUserIn",
    "group_resource",
    "list_response",
    "user_resource",
]

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class ScimRef(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    value: str
    display: str | None = None


class ScimName(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    given_name: str | None = Field(None, alias="givenName")
    family_name: str | None = Field(None, alias="familyName")


class ScimUserIn(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    user_name: str = Field(alias="userName")
    display_name: str | None = Field(None, alias="displayName")
    external_id: str | None = Field(None, alias="externalId")
    active: bool = True
    name: ScimName | None = None
    groups: list[ScimRef] = Field(default_factory=list)


class ScimGroupIn(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    display_name: str = Field(alias="displayName")
    external_id: str | None = Field(None, alias="externalId")
    members: list[ScimRef] = Field(default_factory=list)


class PatchOperation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    op: str
    path: str | None = None
    value: Any = None


class PatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    schemas: list[str] = Field(default_factory=lambda: [PATCH_SCHEMA])
    operations: list[PatchOperation] = Field(alias="Operations")


def user_resource(user: User, groups: list[Group]) -> dict[str, Any]:
    """A User resource."""
    return {
        "schemas": [USER_SCHEMA],
        "id": str(user.id),
        "userName": user.user_name,
        "displayName": user.display_name or user.user_name,
        "active": user.active,
        "externalId": user.external_id,
        "name": {"givenName": user.given_name, "familyName": user.family_name},
        "emails": [{"value": user.user_name, "type": "work", "primary": True}],
        "groups": [
            {
                "value": str(g.id),
                "display": g.display_name,
                "type": "direct",
                "$ref": f"Groups/{g.id}",
            }
            for g in groups
        ],
        "entitlements": [],
    }


def group_resource(
    group: Group, users: list[User], member_groups: list[Group], parents: list[Group]
) -> dict[str, Any]:
    """A Group resource with its direct members."""
    members = [
        {"value": str(u.id), "display": u.display_name or u.user_name, "$ref": f"Users/{u.id}"}
        for u in users
    ] + [
        {"value": str(g.id), "display": g.display_name, "$ref": f"Groups/{g.id}"}
        for g in member_groups
    ]
    return {
        "schemas": [GROUP_SCHEMA],
        "id": str(group.id),
        "displayName": group.display_name,
        "externalId": group.external_id,
        "members": members,
        "groups": [
            {
                "value": str(g.id),
                "display": g.display_name,
                "type": "direct",
                "$ref": f"Groups/{g.id}",
            }
            for g in parents
        ],
        "entitlements": [],
        "roles": [],
    }


def list_response(total: int, start_index: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A SCIM ListResponse page."""
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
