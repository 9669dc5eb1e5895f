"""`workspace/import` and `workspace/export`: formats decided, content converted, tree written.

Notebooks are always stored in the SOURCE format whatever they were imported as; conversion
(parsing, nbformat, zip, HTML) runs in a worker thread. Content is bounded by
`settings.limits.workspace_import` both ways (MAX_NOTEBOOK_SIZE_EXCEEDED, as Databricks says).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.errors import BadRequest, InvalidParameterValue
from kiln.store.models import WorkspaceObject
from kiln.workspace import tree
from kiln.workspace.actor import Actor
from kiln.workspace.archives import is_zip, read_zip, write_zip
from kiln.workspace.enums import ExportFormat, ImportFormat, Language, ObjectType
from kiln.workspace.notebook_formats import (
    Notebook,
    from_dbc_model,
    from_jupyter,
    has_source_header,
    parse_source,
    render_source,
    to_dbc_model,
    to_jupyter,
)
from kiln.workspace.notebook_html import from_html, to_html

__all__ = ["Exported", "ImportSpec", "export_object", "import_object", "notebook_of"]

NOTEBOOK_SIZE_EXCEEDED = "MAX_NOTEBOOK_SIZE_EXCEEDED"


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """One `workspace/import` request, content already decoded to bytes."""

    path: str
    content: bytes
    format: ImportFormat = ImportFormat.SOURCE
    language: Language | None = None
    overwrite: bool = False


@dataclass(frozen=True, slots=True)
class Exported:
    """An export's bytes, Databricks' `file_type` for them, and a download file name."""

    content: bytes
    file_type: str
    filename: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """What an import writes: one object at the path, or a new folder holding `objects`."""

    single: tree.NewObject | None = None
    objects: tuple[tree.NewObject, ...] = ()


def _too_large(what: str, size: int, limit: int) -> BadRequest:
    return BadRequest(
        f"{what} of {size} bytes exceeds the limit of {limit} bytes.",
        error_code=NOTEBOOK_SIZE_EXCEEDED,
    )


def _text(content: bytes, what: str) -> str:
    try:
        return content.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise InvalidParameterValue(f"{what} content is not valid UTF-8 text.") from exc


def _notebook(path: str, notebook: Notebook) -> tree.NewObject:
    return tree.NewObject(
        path=path,
        object_type=ObjectType.NOTEBOOK,
        language=notebook.language,
        content=render_source(notebook).encode(),
    )


def _strip_extension(path: str) -> str:
    head, _, name = path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return f"{head}/{stem}" if stem else path


def _auto(path: str, content: bytes) -> tree.NewObject:
    """AUTO: a `.ipynb`, or a source file with its notebook header, is a notebook; else a file."""
    name = path.rsplit("/", 1)[-1]
    if name.lower().endswith(".ipynb"):
        notebook = from_jupyter(_text(content, "Jupyter"))
        return _notebook(_strip_extension(path), notebook)
    language = Language.from_extension(name)
    if language is not None:
        try:
            text = content.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError:
            text = ""
        if has_source_header(text, language):
            return _notebook(_strip_extension(path), parse_source(text, language))
    return tree.NewObject(path=path, object_type=ObjectType.FILE, content=content)


def _common_root(names: list[str]) -> list[str]:
    # An archive of one folder (`proj/a.py`, `proj/b/c.py`) lands as the target folder itself.
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) == 1 and all("/" in n for n in names):
        return [n.split("/", 1)[1] for n in names]
    return names


def _archive_plan(path: str, content: bytes, fmt: ImportFormat, max_total: int) -> _Plan:
    entries = read_zip(content, max_total=max_total)
    notebooks: list[tuple[str, Notebook]] = []
    for name, data in entries:
        stem, _, extension = name.rpartition(".")
        if fmt == ImportFormat.DBC:
            language = Language.from_name(extension) if stem else None
            if language is None or extension.lower() != language.dbc_extension:
                continue
            try:
                model = json.loads(data)
            except ValueError as exc:
                raise InvalidParameterValue(f"Archive entry {name!r} is not JSON.") from exc
            notebooks.append((name, from_dbc_model(model)))
        else:
            language = Language.from_extension(name) if stem else None
            if language is None:
                continue
            notebooks.append((name, parse_source(_text(data, name), language)))
    if not notebooks:
        raise InvalidParameterValue(f"The {fmt.value} archive holds no notebooks.")
    if fmt == ImportFormat.DBC and len(entries) == 1 and "/" not in notebooks[0][0]:
        return _Plan(single=_notebook(path, notebooks[0][1]))
    names = _common_root([name for name, _ in notebooks])
    objects = tuple(
        _notebook(f"{path}/{rel.rpartition('.')[0]}", nb)
        for rel, (_, nb) in zip(names, notebooks, strict=True)
    )
    return _Plan(objects=objects)


def _plan(spec: ImportSpec, path: str, max_total: int) -> _Plan:
    fmt, content = spec.format, spec.content
    if fmt == ImportFormat.SOURCE:
        if spec.language is not None:
            return _Plan(
                single=_notebook(path, parse_source(_text(content, "SOURCE"), spec.language))
            )
        if is_zip(content):
            return _archive_plan(path, content, fmt, max_total)
        raise InvalidParameterValue(
            "The language field is required to import a single notebook in SOURCE format "
            "(PYTHON, SQL, SCALA or R); without it, SOURCE content must be a zip of notebooks."
        )
    if fmt == ImportFormat.JUPYTER:
        return _Plan(single=_notebook(path, from_jupyter(_text(content, "Jupyter"), spec.language)))
    if fmt == ImportFormat.HTML:
        return _Plan(single=_notebook(path, from_html(_text(content, "HTML"))))
    if fmt == ImportFormat.DBC:
        if not is_zip(content):
            raise InvalidParameterValue("DBC content must be a Databricks archive (a zip file).")
        return _archive_plan(path, content, fmt, max_total)
    if fmt == ImportFormat.RAW:
        return _Plan(single=tree.NewObject(path=path, object_type=ObjectType.FILE, content=content))
    if fmt == ImportFormat.AUTO:
        return _Plan(single=_auto(path, content))
    raise InvalidParameterValue(f"Import format {fmt.value} is not supported by Kiln.")


async def import_object(
    session: AsyncSession, actor: Actor, spec: ImportSpec, *, max_size: int
) -> None:
    """Import a notebook, a file or an archive of notebooks at `spec.path`."""
    path = tree.resolve_path(spec.path)
    if len(spec.content) > max_size:
        raise _too_large("The import content", len(spec.content), max_size)
    await tree.ensure_home(session, actor)
    if path == tree.ROOT:
        raise InvalidParameterValue("Cannot import to the workspace root '/'.")
    plan = await asyncio.to_thread(_plan, spec, path, max_size)
    if plan.single is not None:
        await tree.put_object(session, actor, plan.single, overwrite=spec.overwrite)
    else:
        await tree.create_tree(session, actor, path, plan.objects)


def notebook_of(row: WorkspaceObject) -> Notebook:
    """A stored notebook row parsed back into the notebook model."""
    language = Language(row.language or Language.PYTHON.value)
    return parse_source((row.content or b"").decode("utf-8", errors="replace"), language)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1] or "root"


def _file_type(path: str) -> str:
    name = _name(path)
    return name.rsplit(".", 1)[-1] if "." in name.lstrip(".") else ""


def _export_notebook(row: WorkspaceObject, fmt: ExportFormat) -> Exported:
    name = _name(row.path)
    language = Language(row.language or Language.PYTHON.value)
    if fmt in (ExportFormat.SOURCE, ExportFormat.AUTO, ExportFormat.RAW):
        content = render_source(notebook_of(row)).encode()
        return Exported(content, language.extension, f"{name}.{language.extension}")
    if fmt == ExportFormat.JUPYTER:
        return Exported(to_jupyter(notebook_of(row), name).encode(), "ipynb", f"{name}.ipynb")
    if fmt == ExportFormat.HTML:
        return Exported(to_html(notebook_of(row), name).encode(), "html", f"{name}.html")
    if fmt == ExportFormat.DBC:
        model = json.dumps(to_dbc_model(notebook_of(row), name, row.id)).encode()
        archive = write_zip([(f"{name}.{language.dbc_extension}", model)])
        return Exported(archive, "dbc", f"{name}.dbc")
    raise InvalidParameterValue(f"Export format {fmt.value} is not supported by Kiln.")


def _export_folder(folder: str, rows: list[WorkspaceObject], fmt: ExportFormat) -> Exported:
    if fmt not in (ExportFormat.SOURCE, ExportFormat.DBC, ExportFormat.AUTO):
        raise InvalidParameterValue(
            f"Cannot export directory {folder} as {fmt.value}; "
            "directories export only as SOURCE, DBC or AUTO."
        )
    base = "" if folder == tree.ROOT else _name(folder) + "/"
    offset = 1 if folder == tree.ROOT else len(folder) + 1
    entries: list[tuple[str, bytes]] = []
    for row in rows:
        rel = base + row.path[offset:]
        if row.object_type == ObjectType.NOTEBOOK:
            language = Language(row.language or Language.PYTHON.value)
            notebook = notebook_of(row)
            if fmt == ExportFormat.DBC:
                model = to_dbc_model(notebook, _name(row.path), row.id)
                entries.append((f"{rel}.{language.dbc_extension}", json.dumps(model).encode()))
            else:
                entries.append((f"{rel}.{language.extension}", render_source(notebook).encode()))
        elif row.object_type == ObjectType.FILE and fmt == ExportFormat.AUTO:
            entries.append((rel, row.content or b""))
    file_type = "dbc" if fmt == ExportFormat.DBC else "zip"
    return Exported(write_zip(entries), file_type, f"{_name(folder)}.{file_type}")


def _export(row: WorkspaceObject, rows: list[WorkspaceObject], fmt: ExportFormat) -> Exported:
    if row.object_type == ObjectType.DIRECTORY:
        return _export_folder(row.path, rows, fmt)
    if row.object_type == ObjectType.NOTEBOOK:
        return _export_notebook(row, fmt)
    if row.object_type == ObjectType.MLFLOW_EXPERIMENT:
        raise InvalidParameterValue(
            f"{row.path} is an MLflow experiment, which cannot be exported."
        )
    if fmt not in (ExportFormat.SOURCE, ExportFormat.AUTO, ExportFormat.RAW):
        raise InvalidParameterValue(
            f"{row.path} is a file; files export only as SOURCE, AUTO or RAW, not {fmt.value}."
        )
    return Exported(row.content or b"", _file_type(row.path), _name(row.path))


async def export_object(
    session: AsyncSession,
    actor: Actor,
    raw_path: str,
    fmt: ExportFormat,
    *,
    max_size: int | None,
) -> Exported:
    """Export a notebook, file or folder in `fmt`; `max_size` bounds the result (None: no bound)."""
    path = tree.resolve_path(raw_path)
    await tree.ensure_home(session, actor)
    if fmt == ExportFormat.R_MARKDOWN:
        raise InvalidParameterValue("Export format R_MARKDOWN is not supported by Kiln.")
    row = await tree.get_object(session, actor, path)
    rows: list[WorkspaceObject] = []
    if row.object_type == ObjectType.DIRECTORY:
        rows = await tree.subtree(session, actor, path)
    await tree.load_contents(session, [row, *rows])
    exported = await asyncio.to_thread(_export, row, rows, fmt)
    if max_size is not None and len(exported.content) > max_size:
        raise _too_large("The export", len(exported.content), max_size)
    return exported
