"""A small demo folder in a user's home, for `make up` (idempotent: existing notebooks are kept)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kiln.workspace import tree
from kiln.workspace.actor import Actor, home_of
from kiln.workspace.enums import Language, ObjectType
from kiln.workspace.notebook_formats import Cell, Notebook, render_source

__all__ = ["DEMO_FOLDER", "seed_demo"]

DEMO_FOLDER = "Kiln Demo"

_PYTHON = Notebook(
    language=Language.PYTHON,
    cells=(
        Cell(
            "%md\n# Getting started with Kiln\n"
            "This notebook runs on a Kiln cluster. Attach it to a cluster and run the cells."
        ),
        Cell(
            "numbers = spark.range(1, 11)\ndisplay(numbers.selectExpr('id', 'id * id AS square'))",
            title="Squares with Spark",
        ),
        Cell("%md\n## SQL in a Python notebook\nA `%sql` cell runs SQL on the same cluster."),
        Cell("%sql\nSELECT current_date() AS today, 6 * 7 AS answer"),
    ),
)

_SQL = Notebook(
    language=Language.SQL,
    cells=(
        Cell("%md\n# SQL basics\nEvery cell of this notebook is SQL unless it says otherwise."),
        Cell(
            "CREATE OR REPLACE TEMP VIEW fruit AS\n"
            "SELECT * FROM VALUES ('apple', 3), ('pear', 5), ('plum', 7) AS t(name, amount)"
        ),
        Cell("SELECT name, amount FROM fruit ORDER BY amount DESC"),
    ),
)

_NOTEBOOKS = {"Getting started": _PYTHON, "SQL basics": _SQL}


async def seed_demo(session: AsyncSession, actor: Actor) -> str:
    """Create `<home>/Kiln Demo` with a Python and a SQL notebook; returns the folder's path."""
    await tree.ensure_home(session, actor)
    folder = f"{home_of(actor)}/{DEMO_FOLDER}"
    await tree.make_dirs(session, actor, folder)
    existing = {row.path for row in await tree.child_objects(session, actor, folder)}
    for name, notebook in _NOTEBOOKS.items():
        path = f"{folder}/{name}"
        if path in existing:
            continue
        new = tree.NewObject(
            path=path,
            object_type=ObjectType.NOTEBOOK,
            language=notebook.language,
            content=render_source(notebook).encode(),
        )
        await tree.put_object(session, actor, new, overwrite=False)
    return folder
