"""Validating Databricks `Library` objects: one kind each, paths inside Kiln's own stores.

A parsed library keeps the object as sent (`wire`, returned unchanged by cluster-status) and
the canonical key that makes installing the same library twice one row.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from kiln.dbfs.paths import dbfs_path, files_path
from kiln.errors import InvalidParameterValue
from kiln.paths import normalize_absolute_path

__all__ = [
    "FILE_KINDS",
    "KINDS",
    "LibrarySpec",
    "StoreFile",
    "parse_libraries",
    "parse_library",
    "store_file",
]

FILE_KINDS = ("whl", "jar", "requirements")
KINDS = ("pypi", "maven", *FILE_KINDS)
_REFUSED = {
    "egg": "egg libraries are no longer supported (Databricks Runtime 14+); use a wheel (whl).",
    "cran": "R (cran) libraries are not supported: Kiln clusters run no R.",
}
MAX_LIBRARIES = 100
# A PEP 508 requirement without URLs: a name, extras, version specifiers and markers.
_PYPI = re.compile(
    r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?:\[[A-Za-z0-9._,\s-]*\])?"
    r"(?:\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+"
    r"(?:\s*,\s*(?:===|==|!=|~=|<=|>=|<|>)\s*[A-Za-z0-9.*+!_-]+)*)?"
    r"(?:\s*;[^\n\r]*)?$"
)
_MAVEN_PART = r"[A-Za-z0-9_.+-]+"
_COORDINATES = re.compile(rf"^{_MAVEN_PART}:{_MAVEN_PART}(?::{_MAVEN_PART}){{1,3}}$")
_EXCLUSION = re.compile(rf"^{_MAVEN_PART}:{_MAVEN_PART}$")
_URL = re.compile(r"^(https?|file)://[^\s]+$")


@dataclass(frozen=True, slots=True)
class StoreFile:
    """A file in Kiln's stores: `workspace` (the workspace tree), `dbfs` or `volumes`."""

    store: str
    path: str


@dataclass(frozen=True, slots=True)
class LibrarySpec:
    """One validated library."""

    kind: str
    wire: dict[str, Any]
    # pypi: the requirement; maven: the coordinates; files: the path as sent.
    value: str
    repo: str | None = None
    exclusions: tuple[str, ...] = ()
    file: StoreFile | None = None

    @property
    def key(self) -> str:
        """Canonical JSON of the library: one row per library and cluster."""
        return json.dumps(self.wire, sort_keys=True, separators=(",", ":"))

    @property
    def label(self) -> str:
        """How messages name the library."""
        return f"{self.kind} {self.value}"


def _text(raw: object, what: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidParameterValue(f"{what} must be a non-empty string.")
    if len(raw) > 4096:
        raise InvalidParameterValue(f"{what} is longer than 4096 characters.")
    return raw.strip()


def _repo(raw: object, what: str) -> str | None:
    if raw is None or raw == "":
        return None
    text = _text(raw, what)
    if not _URL.match(text):
        raise InvalidParameterValue(f"{what} must be an http(s) or file URL: {text!r}")
    return text


def store_file(raw: str, what: str) -> StoreFile:
    """Where a whl, jar or requirements path lives; a 400 for anything outside the stores."""
    if raw.startswith("dbfs:"):
        return StoreFile("dbfs", dbfs_path(raw, what=what))
    scheme = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*):", raw)
    if scheme:
        raise InvalidParameterValue(
            f"{what}: {scheme.group(1)}: paths are outside Kiln's stores; use a workspace, "
            "dbfs:/ or /Volumes/ path."
        )
    if raw == "/Volumes" or raw.startswith("/Volumes/"):
        path = files_path(raw, what=what)
        if path.count("/") < 5:
            raise InvalidParameterValue(f"{what} must name a file inside a volume.")
        return StoreFile("volumes", path)
    path = normalize_absolute_path(raw, what=what)
    if path == "/Workspace" or path.startswith("/Workspace/"):
        path = path[len("/Workspace") :] or "/"
    if path == "/":
        raise InvalidParameterValue(f"{what} must name a file.")
    return StoreFile("workspace", path)


