"""Who acts on the workspace: the request's `kiln.principal.Principal`."""

from __future__ import annotations

from kiln.principal import Principal

__all__ = ["Actor", "home_of"]


# The request's Principal; the alias keeps the workspace code's vocabulary.
Actor = Principal


def home_of(actor: Actor) -> str:
    """The actor's home folder, `/Users/<user_name>`."""
    return f"/Users/{actor.user_name}"
