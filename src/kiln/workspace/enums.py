"""The workspace API's enumerations, with exactly Databricks' wire values."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ExportFormat", "ImportFormat", "Language", "ObjectType"]


class ObjectType(StrEnum):
    """What a workspace path holds (persisted in `workspace_objects.object_type`)."""

    DIRECTORY = "DIRECTORY"
    NOTEBOOK = "NOTEBOOK"
    FILE = "FILE"
    # An MLflow experiment named by its path (kiln.ml keeps it in step with MLflow's store).
    MLFLOW_EXPERIMENT = "MLFLOW_EXPERIMENT"


class Language(StrEnum):
    """A notebook's default language (persisted in `workspace_objects.language`)."""

    PYTHON = "PYTHON"
    SQL = "SQL"
    SCALA = "SCALA"
    R = "R"

    @property
    def comment(self) -> str:
        """The line-comment prefix the SOURCE format uses for this language."""
        return _COMMENT[self]

    @property
    def extension(self) -> str:
        """The file extension of a SOURCE export (`py`, `sql`, `scala`, `r`)."""
        return _EXTENSION[self]

    @property
    def dbc_extension(self) -> str:
        """The entry extension inside a DBC archive (`python`, `sql`, `scala`, `r`)."""
        return _DBC_EXTENSION[self]

    @property
    def magic(self) -> str:
        """The cell magic that switches a cell to this language (`python`, `sql`...)."""
        return _DBC_EXTENSION[self]

    @classmethod
    def from_extension(cls, name: str) -> Language | None:
        """The language a SOURCE file name's extension implies (`.py` → PYTHON), if any."""
        suffix = name.rsplit(".", 1)[-1] if "." in name else ""
        return _BY_EXTENSION.get(suffix.lower())

    @classmethod
    def from_name(cls, name: str | None) -> Language | None:
        """Parse a lower- or upper-case language name (`python`, `R`), or None."""
        if not name:
            return None
        return _BY_NAME.get(name.strip().lower())


class ImportFormat(StrEnum):
    """Formats `workspace/import` accepts (Databricks' values; R_MARKDOWN is refused)."""

    SOURCE = "SOURCE"
    HTML = "HTML"
    JUPYTER = "JUPYTER"
    DBC = "DBC"
    R_MARKDOWN = "R_MARKDOWN"
    AUTO = "AUTO"
    RAW = "RAW"


class ExportFormat(StrEnum):
    """Formats `workspace/export` produces (Databricks' values; R_MARKDOWN is refused)."""

    SOURCE = "SOURCE"
    HTML = "HTML"
    JUPYTER = "JUPYTER"
    DBC = "DBC"
    R_MARKDOWN = "R_MARKDOWN"
    AUTO = "AUTO"
    RAW = "RAW"


_COMMENT = {Language.PYTHON: "#", Language.SQL: "--", Language.SCALA: "//", Language.R: "#"}
_EXTENSION = {Language.PYTHON: "py", Language.SQL: "sql", Language.SCALA: "scala", Language.R: "r"}
_DBC_EXTENSION = {
    Language.PYTHON: "python",
    Language.SQL: "sql",
    Language.SCALA: "scala",
    Language.R: "r",
}
_BY_EXTENSION = {ext: lang for lang, ext in _EXTENSION.items()}
_BY_NAME = {lang.value.lower(): lang for lang in Language}
