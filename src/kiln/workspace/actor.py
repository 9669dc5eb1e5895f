"""Who acts on the workspace: anything with a user id, a user name and an admin flag.

A protocol rather than `kiln.identity.Principal` itself, so the workspace package depends on no
sibling domain package; the server passes the request's Principal, which fits it.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Actor", "home_of"]


class Actor(Protocol):
    """The authenticated user of a workspace call."""

    @property
    def user_id(self) -> int: ...

    @property
    def user_name(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


def home_of(actor: Actor) -> str:
    """The actor's home folder, `/Users/<user_name>`."""
    return f"/Users/{actor.user_name}"
