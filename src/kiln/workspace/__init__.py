"""The workspace tree: folders, notebooks (Databricks SOURCE format) and files.

Invariants: notebooks are stored in the SOURCE format whatever they were imported as, and
every format converts through one notebook model (`notebook_formats`), so round trips keep
cells and their languages; every client path is normalized and confined (`tree.resolve_path`);
users' home folders appear on their first workspace call; non-admins write only in their home
and `/Shared`.
"""

from kiln.workspace.actor import Actor
from kiln.workspace.demo import DEMO_FOLDER, seed_demo
from kiln.workspace.enums import ExportFormat, ImportFormat, Language, ObjectType
from kiln.workspace.notebook_formats import Cell, Notebook
from kiln.workspace.objects import delete, get_status, list_objects, mkdirs
from kiln.workspace.transfer import Exported, ImportSpec, export_object, import_object

__all__ = [
    "DEMO_FOLDER",
    "Actor",
    "Cell",
    "ExportFormat",
    "Exported",
    "ImportFormat",
    "ImportSpec",
    "Language",
    "Notebook",
    "ObjectType",
    "delete",
    "export_object",
    "get_status",
    "import_object",
    "list_objects",
    "mkdirs",
    "seed_demo",
]
