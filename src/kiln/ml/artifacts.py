"""Where MLflow artifacts live in the DBFS root, and the confinement of every artifact path.

With tracking URI `databricks` the client writes a run's artifacts through the Files API under
`/WorkspaceInternal/Mlflow/Artifacts/<experiment>/Runs/<run>/artifacts` (and a logged model's
under `.../LoggedModels/<model id>/artifacts`), falling back to signed URLs from
`/api/2.0/mlflow/artifacts/credentials-for-write|read`. Kiln serves both over the DBFS root.
A client-given artifact path is relative to its run's root and may never leave it: `..`,
percent-encoded forms, `//`, backslashes, `#`/`?` and links resolving elsewhere are refused.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote

from kiln.dbfs import DbfsStore, Entry
from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path

__all__ = [
    "FILES_ROOT",
    "artifact_file",
    "confine_links",
    "list_artifacts",
    "run_artifact_dir",
    "source_files_root",
]

FILES_ROOT = "/WorkspaceInternal/Mlflow/Artifacts"


def run_artifact_dir(experiment_id: str, run_id: str) -> str:
    """The Files API folder of one run's artifacts."""
    for what, value in (("experiment_id", experiment_id), ("run_id", run_id)):
        if not value or not value.replace("-", "").isalnum():
            raise InvalidParameterValue(f"Invalid {what} {value!r}.")
    return f"{FILES_ROOT}/{experiment_id}/Runs/{run_id}/artifacts"


_TRACKING_SOURCE = re.compile(
    r"^dbfs:/databricks/mlflow-tracking/(?P<exp>[0-9A-Za-z-]+)/(?P<kind>logged_models/)?"
    r"(?P<id>[0-9A-Za-z-]+)(?P<rest>(/[^/]+)*)/?$"
)


def source_files_root(source: str) -> str:
    """The Files API folder a model version's source URI names (a run's or a logged model's)."""
    m = _TRACKING_SOURCE.match(source or "")
    if m is None:
        raise InvalidParameterValue(f"Unsupported model version source {source!r}.")
    folder = "LoggedModels" if m.group("kind") else "Runs"
    root = f"{FILES_ROOT}/{m.group('exp')}/{folder}/{m.group('id')}"
    return artifact_file(root, m.group("rest").lstrip("/")) if m.group("rest") else root


def artifact_file(root: str, relative: str | None) -> str:
    """`root/relative` as a clean absolute path that cannot leave `root`, or a 400."""
    if not relative:
        return root
    form = relative
    for _ in range(4):
        if any(c in form for c in "#?"):
            raise InvalidParameterValue(f"Artifact path must not contain '#' or '?': {relative!r}")
        form = unquote(form)
    if relative.startswith("/"):
        raise InvalidParameterValue(f"Artifact path must be relative: {relative!r}")
    path = normalize_absolute_path(f"{root}/{relative}", what="artifact path")
    if not path.startswith(root + "/"):
        raise InvalidParameterValue(f"Artifact path escapes the run's root: {relative!r}")
    return path


def confine_links(store: DbfsStore, root: str, path: str) -> None:
    """Refuse `path` if a symbolic link on the way resolves outside `root` (local roots)."""
    if not store.is_local:
        return
    real_root = os.path.realpath(store.location(root))
    real = os.path.realpath(store.location(path))
    if real != real_root and not real.startswith(real_root + "/"):
        raise InvalidParameterValue("Artifact path resolves outside the run's artifact root.")


def list_artifacts(store: DbfsStore, root: str, relative: str | None) -> list[Entry]:
    """The artifacts directly under `relative` (none if it is missing or a file); blocking."""
    path = artifact_file(root, relative)
    confine_links(store, root, path)
    entry = store.stat(path)
    if entry is None or not entry.is_dir:
        return []
    return [e for e in store.listdir(path) if _inside(store, root, e)]


def _inside(store: DbfsStore, root: str, entry: Entry) -> bool:
    try:
        confine_links(store, root, entry.path)
    except InvalidParameterValue:
        return False
    return True
