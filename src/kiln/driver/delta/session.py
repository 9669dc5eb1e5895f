"""Catalog names in a context's SparkSession: `spark.sql` (and `%sql`), `spark.table`,
`spark.read.table`, `df.write.saveAsTable` and `dbfs:/` paths for `load`/`save` resolve
through the control plane's catalog to Delta tables read and written by the `delta` source.

Installed once per context (`install`); names that are not catalog tables (temporary views,
Spark's own session tables) go to Spark unchanged.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from typing import Any

from kiln.driver.delta.client import CatalogClient, already_exists, analysis_error, table_not_found

__all__ = ["DeltaSession", "ResolvedTable", "install", "parse_name"]

DELTA = "delta"
# `spark.read.format("delta").option(PYTHON_SOURCE_OPTION, "true")`: read with the `delta`
# Python source rather than Spark's Parquet reader (to compare them, or as a fallback).
PYTHON_SOURCE_OPTION = "kiln.pythonsource"
_PART = re.compile(r"`((?:[^`]|``)+)`|([^.`\s]+)")


def parse_name(name: str) -> list[str]:
    """The parts of a (possibly back-quoted) multi-part name, lower-cased."""
    parts: list[str] = []
    pos = 0
    text = name.strip()
    while pos < len(text):
        match = _PART.match(text, pos)
        if match is None:
            raise analysis_error("INVALID_IDENTIFIER", f"Invalid table name {name!r}.", "42602")
        parts.append((match.group(1) or "").replace("``", "`") or match.group(2))
        pos = match.end()
        if pos < len(text):
            if text[pos] != ".":
                raise analysis_error("INVALID_IDENTIFIER", f"Invalid table name {name!r}.", "42602")
            pos += 1
    return [p.lower() for p in parts]


@dataclass
class ResolvedTable:
    """A catalog table as the API describes it."""

    full_name: str
    info: dict[str, Any]

    @property
    def url(self) -> str:
        """Where the table's files are."""
        return str(self.info["storage_location"])

    @property
    def columns(self) -> list[dict[str, Any]]:
        """The table's columns (TableInfo.columns)."""
        return list(self.info.get("columns") or [])


