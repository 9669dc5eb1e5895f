"""CREATE TABLE [AS SELECT], INSERT, DROP TABLE, SHOW, DESCRIBE and USE over catalog names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kiln.driver.delta.client import already_exists, analysis_error, table_not_found
from kiln.driver.delta.sql_router import Token, _name_at, _string

__all__ = ["create_table", "describe", "drop_table", "insert", "show", "use"]


def _expect_name(tokens: Sequence[Token], i: int, what: str) -> tuple[list[str], int]:
    parts, after = _name_at(tokens, i)
    if not parts:
        raise analysis_error("PARSE_SYNTAX_ERROR", f"Syntax error: expected {what}.", "42601")
    return parts, after


def _closing(tokens: Sequence[Token], i: int) -> int:
    """The index of the parenthesis closing the one at token i."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].text == "(":
            depth += 1
        elif tokens[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    raise analysis_error("PARSE_SYNTAX_ERROR", "Syntax error: unbalanced parentheses.", "42601")


def _idents(tokens: Sequence[Token]) -> list[str]:
    return [str(t.ident) for t in tokens if t.ident is not None]


def _empty(session: Any) -> Any:
    return session.spark.createDataFrame([], "result string").limit(0)


def create_table(session: Any, text: str, tokens: Sequence[Token]) -> Any:
    """CREATE [OR REPLACE] TABLE [IF NOT EXISTS] name [(cols)] [USING delta] [PARTITIONED BY]
    [LOCATION] [COMMENT] [TBLPROPERTIES] [AS query]."""
    i = 1
    replace = False
    if [t.upper for t in tokens[1:3]] == ["OR", "REPLACE"]:
        replace, i = True, 3
    if tokens[i].upper != "TABLE":
        return session.spark_sql(text)
    i += 1
    if_not_exists = [t.upper for t in tokens[i : i + 3]] == ["IF", "NOT", "EXISTS"]
    if if_not_exists:
        i += 3
    parts, i = _expect_name(tokens, i, "a table name")
    full = session.qualify(parts)
    columns_ddl: str | None = None
    if i < len(tokens) and tokens[i].text == "(":
        close = _closing(tokens, i)
        columns_ddl = text[tokens[i].end : tokens[close].start]
        i = close + 1
    partition_by: list[str] = []
    location: str | None = None
    comment: str | None = None
    properties: dict[str, str] = {}
    query: str | None = None
    while i < len(tokens):
        word = tokens[i].upper
        if word == "USING":
            provider = tokens[i + 1].text.lower()
            if provider != "delta":
                raise analysis_error(
                    "UNSUPPORTED_DATA_SOURCE",
                    f"Catalog tables are Delta tables: USING {provider} is not supported here.",
                    "0A000",
                )
            i += 2
        elif word == "PARTITIONED" and tokens[i + 1].upper == "BY":
            close = _closing(tokens, i + 2)
            partition_by = _idents(tokens[i + 3 : close])
            i = close + 1
        elif word == "LOCATION":
            location = _string(tokens[i + 1])
            i += 2
        elif word == "COMMENT":
            comment = _string(tokens[i + 1])
            i += 2
        elif word == "TBLPROPERTIES":
            close = _closing(tokens, i + 1)
            body = tokens[i + 2 : close]
            for k in range(0, len(body), 4):
                key = body[k]
                value = body[k + 2] if k + 2 < len(body) else None
                if value is not None:
                    properties[_string(key) if key.kind == "str" else key.text] = (
                        _string(value) if value.kind == "str" else value.text
                    )
            i = close + 1
        elif word == "AS":
            query = text[tokens[i + 1].start :] if i + 1 < len(tokens) else ""
            break
        else:
            raise analysis_error(
                "PARSE_SYNTAX_ERROR", f"Syntax error at or near '{tokens[i].text}'.", "42601"
            )
    existing = session.lookup(full)
    if existing is not None:
        if if_not_exists:
            return _empty(session)
        if not replace:
            raise already_exists(full)
    if query is not None:
        df = session.sql(query)
        if existing is not None:  # CREATE OR REPLACE ... AS: a new version of the same table
            session.write(df, existing.url, "overwrite", {"overwriteSchema": "true"})
            return _empty(session)
        session.create(
            full,
            df,
            partition_by=partition_by,
            location=location,
            comment=comment,
            properties=properties or None,
        )
        return _empty(session)
    if columns_ddl is None:
        if location is None:
            raise analysis_error(
                "DELTA_SCHEMA_NOT_PROVIDED",
                "Table schema is not provided. Please provide the schema (column definition) "
                "of the table when using REPLACE table and an AS SELECT query is not provided.",
                "42908",
            )
        session.client.create_table(full, table_type="EXTERNAL", storage_location=location)
        return _empty(session)
    schema = session.spark.createDataFrame([], columns_ddl).schema
    if existing is not None:
        session.write(
            session.spark.createDataFrame([], schema),
            existing.url,
            "overwrite",
            {"overwriteSchema": "true"},
        )
        return _empty(session)
    session.create(
        full,
        schema=schema,
        partition_by=partition_by,
        location=location,
        comment=comment,
        properties=properties or None,
    )
    return _empty(session)


def insert(session: Any, text: str, tokens: Sequence[Token]) -> Any:
    """INSERT INTO|OVERWRITE [TABLE] name [(cols)] query|VALUES ... (by position)."""
    i = 1
    mode = "append"
    if tokens[i].upper == "OVERWRITE":
        mode = "overwrite"
    elif tokens[i].upper != "INTO":
        return session.spark_sql(text)
    i += 1
    if i < len(tokens) and tokens[i].upper == "TABLE":
        i += 1
    parts, i = _expect_name(tokens, i, "a table name")
    if len(parts) < 3 and session.is_spark_name(parts):
        return session.spark_sql(text)
    table = session.lookup(parts)
    if table is None:
        if len(parts) == 3:
            raise table_not_found(session.qualify(parts))
        return session.spark_sql(text)
    names: list[str] | None = None
    if (
        i < len(tokens)
        and tokens[i].text == "("
        and tokens[i + 1].upper not in ("SELECT", "VALUES", "WITH", "FROM")
    ):
        close = _closing(tokens, i)
        names = _idents(tokens[i + 1 : close])
        i = close + 1
    if i < len(tokens) and tokens[i].upper == "BY" and tokens[i + 1].upper == "NAME":
        raise analysis_error("UNSUPPORTED_FEATURE", "INSERT ... BY NAME is not supported.", "0A000")
    query = text[tokens[i].start :] if i < len(tokens) else ""
    df = session.sql(query)
    columns = table.columns
    target = [c["name"] for c in columns]
    given = names or target[: len(df.columns)]
    if len(given) != len(df.columns):
        raise analysis_error(
            "INSERT_COLUMN_ARITY_MISMATCH.NOT_ENOUGH_DATA_COLUMNS"
            if len(df.columns) < len(given)
            else "INSERT_COLUMN_ARITY_MISMATCH.TOO_MANY_DATA_COLUMNS",
            f"Cannot write to {session.qualify(parts)}: the query has {len(df.columns)} "
            f"columns, the target {len(given)}.",
            "21S01",
        )
    lowered = {g.lower(): k for k, g in enumerate(given)}
    unknown = [g for g in given if g.lower() not in {t.lower() for t in target}]
    if unknown:
        raise analysis_error(
            "UNRESOLVED_COLUMN.WITH_SUGGESTION",
            f"Columns {unknown} are not in {session.qualify(parts)}.",
            "42703",
        )
    exprs = []
    for column in columns:
        k = lowered.get(column["name"].lower())
        source = f"`{df.columns[k]}`" if k is not None else "NULL"
        exprs.append(f"CAST({source} AS {column['type_text']}) AS `{column['name']}`")
    session.write(df.selectExpr(*exprs), table.url, mode)
    return _empty(session)


def drop_table(session: Any, tokens: Sequence[Token]) -> Any:
    """DROP TABLE [IF EXISTS] name."""
    i = 2
    if_exists = [t.upper for t in tokens[2:4]] == ["IF", "EXISTS"]
    if if_exists:
        i = 4
    parts, _ = _expect_name(tokens, i, "a table name")
    if len(parts) < 3 and session.is_spark_name(parts):
        return session.spark_sql(" ".join(t.text for t in tokens))
    table = session.lookup(parts)
    if table is None:
        if if_exists:
            return _empty(session)
        raise table_not_found(session.qualify(parts))
    session.client.drop_table(table.full_name)
    return _empty(session)


def show(session: Any, tokens: Sequence[Token]) -> Any:
    """SHOW CATALOGS | SCHEMAS [IN c] | TABLES [IN [c.]s]."""
    kind = tokens[1].upper
    target: list[str] = []
    if len(tokens) > 3 and tokens[2].upper in ("IN", "FROM"):
        target, _ = _name_at(tokens, 3)
    spark = session.spark
    if kind == "CATALOGS":
        names = [(c["name"],) for c in session.client.catalogs()]
        return spark.createDataFrame(names, "catalog string")
    if kind in ("SCHEMAS", "DATABASES"):
        catalog = target[0] if target else session.catalog
        names = [(s["name"],) for s in session.client.schemas(catalog)]
        return spark.createDataFrame(names, "databaseName string")
    if len(target) == 2:
        catalog, schema = target
    else:
        catalog, schema = session.catalog, (target[0] if target else session.schema)
    rows = [(schema, t["name"], False) for t in session.client.tables(catalog, schema)]
    for view in spark.catalog.listTables():
        if view.isTemporary and not view.name.startswith("__kiln_"):
            rows.append(("", view.name, True))
    return spark.createDataFrame(rows, "database string, tableName string, isTemporary boolean")


def describe(session: Any, tokens: Sequence[Token]) -> Any | None:
    """DESCRIBE [TABLE] [EXTENDED] | HISTORY | DETAIL name; None to let Spark answer."""
    from kiln.driver.delta.describe import describe_frame, detail_frame, history_frame
    from kiln.driver.delta.files import open_table

    i = 1
    what = "table"
    word = tokens[i].upper
    if word in ("HISTORY", "DETAIL"):
        what, i = word.lower(), i + 1
    else:
        if word == "TABLE":
            i += 1
        if i < len(tokens) and tokens[i].upper in ("EXTENDED", "FORMATTED"):
            what, i = "extended", i + 1
    if i >= len(tokens) or tokens[i].ident is None or tokens[i].upper in ("QUERY", "FUNCTION"):
        return None
    parts, after = _name_at(tokens, i)
    if len(parts) < 3 and session.is_spark_name(parts):
        return None
    table = session.lookup(parts)
    if table is None:
        raise table_not_found(session.qualify(parts))
    if what == "history":
        limit = None
        if after + 1 < len(tokens) and tokens[after].upper == "LIMIT":
            limit = int(tokens[after + 1].text)
        return history_frame(session, open_table(table.url), limit)
    if what == "detail":
        return detail_frame(session, open_table(table.url), table.full_name)
    return describe_frame(session, table.info, what == "extended")


def use(session: Any, tokens: Sequence[Token]) -> Any:
    """USE CATALOG c | USE SCHEMA|DATABASE [c.]s | USE [c.]s."""
    i = 1
    kind = "schema"
    if tokens[i].upper == "CATALOG":
        kind, i = "catalog", 2
    elif tokens[i].upper in ("SCHEMA", "DATABASE", "NAMESPACE"):
        i = 2
    parts, _ = _expect_name(tokens, i, "a name")
    if kind == "catalog":
        if parts[0] not in {c["name"] for c in session.client.catalogs()}:
            raise analysis_error(
                "NO_SUCH_CATALOG_EXCEPTION", f"Catalog '{parts[0]}' was not found.", "42704"
            )
        session.catalog, session.schema = parts[0], "default"
        return _empty(session)
    catalog, schema = (parts[0], parts[1]) if len(parts) == 2 else (session.catalog, parts[0])
    if not session.client.schema_exists(catalog, schema):
        raise analysis_error(
            "SCHEMA_NOT_FOUND", f"The schema `{catalog}`.`{schema}` cannot be found.", "42704"
        )
    session.catalog, session.schema = catalog, schema
    return _empty(session)
