"""Each served model's Python environment: Kiln's own, or a venv built for its requirements.

A model's `requirements.txt` (written by MLflow beside MLmodel) is checked against the packages
of Kiln's interpreter. When every requirement is satisfied there, the model runs in Kiln's
environment (no venv). Otherwise a venv holding just the missing or different requirements is
built with uv, layered over Kiln's site-packages (a `.pth` line appends them after the venv's
own, so the model's pins win and mlflow and Kiln stay importable), and cached under the data dir
by a hash of those requirements and the interpreter: models with the same needs share it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EnvironmentFailed",
    "ModelEnvironment",
    "ModelEnvironments",
    "environment_key",
    "read_requirements",
    "unsatisfied",
]

READY_MARK = ".kiln-ready"
BUILD_TIMEOUT_S = 900.0
_ERROR_TAIL = 1500


class EnvironmentFailed(Exception):
    """The model's environment could not be built (uv's error is the message)."""


@dataclass(frozen=True)
class ModelEnvironment:
    """Where a served model runs: the interpreter and what was installed for it."""

    python: str
    installed: tuple[str, ...]

    @property
    def message(self) -> str:
        """The served entity's state message about its environment."""
        if not self.installed:
            return "Runs in Kiln's environment: every requirement of the model is satisfied."
        return "Runs in its own environment with " + ", ".join(self.installed) + "."


def read_requirements(model_dir: Path) -> list[str]:
    """The requirement lines of the model's requirements.txt (none if it has no such file)."""
    try:
        text = (model_dir / "requirements.txt").read_text()
    except FileNotFoundError:
        return []
    lines = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise EnvironmentFailed(
                f"Unsupported line in the model's requirements.txt: {line!r} "
                "(only requirement specifiers are supported)."
            )
        lines.append(line)
    return lines


def unsatisfied(requirements: list[str]) -> list[str]:
    """The requirements that Kiln's interpreter does not satisfy (missing or other version)."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    out = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement as e:
            raise EnvironmentFailed(f"Invalid requirement {line!r} of the model: {e}") from None
        if req.marker is not None and not req.marker.evaluate():
            continue
        if req.url:
            out.append(line)
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            out.append(line)
            continue
        if not req.specifier.contains(version, prereleases=True):
            out.append(line)
    return sorted(out)


def environment_key(requirements: list[str]) -> str:
    """The cache key of a venv for `requirements` on this interpreter."""
    blob = json.dumps([sys.version, sys.executable, sorted(requirements)])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _uv() -> str:
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    found = shutil.which("uv")
    if found is None:
        raise EnvironmentFailed("uv is not installed: cannot build the model's environment.")
    return found


async def _run(*args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), BUILD_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise EnvironmentFailed(
            f"Building the environment took more than {BUILD_TIMEOUT_S:.0f} s."
        ) from None
    if process.returncode != 0:
        text = output.decode("utf-8", "replace").strip()
        raise EnvironmentFailed(
            f"Installing the model's requirements failed: {text[-_ERROR_TAIL:]}"
        )


class ModelEnvironments:
    """Venvs for served models, cached under `root` by the hash of what they install."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    async def resolve(
        self, model_dir: Path, building: Callable[[list[str]], None] | None = None
    ) -> ModelEnvironment:
        """The environment the model in `model_dir` runs in, built first if need be
        (`building` hears what is installed before a build starts)."""
        missing = await asyncio.to_thread(lambda: unsatisfied(read_requirements(model_dir)))
        if not missing:
            return ModelEnvironment(sys.executable, ())
        if (
            building is not None
            and not (self.root / environment_key(missing) / READY_MARK).exists()
        ):
            building(missing)
        return ModelEnvironment(str(await self._ensure(missing)), tuple(missing))

    async def _ensure(self, missing: list[str]) -> Path:
        key = environment_key(missing)
        final = self.root / key
        python = final / "bin" / "python"
        async with self._locks.setdefault(key, asyncio.Lock()):
            if (final / READY_MARK).exists():
                return python
            await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
            building = self.root / f"{key}.building-{time.monotonic_ns()}"
            try:
                await self._build(building, missing)
                await asyncio.to_thread(_replace, building, final)
            finally:
                await asyncio.to_thread(shutil.rmtree, building, True)
        return python

    async def _build(self, where: Path, missing: list[str]) -> None:
        uv = _uv()
        # The venv's own interpreter is the base one Kiln's venv was made from.
        await _run(uv, "venv", "--quiet", "--python", sys.executable, str(where))
        python = where / "bin" / "python"
        await _run(uv, "pip", "install", "--quiet", "--python", str(python), *missing)
        await asyncio.to_thread(_layer_over_kiln, where, "".join(missing))


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise EnvironmentFailed(f"The venv at {venv} has no site-packages.")
    return found[0]


def _layer_over_kiln(venv: Path, label: str) -> None:
    kiln_site = sysconfig.get_paths()["purelib"]
    # addsitedir (not a bare path) so that Kiln's own .pth files (its editable install) apply.
    line = f"import site; site.addsitedir({kiln_site!r})\n"
    (_site_packages(venv) / "zz_kiln_base.pth").write_text(line)
    (venv / READY_MARK).write_text(label)


def _replace(building: Path, final: Path) -> None:
    if final.exists():
        shutil.rmtree(final)
    building.rename(final)
