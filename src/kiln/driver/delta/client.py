"""The control plane's Unity Catalog API as a context sees it (its user's token), and the
errors Spark users expect when a name does not resolve."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from kiln.driver.dbutils.api import ApiClient
from kiln.driver.dbutils.errors import ApiError

__all__ = ["CatalogClient", "already_exists", "analysis_error", "quoted", "table_not_found"]

UC = "/api/2.1/unity-catalog"


def quoted(full_name: str) -> str:
    """`a.b.c` as Spark prints a name in errors: `a`.`b`.`c`."""
    return ".".join(f"`{part}`" for part in full_name.split("."))


def analysis_error(condition: str, message: str, sqlstate: str | None = None) -> Exception:
    """An AnalysisException with Spark's `[CONDITION] message SQLSTATE: x` wording."""
    from pyspark.errors import AnalysisException

    # PySpark prefixes the condition itself: `[CONDITION] message`.
    text = message + (f" SQLSTATE: {sqlstate}" if sqlstate else "")
    return AnalysisException(message=text, errorClass=condition)


def table_not_found(full_name: str) -> Exception:
    """Databricks' TABLE_OR_VIEW_NOT_FOUND for a catalog name."""
    return analysis_error(
        "TABLE_OR_VIEW_NOT_FOUND",
        f"The table or view {quoted(full_name)} cannot be found. Verify the spelling and "
        "correctness of the schema and catalog.\nIf you did not qualify the name with a schema, "
        "verify the current_schema() output, or qualify the name with the correct schema and "
        "catalog.\nTo tolerate the error on drop use DROP VIEW IF EXISTS or DROP TABLE IF "
        "EXISTS.",
        "42P01",
    )


def already_exists(full_name: str) -> Exception:
    """Databricks' TABLE_OR_VIEW_ALREADY_EXISTS."""
    return analysis_error(
        "TABLE_OR_VIEW_ALREADY_EXISTS",
        f"Cannot create table or view {quoted(full_name)} because it already exists.\nChoose a "
        "different name, drop or replace the existing object, or add the IF NOT EXISTS clause "
        "to tolerate pre-existing objects.",
        "42P07",
    )


class CatalogClient(ApiClient):
    """Catalog look-ups and changes over the public API."""

    def delete(self, path: str) -> dict[str, Any]:
        """DELETE `path`; the JSON answer."""
        return self._send("DELETE", path)

    def get_table(self, full_name: str) -> dict[str, Any] | None:
        """The table's TableInfo, or None when it (or its catalog or schema) does not exist."""
        try:
            return self.get(f"{UC}/tables/{quote(full_name)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def create_table(self, full_name: str, **fields: Any) -> dict[str, Any]:
        """Register a table (TableInfo fields); its TableInfo."""
        catalog, schema, name = full_name.split(".")
        body = {"catalog_name": catalog, "schema_name": schema, "name": name}
        body.update({k: v for k, v in fields.items() if v is not None})
        body.setdefault("data_source_format", "DELTA")
        return self.post(f"{UC}/tables", body)

    def drop_table(self, full_name: str) -> None:
        """Drop a table."""
        self.delete(f"{UC}/tables/{quote(full_name)}")

    def catalogs(self) -> list[dict[str, Any]]:
        """Every catalog."""
        return list(self.get(f"{UC}/catalogs").get("catalogs", []))

    def schemas(self, catalog: str) -> list[dict[str, Any]]:
        """A catalog's schemas."""
        return list(self.get(f"{UC}/schemas", {"catalog_name": catalog}).get("schemas", []))

    def tables(self, catalog: str, schema: str) -> list[dict[str, Any]]:
        """A schema's tables (without columns)."""
        params = {"catalog_name": catalog, "schema_name": schema, "omit_columns": "true"}
        return list(self.get(f"{UC}/tables", params).get("tables", []))

    def schema_exists(self, catalog: str, schema: str) -> bool:
        """Whether `catalog.schema` exists."""
        try:
            self.get(f"{UC}/schemas/{quote(catalog)}.{quote(schema)}")
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True