def parse_library(raw: object, what: str) -> LibrarySpec:
    """One `Library` object, or a 400 naming the field."""
    if not isinstance(raw, dict):
        raise InvalidParameterValue(f"{what} must be an object.")
    kinds = [k for k, v in raw.items() if v is not None]
    if not kinds:
        raise InvalidParameterValue(f"{what} must name one library kind ({', '.join(KINDS)}).")
    if len(kinds) > 1:
        raise InvalidParameterValue(
            f"{what} names {len(kinds)} library kinds ({', '.join(sorted(kinds))}); "
            "exactly one is allowed."
        )
    kind = kinds[0]
    field = f"{what}.{kind}"
    if kind in _REFUSED:
        raise InvalidParameterValue(f"{field}: {_REFUSED[kind]}")
    body = raw[kind]
    if kind == "pypi":
        if not isinstance(body, dict):
            raise InvalidParameterValue(f"{field} must be an object.")
        package = _text(body.get("package"), f"{field}.package")
        if not _PYPI.match(package):
            raise InvalidParameterValue(
                f"{field}.package is not a valid requirement specifier: {package!r}"
            )
        repo = _repo(body.get("repo"), f"{field}.repo")
        wire: dict[str, Any] = {"package": package, **({"repo": repo} if repo else {})}
        return LibrarySpec("pypi", {"pypi": wire}, package, repo=repo)
    if kind == "maven":
        if not isinstance(body, dict):
            raise InvalidParameterValue(f"{field} must be an object.")
        coordinates = _text(body.get("coordinates"), f"{field}.coordinates")
        if not _COORDINATES.match(coordinates):
            raise InvalidParameterValue(
                f"{field}.coordinates must be groupId:artifactId:version: {coordinates!r}"
            )
        repo = _repo(body.get("repo"), f"{field}.repo")
        exclusions = body.get("exclusions") or []
        if not isinstance(exclusions, list):
            raise InvalidParameterValue(f"{field}.exclusions must be a list.")
        for i, item in enumerate(exclusions):
            if not isinstance(item, str) or not _EXCLUSION.match(item):
                raise InvalidParameterValue(
                    f"{field}.exclusions[{i}] must be groupId:artifactId: {item!r}"
                )
        wire = {"coordinates": coordinates}
        if repo:
            wire["repo"] = repo
        if exclusions:
            wire["exclusions"] = list(exclusions)
        return LibrarySpec(
            "maven", {"maven": wire}, coordinates, repo=repo, exclusions=tuple(exclusions)
        )
    if kind in FILE_KINDS:
        path = _text(body, field)
        try:
            location = store_file(path, field)
        except InvalidParameterValue as exc:
            if exc.message.startswith(field):
                raise
            raise InvalidParameterValue(f"{field}: {exc.message}") from exc
        suffix = {"whl": ".whl", "jar": ".jar"}.get(kind)
        if suffix and not location.path.endswith(suffix):
            raise InvalidParameterValue(f"{field} must name a {suffix} file: {path!r}")
        return LibrarySpec(kind, {kind: path}, path, file=location)
    raise InvalidParameterValue(f"{what}: unknown library kind {kind!r}.")


def parse_libraries(raw: object, what: str = "libraries") -> list[LibrarySpec]:
    """A non-empty list of libraries, each validated."""
    if not isinstance(raw, list) or not raw:
        raise InvalidParameterValue(f"{what} must be a non-empty list.")
    if len(raw) > MAX_LIBRARIES:
        raise InvalidParameterValue(f"{what}: at most {MAX_LIBRARIES} at a time.")
    return [parse_library(item, f"{what}[{i}]") for i, item in enumerate(raw)]