class DeltaSession:
    """One context's view of the catalog, on its SparkSession."""

    def __init__(self, spark: Any, client: CatalogClient, dbfs_root: str | None) -> None:
        self.spark = spark
        self.client = client
        self.dbfs_root = dbfs_root
        self.catalog = "main"
        self.schema = "default"
        self._original_sql = spark.sql
        self._original_table = spark.table
        self._views = 0
        self._lock = threading.Lock()

    # -- names -------------------------------------------------------------------------------

    def qualify(self, name: str | list[str]) -> str:
        """The three-part name of a one-, two- or three-part name."""
        parts = parse_name(name) if isinstance(name, str) else name
        if len(parts) == 1:
            return f"{self.catalog}.{self.schema}.{parts[0]}"
        if len(parts) == 2:
            return f"{self.catalog}.{parts[0]}.{parts[1]}"
        if len(parts) == 3:
            return ".".join(parts)
        raise analysis_error(
            "REQUIRES_SINGLE_PART_NAMESPACE", f"Invalid table name {'.'.join(parts)!r}.", "42K05"
        )

    def is_spark_name(self, name: str | list[str]) -> bool:
        """Whether Spark itself holds this name (a temporary or global temporary view)."""
        parts = parse_name(name) if isinstance(name, str) else name
        if len(parts) == 2 and parts[0] == "global_temp":
            return True
        if len(parts) != 1:
            return False
        try:
            return bool(self.spark.catalog.tableExists(parts[0]))
        except Exception:
            return False

    def lookup(self, name: str | list[str]) -> ResolvedTable | None:
        """The catalog table of this name, or None."""
        full = self.qualify(name)
        info = self.client.get_table(full)
        return None if info is None else ResolvedTable(full, info)

    def resolve(self, name: str | list[str]) -> ResolvedTable:
        """The catalog table of this name, or TABLE_OR_VIEW_NOT_FOUND."""
        found = self.lookup(name)
        if found is None:
            raise table_not_found(self.qualify(name))
        return found

    # -- paths -------------------------------------------------------------------------------

    def path(self, raw: str) -> str:
        """`dbfs:/x` as the DBFS root's URL; any other path unchanged."""
        if self.dbfs_root and raw.lower().startswith("dbfs:"):
            return f"file://{self.dbfs_root.rstrip('/')}/{raw[5:].lstrip('/')}"
        return raw

    # -- reads -------------------------------------------------------------------------------

    def activate(self) -> None:
        """Make this context's session the JVM thread's active one (classic mode): a Python
        thread of the user's gets a JVM thread of its own, whose active session would be
        the driver's, where the `delta` source is not registered."""
        jspark = getattr(self.spark, "_jsparkSession", None)
        if jspark is None:
            return
        # An older or newer JVM API: the main thread still works.
        with contextlib.suppress(Exception):
            self.spark._jvm.org.apache.spark.sql.SparkSession.setActiveSession(jspark)

    def check_version(self, url: str, version: int | None, timestamp: str | None) -> None:
        """Refuse time travel past the table's last version (or before its first)."""
        if version is None:
            return
        from deltalake import DeltaTable

        latest = DeltaTable(url).version()
        if version < 0 or version > latest:
            raise analysis_error(
                "DELTA_VERSION_NOT_FOUND",
                f"Cannot time travel Delta table to version {version}. Available versions: "
                f"[0, {latest}].",
                "22003",
            )

    def read(
        self, table: ResolvedTable, version: int | None = None, timestamp: str | None = None
    ) -> Any:
        """A DataFrame over the table, optionally as of a version or timestamp."""
        return self.read_path(table.url, version, timestamp)

    def read_path(
        self,
        url: str,
        version: int | None = None,
        timestamp: str | None = None,
        *,
        python_source: bool = False,
    ) -> Any:
        """A DataFrame over the Delta table at `url`: Spark's Parquet reader on the files
        delta-rs plans (the `delta` Python source when asked for, or past its limits)."""
        self.check_version(url, version, timestamp)
        self.activate()
        if not python_source:
            frame = self.native_read(url, version, timestamp)
            if frame is not None:
                return frame
        reader = self.spark.read.format(DELTA).option(PYTHON_SOURCE_OPTION, "true")
        if version is not None:
            reader = reader.option("versionAsOf", str(version))
        if timestamp is not None:
            reader = reader.option("timestampAsOf", timestamp)
        return reader.load(url)

    def native_read(self, url: str, version: Any = None, timestamp: str | None = None) -> Any:
        """The snapshot read by Spark's Parquet reader, or None where the `delta` source reads
        it (see kiln.driver.delta.scan)."""
        from deltalake import DeltaTable

        from kiln.driver.delta.scan import native_scan

        if not DeltaTable.is_deltatable(url):
            raise analysis_error(
                "DELTA_MISSING_DELTA_TABLE", f"`{url}` is not a Delta table.", "42P01"
            )
        if version is not None and not str(version).isdigit():
            raise analysis_error(
                "INVALID_TIME_TRAVEL_SPEC", f"Invalid version {version!r}.", "42K0E"
            )
        return native_scan(
            self.spark, url, int(version) if version is not None else None, timestamp
        )

    def table(self, name: str) -> Any:
        """`spark.table(name)` with catalog names."""
        if self.is_spark_name(name):
            return self._original_table(name)
        return self.read(self.resolve(name))

    def view_of(self, df: Any) -> str:
        """A session temporary view over `df` (how SQL reaches a catalog table)."""
        with self._lock:
            self._views += 1
            view = f"__kiln_delta_{self._views}"
        df.createOrReplaceTempView(view)
        return view

    # -- writes ------------------------------------------------------------------------------

    def write(
        self,
        df: Any,
        url: str,
        mode: str,
        options: dict[str, str] | None = None,
        partition_by: list[str] | None = None,
        table_name: str | None = None,
    ) -> None:
        """Write `df` to the Delta table at `url` (append or overwrite)."""
        self._check_write(df, url, mode, options or {})
        self.activate()
        writer = df.write.format(DELTA).mode(mode)
        for key, value in (options or {}).items():
            writer = writer.option(key, value)
        if partition_by:
            writer = writer.option("partitionBy", ",".join(partition_by))
        if table_name:
            writer = writer.option("kiln.tableName", table_name)
        writer.save(url)

    def _check_write(self, df: Any, url: str, mode: str, options: dict[str, str]) -> None:
        # Checked here too (the source checks again) so the user sees Delta's message, not a
        # data source traceback; the table is not touched.
        from deltalake import DeltaTable

        from kiln.driver.delta.source import SchemaMismatch, check_schema, spark_schema

        lowered = {k.lower(): str(v).lower() for k, v in options.items()}
        if mode == "overwrite" and lowered.get("overwriteschema") == "true":
            return
        if not DeltaTable.is_deltatable(url):
            return
        try:
            check_schema(
                url,
                spark_schema(DeltaTable(url)),
                df.schema,
                merge_schema=lowered.get("mergeschema") == "true",
            )
        except SchemaMismatch as exc:
            raise analysis_error("_LEGACY_ERROR_TEMP_DELTA_0007", str(exc)) from None

    def create(
        self,
        full_name: str,
        df: Any | None = None,
        *,
        schema: Any = None,
        partition_by: list[str] | None = None,
        location: str | None = None,
        comment: str | None = None,
        properties: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> ResolvedTable:
        """Create a table, from a DataFrame's rows (version 0 holds them) or a schema."""
        kind = "EXTERNAL" if location else "MANAGED"
        columns = None
        if df is None or location:
            source = schema if schema is not None else getattr(df, "schema", None)
            columns = _columns(source, partition_by or [])
        info = self.client.create_table(
            full_name,
            table_type=kind,
            storage_location=location,
            columns=columns,
            comment=comment,
            properties=properties,
        )
        table = ResolvedTable(full_name, info)
        if df is not None:
            try:
                self.write(df, table.url, "append", options, partition_by, full_name)
            except BaseException:
                # The table is left as it was: not there.
                self.client.drop_table(full_name)
                raise
        return table

    def save_as_table(
        self,
        df: Any,
        name: str,
        mode: str,
        options: dict[str, str],
        partition_by: list[str] | None,
    ) -> None:
        """`df.write.saveAsTable(name)` for a catalog name."""
        found = self.lookup(name)
        mode = (mode or "errorifexists").lower()
        if found is None:
            self.create(self.qualify(name), df, partition_by=partition_by, options=options)
            return
        if mode in ("error", "errorifexists", "default"):
            raise already_exists(found.full_name)
        if mode == "ignore":
            return
        if mode not in ("append", "overwrite"):
            raise analysis_error("INVALID_SAVE_MODE", f"Unknown save mode {mode!r}.", "42000")
        self.write(df, found.url, mode, options)

    def sql(self, text: str, args: Any = None, **kwargs: Any) -> Any:
        """`spark.sql` with catalog names, Delta DDL/DML and time travel."""
        from kiln.driver.delta.sql_router import route

        self.activate()
        if args is not None or kwargs:
            return self._original_sql(text, args, **kwargs)
        return route(self, text)

    def spark_sql(self, text: str) -> Any:
        """Spark's own `spark.sql`."""
        return self._original_sql(text)


def _columns(schema: Any, partition_by: list[str]) -> list[dict[str, Any]]:
    import json

    lowered = [p.lower() for p in partition_by]
    return [
        {
            "name": f.name,
            "type_json": json.dumps(f.jsonValue()),
            "type_text": f.dataType.simpleString(),
            "position": i,
            "nullable": f.nullable,
            "partition_index": lowered.index(f.name.lower()) if f.name.lower() in lowered else None,
        }
        for i, f in enumerate(schema.fields)
    ]


def _patch_classes(get_session: Any) -> None:
    """Reader/writer methods that know catalog names and `dbfs:/` paths (this process only)."""
    from pyspark.sql.readwriter import DataFrameReader, DataFrameWriter

    pairs: list[tuple[Any, Any]] = [(DataFrameReader, DataFrameWriter)]
    try:
        from pyspark.sql.connect.readwriter import DataFrameReader as ConnectReader
        from pyspark.sql.connect.readwriter import DataFrameWriter as ConnectWriter

        pairs.append((ConnectReader, ConnectWriter))
    except ImportError:
        pass
    for reader_class, writer_class in pairs:
        _patch_reader(reader_class, get_session)
        _patch_writer(writer_class, get_session)


def _state(obj: Any) -> dict[str, Any]:
    state: dict[str, Any] | None = obj.__dict__.get("_kiln_state")
    if state is None:
        state = {"format": None, "mode": None, "options": {}, "partition_by": None}
        obj.__dict__["_kiln_state"] = state
    return state


def _patch_reader(cls: Any, get_session: Any) -> None:
    if cls.__dict__.get("_kiln_patched"):
        return
    load, table, option, options = cls.load, cls.table, cls.option, cls.options
    format_, schema = cls.format, cls.schema

    def kiln_format(self: Any, source: str) -> Any:
        _state(self)["format"] = str(source).lower()
        return format_(self, source)

    def kiln_schema(self: Any, schema_: Any) -> Any:
        _state(self)["schema"] = True
        return schema(self, schema_)

    def kiln_option(self: Any, key: str, value: Any) -> Any:
        _state(self)["options"][str(key).lower()] = str(value)
        return option(self, key, value)

    def kiln_options(self: Any, **opts: Any) -> Any:
        _state(self)["options"].update({str(k).lower(): str(v) for k, v in opts.items()})
        return options(self, **opts)

    def kiln_load(self: Any, path: Any = None, *args: Any, **opts: Any) -> Any:
        session = get_session()
        if session is not None:
            session.activate()
        if session is not None and isinstance(path, str):
            path = session.path(path)
            state = _state(self)
            recorded = {**state["options"], **{k.lower(): str(v) for k, v in opts.items()}}
            version = recorded.get("versionasof")
            if version is not None and str(version).isdigit():
                session.check_version(path, int(version), None)
            fmt = str(args[0] if args else opts.get("format") or state["format"] or "").lower()
            # A user-given schema is the Python source's to apply (it prunes to it).
            given_schema = state.get("schema") or opts.get("schema") is not None
            given_schema = given_schema or (len(args) > 1 and args[1] is not None)
            python_source = recorded.get(PYTHON_SOURCE_OPTION) == "true"
            if fmt == DELTA and not given_schema and not python_source:
                frame = session.native_read(path, version, recorded.get("timestampasof"))
                if frame is not None:
                    return frame
        return load(self, path, *args, **opts)

    def kiln_table(self: Any, tableName: str) -> Any:
        session = get_session()
        if session is None or session.is_spark_name(tableName):
            return table(self, tableName)
        recorded = _state(self)["options"]
        version = recorded.get("versionasof")
        return session.read(
            session.resolve(tableName),
            int(version) if version is not None else None,
            recorded.get("timestampasof"),
        )

    cls.load, cls.table, cls.option, cls.options = kiln_load, kiln_table, kiln_option, kiln_options
    cls.format, cls.schema = kiln_format, kiln_schema
    cls._kiln_patched = True


def _frame(writer: Any) -> Any:
    df = writer._df
    if hasattr(df, "schema"):
        return df
    from pyspark.sql.connect.dataframe import DataFrame as ConnectFrame

    return ConnectFrame(df, writer._spark)  # Spark Connect keeps the plan, not the frame


def _as_list(cols: Any) -> list[str] | None:
    if not cols:
        return None
    if isinstance(cols, str):
        return [cols]
    if len(cols) == 1 and isinstance(cols[0], (list, tuple)):
        cols = cols[0]
    return [str(c) for c in cols]


def _delta_save_mode(path: Any, mode: str | None) -> str | None:
    """The Python source's mode for a save mode (it has only append and overwrite); None to
    skip the write (`ignore` on an existing table)."""
    wanted = (mode or "errorifexists").lower()
    if wanted in ("append", "overwrite"):
        return wanted
    from deltalake import DeltaTable

    exists = isinstance(path, str) and bool(DeltaTable.is_deltatable(path))
    if wanted == "ignore":
        return None if exists else "append"
    if exists:
        raise analysis_error(
            "DELTA_PATH_EXISTS",
            f"Cannot write to already existent path {path} without setting OVERWRITE = 'true'.",
            "42K04",
        )
    return "append"


def _patch_writer(cls: Any, get_session: Any) -> None:
    if cls.__dict__.get("_kiln_patched"):
        return
    names = ("format", "mode", "option", "options", "partitionBy", "save", "saveAsTable")
    originals = {n: getattr(cls, n) for n in names}

    def kiln_format(self: Any, source: str) -> Any:
        _state(self)["format"] = str(source).lower()
        return originals["format"](self, source)

    def kiln_mode(self: Any, saveMode: str | None) -> Any:
        _state(self)["mode"] = saveMode
        return originals["mode"](self, saveMode)

    def kiln_option(self: Any, key: str, value: Any) -> Any:
        _state(self)["options"][str(key)] = str(value)
        return originals["option"](self, key, value)

    def kiln_options(self: Any, **options: Any) -> Any:
        _state(self)["options"].update({str(k): str(v) for k, v in options.items()})
        return originals["options"](self, **options)

    def kiln_partition_by(self: Any, *cols: Any) -> Any:
        # Kept here, applied at save: the delta source takes partitions as an option.
        _state(self)["partition_by"] = _as_list(cols)
        return self

    def kiln_save(
        self: Any,
        path: Any = None,
        format: Any = None,
        mode: Any = None,
        partitionBy: Any = None,
        **options: Any,
    ) -> Any:
        session = get_session()
        if session is not None:
            session.activate()
        if session is not None and isinstance(path, str):
            path = session.path(path)
        state = _state(self)
        cols = _as_list(partitionBy) or state["partition_by"]
        if (format or state["format"] or "").lower() == DELTA:
            if cols:
                originals["option"](self, "partitionBy", ",".join(cols))
            cols = None
            mode = _delta_save_mode(path, mode or state["mode"])
            if mode is None:
                return None
        return originals["save"](self, path, format, mode, cols, **options)

    def kiln_save_as_table(
        self: Any,
        name: str,
        format: Any = None,
        mode: Any = None,
        partitionBy: Any = None,
        **options: Any,
    ) -> Any:
        session = get_session()
        state = _state(self)
        cols = _as_list(partitionBy) or state["partition_by"]
        fmt = (format or state["format"] or DELTA).lower()
        if session is None or fmt != DELTA or session.is_spark_name(name):
            return originals["saveAsTable"](self, name, format, mode, cols, **options)
        merged = {**state["options"], **{k: str(v) for k, v in options.items()}}
        session.save_as_table(
            _frame(self), name, mode or state["mode"] or "errorifexists", merged, cols
        )
        return None

    cls.format, cls.mode, cls.option, cls.options = (
        kiln_format,
        kiln_mode,
        kiln_option,
        kiln_options,
    )
    cls.partitionBy, cls.save, cls.saveAsTable = kiln_partition_by, kiln_save, kiln_save_as_table
    cls._kiln_patched = True


def install(spark: Any, host: Any) -> DeltaSession:
    """Give a context's SparkSession the `delta` source and catalog names; its DeltaSession."""
    from kiln.driver.delta.source import DeltaDataSource

    spark.dataSource.register(DeltaDataSource)
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")
    # A snapshot's files are listed by path on the driver: Spark's default lists more than 32
    # paths with a Spark job of its own, which costs more than the listing.
    spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.threshold", "100000")
    session = DeltaSession(spark, CatalogClient(host), getattr(host, "dbfs_root", None))
    _patch_classes(lambda: session)
    spark.sql = session.sql
    spark.table = session.table
    spark.__dict__["_kiln_delta"] = session
    import sys

    from kiln.driver.delta import conflicts, tables

    tables.bind(session)
    # `from delta.tables import DeltaTable` and `from delta.exceptions import ...`, as on
    # Databricks.
    package = sys.modules.setdefault("delta", _module("delta"))
    package.tables = tables  # type: ignore[attr-defined]
    package.exceptions = conflicts  # type: ignore[attr-defined]
    sys.modules["delta.tables"] = tables
    sys.modules["delta.exceptions"] = conflicts
    return session


def _module(name: str) -> Any:
    import types

    module = types.ModuleType(name)
    module.__path__ = []
    return module
