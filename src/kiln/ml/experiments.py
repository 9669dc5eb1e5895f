"""Experiment names are workspace paths, as in Databricks: `/Users/<user>/<name>`.

A new (or renamed) experiment's name must be a clean absolute workspace path the caller may
write: their own home or /Shared (admins anywhere but the protected system folders).
"""

from __future__ import annotations

from kiln.errors import InvalidParameterValue, PermissionDenied
from kiln.principal import Principal
from kiln.workspace.tree import can_write, resolve_path

__all__ = ["check_experiment_name"]


def check_experiment_name(principal: Principal, name: object) -> str:
    """The experiment's workspace path, or a 400/403 naming the problem."""
    if not isinstance(name, str) or not name.startswith("/"):
        raise InvalidParameterValue(
            f"Experiment name {name!r} must be an absolute workspace path, "
            f"e.g. /Users/{principal.user_name}/my-experiment."
        )
    path = resolve_path(name, what="experiment name")
    if not can_write(principal, path):
        raise PermissionDenied(
            f"User {principal.user_name} may not create an experiment at {path}: "
            "use your home folder or /Shared."
        )
    return path
