"""The blocking half of libraries: building a cluster's virtual environment, fetching library
files from Kiln's stores, running `uv pip install`, and asking whether Maven answers.

The environment is a `uv venv` that sees Kiln's own site-packages through a `.pth` file, so
pyspark and everything Kiln ships are there without being installed again; what a cluster
installs goes into the venv's own site-packages and wins over Kiln's copy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import site
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.compute.libraries.spec import LibrarySpec, StoreFile
from kiln.dbfs import DbfsStore
from kiln.errors import KilnError
from kiln.workspace import Actor, ExportFormat, ObjectType, export_object, get_status

__all__ = [
    "DEFAULT_MAVEN_REPO",
    "MAX_LIBRARY_BYTES",
    "InstallResult",
    "VirtualEnv",
    "build_env",
    "fetch_error",
    "fetch_file",
    "maven_unreachable",
    "pip_install",
    "uv_binary",
]

MAX_LIBRARY_BYTES = 512 * 1024 * 1024
DEFAULT_MAVEN_REPO = "https://repo1.maven.org/maven2"
MAVEN_PROBE_SECONDS = 5.0
# pip's settings that uv spells differently; the machine's pip configuration applies to both.
_PIP_TO_UV = {
    "PIP_INDEX_URL": "UV_INDEX_URL",
    "PIP_EXTRA_INDEX_URL": "UV_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS": "UV_FIND_LINKS",
}


@dataclass(frozen=True, slots=True)
class VirtualEnv:
    """A cluster's environment on disk."""

    root: Path

    @property
    def python(self) -> Path:
        """Its interpreter."""
        return self.root / "bin" / "python"

    @property
    def files(self) -> Path:
        """Where fetched library files (wheels, jars, requirements) are kept."""
        return self.root / "kiln-libraries"


@dataclass(frozen=True, slots=True)
class InstallResult:
    """How one `uv pip install` ended."""

    ok: bool
    output: str


def uv_binary() -> str | None:
    """The `uv` next to Kiln's interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("uv")


def _site_dirs() -> list[str]:
    dirs = [*site.getsitepackages(), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")]
    return list(dict.fromkeys(d for d in dirs if d and Path(d).is_dir()))


async def _run(argv: list[str], env: dict[str, str], limit_seconds: float) -> InstallResult:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_seconds)
    except (TimeoutError, asyncio.CancelledError):
        proc.kill()
        await proc.wait()
        raise
    return InstallResult(proc.returncode == 0, out.decode(errors="replace").strip())


def _uv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
    for pip_name, uv_name in _PIP_TO_UV.items():
        if pip_name in env and uv_name not in env:
            env[uv_name] = env[pip_name]
    env.pop("VIRTUAL_ENV", None)
    return env


async def build_env(root: Path, limit_seconds: float = 120.0) -> VirtualEnv:
    """A fresh virtual environment at `root` (anything there before is removed)."""
    uv = uv_binary()
    if uv is None:
        raise RuntimeError("uv is not installed next to Kiln; cannot build cluster environments")
    await asyncio.to_thread(shutil.rmtree, root, True)
    root.parent.mkdir(parents=True, exist_ok=True)
    result = await _run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(root)], _uv_env(), limit_seconds
    )
    if not result.ok:
        raise RuntimeError(f"uv venv failed: {result.output}")
    venv = VirtualEnv(root)
    purelib = await asyncio.to_thread(_env_purelib, venv)
    # `import` lines of a .pth run at start-up: addsitedir also honours Kiln's own .pth files
    # (editable installs), which a plain path line would not.
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _site_dirs())
    (purelib / "_kiln_base.pth").write_text(lines)
    venv.files.mkdir(exist_ok=True)
    return venv


def _env_purelib(venv: VirtualEnv) -> Path:
    found = sorted((venv.root / "lib").glob("python3*/site-packages"))
    if not found:
        raise RuntimeError(f"{venv.root} has no site-packages")
    return found[0]


async def pip_install(
    venv: VirtualEnv, library: LibrarySpec, local: Path | None, limit_seconds: float
) -> InstallResult:
    """`uv pip install` one PyPI package, wheel or requirements file into the environment."""
    uv = uv_binary()
    if uv is None:
        return InstallResult(False, "uv is not installed next to Kiln.")
    argv = [uv, "pip", "install", "--python", str(venv.python)]
    if library.kind == "pypi":
        if library.repo:
            argv += ["--index-url", library.repo]
        argv += ["--", library.value]
    elif library.kind == "requirements":
        argv += ["-r", str(local)]
    else:
        argv += ["--", str(local)]
    try:
        return await _run(argv, _uv_env(), limit_seconds)
    except TimeoutError:
        return InstallResult(False, f"Installation did not finish within {limit_seconds:.0f} s.")


def _read_store(store: DbfsStore, path: str, dest: Path) -> None:
    entry = store.require(path)
    if entry.is_dir:
        raise ValueError(f"{path} is a directory")
    if entry.size > MAX_LIBRARY_BYTES:
        raise ValueError(f"{path} is larger than {MAX_LIBRARY_BYTES} bytes")
    with store.open_read(path) as src, dest.open("wb") as out:
        shutil.copyfileobj(src, out)


async def fetch_file(
    session: AsyncSession, store: DbfsStore, owner: Actor, file: StoreFile, dest: Path
) -> None:
    """Copy a library file from Kiln's stores to `dest`, read as `owner`; raises with why."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if file.store == "workspace":
        row = await get_status(session, owner, file.path)
        if row.object_type != ObjectType.FILE:
            raise ValueError(f"{file.path} is a {row.object_type.lower()}, not a file")
        exported = await export_object(
            session, owner, file.path, ExportFormat.AUTO, max_size=MAX_LIBRARY_BYTES
        )
        await asyncio.to_thread(dest.write_bytes, exported.content)
        return
    await asyncio.to_thread(_read_store, store, file.path, dest)


def fetch_error(exc: BaseException) -> str:
    """The message of a failed fetch."""
    return exc.message if isinstance(exc, KilnError) else str(exc)


async def maven_unreachable(library: LibrarySpec) -> str | None:
    """Why the library's Maven repository cannot be used from here, or None if it answers."""
    import httpx

    repo = (library.repo or DEFAULT_MAVEN_REPO).rstrip("/")
    group, artifact, *rest = library.value.split(":")
    version = rest[-1]
    url = f"{repo}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.pom"
    try:
        async with httpx.AsyncClient(timeout=MAVEN_PROBE_SECONDS) as client:
            response = await client.head(url, follow_redirects=True)
    except httpx.HTTPError as exc:
        return f"Maven repository {repo} cannot be reached: {exc!r}"
    if response.status_code == 404:
        return f"Maven artifact {library.value} was not found in {repo}."
    if response.status_code >= 400:
        return f"Maven repository {repo} answered {response.status_code} for {library.value}."
    return None
