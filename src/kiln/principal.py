"""Who is acting: resolved from the request's token, never from a client-sent field.

Below every domain package, so workspace, secrets and compute all name the same type.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.errors import PermissionDenied

__all__ = ["ADMINS_GROUP", "USERS_GROUP", "Principal", "require_admin"]

ADMINS_GROUP = "admins"
USERS_GROUP = "users"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user of one request."""

    user_id: int
    user_name: str
    is_admin: bool
    token_id: str

    @property
    def home(self) -> str:
        """The user's workspace home folder."""
        return f"/Users/{self.user_name}"


def require_admin(principal: Principal) -> None:
    """Raise 403 unless the principal is a workspace admin."""
    if not principal.is_admin:
        raise PermissionDenied("Only workspace admins can use this API.")
