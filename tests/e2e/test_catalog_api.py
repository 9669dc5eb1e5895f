"""The Unity Catalog API (catalogs, schemas, tables, volumes) with databricks-sdk against a real
`kiln up`; bad input through httpx with Databricks' error codes. Tables are Delta tables on
DBFS, read back from outside with deltalake."""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import deltalake
import httpx
import pyarrow as pa
import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, ResourceAlreadyExists
from databricks.sdk.service.catalog import (
    ColumnInfo,
    ColumnTypeName,
    DataSourceFormat,
    TableType,
    VolumeType,
)

from support import Server, assert_error

UC = "/api/2.1/unity-catalog"
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}_{os.getpid()}_{next(_names)}"


@pytest.fixture(scope="module")
def catalog(sdk: WorkspaceClient) -> Iterator[str]:
    name = unique("cat")
    sdk.catalogs.create(name=name, comment="tests")
    yield name
    sdk.catalogs.delete(name, force=True)


def dbfs(server: Server) -> Path:
    return server.data_dir / "dbfs"


def test_defaults_exist(sdk: WorkspaceClient) -> None:
    names = {c.name for c in sdk.catalogs.list()}
    assert {"main", "hive_metastore"} <= names
    assert sdk.schemas.get("main.default").full_name == "main.default"
    assert sdk.schemas.get("hive_metastore.default").catalog_name == "hive_metastore"
    main = sdk.catalogs.get("main")
    assert main.owner and main.created_at and main.metastore_id


def test_catalog_and_schema_lifecycle(sdk: WorkspaceClient) -> None:
    name = unique("Life")
    made = sdk.catalogs.create(name=name, comment="c1", properties={"k": "v"})
    assert made.name == name.lower() and made.comment == "c1" and made.properties == {"k": "v"}
    # Names are case-insensitive; every catalog comes with `default`.
    assert sdk.catalogs.get(name.upper()).name == name.lower()
    assert [s.name for s in sdk.schemas.list(catalog_name=name)] == ["default"]
    schema = sdk.schemas.create(name="sales", catalog_name=name, comment="s")
    assert schema.full_name == f"{name.lower()}.sales" and schema.schema_id
    updated = sdk.schemas.update(f"{name}.sales", comment="s2", new_name="sales2")
    assert updated.full_name == f"{name.lower()}.sales2" and updated.comment == "s2"
    assert sdk.catalogs.update(name, comment="c2").comment == "c2"
    assert {s.name for s in sdk.schemas.list(catalog_name=name)} == {"default", "sales2"}
    sdk.schemas.delete(f"{name}.sales2")
    with pytest.raises(NotFound):
        sdk.schemas.get(f"{name}.sales2")
    sdk.catalogs.delete(name)
    with pytest.raises(NotFound):
        sdk.catalogs.get(name)


def test_paging(sdk: WorkspaceClient, admin: httpx.Client, catalog: str) -> None:
    for i in range(3):
        sdk.schemas.create(name=f"p{i}", catalog_name=catalog)
    first = admin.get(f"{UC}/schemas", params={"catalog_name": catalog, "max_results": 2}).json()
    assert len(first["schemas"]) == 2 and first["next_page_token"]
    rest = admin.get(
        f"{UC}/schemas",
        params={"catalog_name": catalog, "max_results": 2, "page_token": first["next_page_token"]},
    ).json()
    names = [s["name"] for s in first["schemas"] + rest["schemas"]]
    assert names == sorted(names) and {"p0", "p1", "p2", "default"} <= set(names)
    # The SDK pages through with max_results=0.
    assert {"p0", "p1", "p2"} <= {s.name for s in sdk.schemas.list(catalog_name=catalog)}


def test_tables_managed_and_external(sdk: WorkspaceClient, server: Server, catalog: str) -> None:
    columns = [
        ColumnInfo(name="id", type_name=ColumnTypeName.LONG, type_text="bigint", position=0),
        ColumnInfo(name="city", type_name=ColumnTypeName.STRING, type_text="string", position=1),
    ]
    managed = sdk.tables.create(
        name="Trips",
        catalog_name=catalog,
        schema_name="default",
        table_type=TableType.MANAGED,
        data_source_format=DataSourceFormat.DELTA,
        storage_location="",
        columns=columns,
    )
    assert managed.full_name == f"{catalog}.default.trips"
    assert managed.table_type == TableType.MANAGED
    assert managed.data_source_format == DataSourceFormat.DELTA
    assert managed.storage_location and managed.storage_location.startswith("file://")
    assert [(c.name, c.type_name, c.type_text) for c in managed.columns or []] == [
        ("id", ColumnTypeName.LONG, "bigint"),
        ("city", ColumnTypeName.STRING, "string"),
    ]
    # The log is the truth: a write from plain Python shows in the API at once.
    location = managed.storage_location
    deltalake.write_deltalake(
        location,
        pa.table({"id": pa.array([1, 2], pa.int64()), "city": ["a", "b"]}),
        mode="append",
    )
    got = sdk.tables.get(f"{catalog}.default.trips")
    assert got.properties and got.properties["delta.lastCommitVersion"] == "1"
    assert deltalake.DeltaTable(location).to_pandas()["id"].tolist() == [1, 2]
    assert sdk.tables.exists(f"{catalog}.default.trips").table_exists is True
    assert sdk.tables.exists(f"{catalog}.default.nope").table_exists is False

    # An external table over files written elsewhere in DBFS, named by a dbfs:/ path.
    ext_dir = dbfs(server) / "ext" / unique("t")
    deltalake.write_deltalake(str(ext_dir), pa.table({"x": [1.5]}))
    rel = ext_dir.relative_to(dbfs(server))
    external = sdk.tables.create(
        name="ext",
        catalog_name=catalog,
        schema_name="default",
        table_type=TableType.EXTERNAL,
        data_source_format=DataSourceFormat.DELTA,
        storage_location=f"dbfs:/{rel}",
    )
    assert external.table_type == TableType.EXTERNAL
    assert [c.type_name for c in external.columns or []] == [ColumnTypeName.DOUBLE]
    listed = {t.name: t for t in sdk.tables.list(catalog_name=catalog, schema_name="default")}
    assert set(listed) >= {"trips", "ext"}
    assert listed["trips"].columns
    summaries = list(
        sdk.tables.list(catalog_name=catalog, schema_name="default", omit_columns=True)
    )
    assert summaries and all(not t.columns for t in summaries)

    sdk.tables.update(f"{catalog}.default.ext", owner="someone@example.com")
    assert sdk.tables.get(f"{catalog}.default.ext").owner == "someone@example.com"
    # Dropping a managed table removes its files; an external one keeps them.
    sdk.tables.delete(f"{catalog}.default.trips")
    sdk.tables.delete(f"{catalog}.default.ext")
    assert not Path(location.removeprefix("file://")).exists()
    assert ext_dir.exists()
    with pytest.raises(NotFound):
        sdk.tables.get(f"{catalog}.default.trips")


def test_volumes(sdk: WorkspaceClient, server: Server, catalog: str) -> None:
    vol = sdk.volumes.create(
        catalog_name=catalog, schema_name="default", name="raw", volume_type=VolumeType.MANAGED
    )
    assert vol.full_name == f"{catalog}.default.raw" and vol.volume_type == VolumeType.MANAGED
    assert vol.storage_location and Path(vol.storage_location.removeprefix("file://")).is_dir()
    ext = sdk.volumes.create(
        catalog_name=catalog,
        schema_name="default",
        name="landing",
        volume_type=VolumeType.EXTERNAL,
        storage_location=f"dbfs:/landing/{unique('v')}",
    )
    assert ext.volume_type == VolumeType.EXTERNAL
    assert {v.name for v in sdk.volumes.list(catalog_name=catalog, schema_name="default")} == {
        "raw",
        "landing",
    }
    renamed = sdk.volumes.update(f"{catalog}.default.raw", new_name="raw2", comment="x")
    assert renamed.full_name == f"{catalog}.default.raw2" and renamed.comment == "x"
    assert sdk.volumes.read(f"{catalog}.default.raw2").volume_id == vol.volume_id
    sdk.volumes.delete(f"{catalog}.default.raw2")
    sdk.volumes.delete(f"{catalog}.default.landing")
    assert not Path(vol.storage_location.removeprefix("file://")).exists()
    with pytest.raises(NotFound):
        sdk.volumes.read(f"{catalog}.default.raw2")


def test_bad_catalog_and_schema_input(
    admin: httpx.Client, sdk: WorkspaceClient, catalog: str
) -> None:
    with pytest.raises(ResourceAlreadyExists):
        sdk.catalogs.create(name=catalog)
    assert_error(admin.post(f"{UC}/catalogs", json={}), 400, "INVALID_PARAMETER_VALUE")
    for bad in ("a.b", "has space", "x/y", "-lead", "é"):
        assert_error(
            admin.post(f"{UC}/catalogs", json={"name": bad}), 400, "INVALID_PARAMETER_VALUE"
        )
    assert_error(
        admin.post(f"{UC}/catalogs", json={"name": unique("f"), "connection_name": "pg"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        admin.post(f"{UC}/catalogs", json={"name": unique("r"), "storage_root": "s3://b/x"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(admin.get(f"{UC}/catalogs/nope_{os.getpid()}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.delete(f"{UC}/catalogs/main"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        admin.patch(f"{UC}/catalogs/main", json={"new_name": "other"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(admin.get(f"{UC}/schemas"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        admin.get(f"{UC}/schemas", params={"catalog_name": catalog, "max_results": -1}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(
        admin.get(f"{UC}/schemas", params={"catalog_name": catalog, "page_token": "forged"}),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert_error(admin.get(f"{UC}/schemas/{catalog}"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(admin.get(f"{UC}/schemas/{catalog}.nope"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(
        admin.post(f"{UC}/schemas", json={"name": "default", "catalog_name": catalog}),
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    assert_error(
        admin.post(f"{UC}/schemas", json={"name": "s", "catalog_name": "nope_cat"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    # A catalog with a schema of its own (or a schema with a table) is deleted only by force.
    full = unique("nonempty")
    sdk.catalogs.create(name=full)
    sdk.schemas.create(name="s1", catalog_name=full)
    assert_error(admin.delete(f"{UC}/catalogs/{full}"), 400, "INVALID_PARAMETER_VALUE")
    assert sdk.catalogs.get(full).name == full
    sdk.catalogs.delete(full, force=True)


def test_bad_table_and_volume_input(
    admin: httpx.Client, sdk: WorkspaceClient, server: Server, catalog: str
) -> None:
    base = {"catalog_name": catalog, "schema_name": "default", "data_source_format": "DELTA"}
    cols = [{"name": "a", "type_name": "INT", "type_text": "int", "position": 0}]
    ok = admin.post(f"{UC}/tables", json={**base, "name": "dup", "columns": cols})
    assert ok.status_code == 200, ok.text
    cases: list[tuple[dict[str, object], int, str]] = [
        ({**base, "name": "dup", "columns": cols}, 409, "RESOURCE_ALREADY_EXISTS"),
        ({**base, "name": "bad.name", "columns": cols}, 400, "INVALID_PARAMETER_VALUE"),
        (
            {**base, "name": "v", "table_type": "VIEW", "columns": cols},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ({**base, "name": "f", "data_source_format": "CSV"}, 400, "INVALID_PARAMETER_VALUE"),
        ({**base, "name": "e", "table_type": "EXTERNAL"}, 400, "INVALID_PARAMETER_VALUE"),
        (
            {**base, "name": "o", "table_type": "EXTERNAL", "storage_location": "/etc/passwd_t"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**base, "name": "o", "table_type": "EXTERNAL", "storage_location": "s3://x/y"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**base, "name": "o", "table_type": "EXTERNAL", "storage_location": "dbfs:/../x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**base, "name": "m", "table_type": "MANAGED", "storage_location": "dbfs:/x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**base, "name": "c", "columns": [{"name": "a", "type_text": "weird"}]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**base, "name": "c2", "columns": [cols[0], cols[0]]},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**base, "schema_name": "nope", "name": "t", "columns": cols},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        ({"name": "t", "columns": cols}, 400, "INVALID_PARAMETER_VALUE"),
    ]
    for body, status, code in cases:
        assert_error(admin.post(f"{UC}/tables", json=body), status, code)
    # A location inside another table's is refused.
    dup = sdk.tables.get(f"{catalog}.default.dup")
    assert dup.storage_location
    inside = dup.storage_location + "/nested"
    assert_error(
        admin.post(
            f"{UC}/tables",
            json={
                **base,
                "name": "n",
                "table_type": "EXTERNAL",
                "storage_location": inside,
                "columns": cols,
            },
        ),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    missing = admin.get(f"{UC}/tables/{catalog}.default.missing")
    assert "does not exist" in assert_error(missing, 404, "RESOURCE_DOES_NOT_EXIST")["message"]
    assert_error(admin.get(f"{UC}/tables/nope_cat.default.t"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.get(f"{UC}/tables/two.parts"), 400, "INVALID_PARAMETER_VALUE")
    assert_error(
        admin.get(f"{UC}/tables", params={"catalog_name": catalog}), 400, "INVALID_PARAMETER_VALUE"
    )
    assert_error(
        admin.delete(f"{UC}/tables/{catalog}.default.missing"), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    # A schema holding a table is deleted only by force.
    assert_error(admin.delete(f"{UC}/schemas/{catalog}.default"), 400, "INVALID_PARAMETER_VALUE")

    vbase = {"catalog_name": catalog, "schema_name": "default"}
    vcases: list[tuple[dict[str, object], int, str]] = [
        ({**vbase, "name": "v1"}, 400, "INVALID_PARAMETER_VALUE"),
        ({**vbase, "name": "v1", "volume_type": "OTHER"}, 400, "INVALID_PARAMETER_VALUE"),
        ({**vbase, "name": "v1", "volume_type": "EXTERNAL"}, 400, "INVALID_PARAMETER_VALUE"),
        (
            {**vbase, "name": "v1", "volume_type": "EXTERNAL", "storage_location": "/tmp/../../x"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**vbase, "name": "v1", "volume_type": "MANAGED", "storage_location": "dbfs:/v"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            {**vbase, "name": "v1", "volume_type": "EXTERNAL", "storage_location": inside},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ]
    for body, status, code in vcases:
        assert_error(admin.post(f"{UC}/volumes", json=body), status, code)
    assert_error(admin.get(f"{UC}/volumes/{catalog}.default.none"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_error(admin.get(f"{UC}/volumes"), 400, "INVALID_PARAMETER_VALUE")
    made = admin.post(f"{UC}/volumes", json={**vbase, "name": "v2", "volume_type": "MANAGED"})
    assert made.status_code == 200, made.text
    assert_error(
        admin.post(f"{UC}/volumes", json={**vbase, "name": "v2", "volume_type": "MANAGED"}),
        409,
        "RESOURCE_ALREADY_EXISTS",
    )
    # The table and volume are untouched by all the refusals.
    assert sdk.tables.get(f"{catalog}.default.dup").storage_location == dup.storage_location
    admin.delete(f"{UC}/tables/{catalog}.default.dup").raise_for_status()
    admin.delete(f"{UC}/volumes/{catalog}.default.v2").raise_for_status()


def test_only_owners_change_or_drop(
    admin: httpx.Client,
    server: Server,
    sdk: WorkspaceClient,
    make_user: Callable[..., tuple[str, str]],
    catalog: str,
) -> None:
    name, token = make_user("uc")
    with server.client(token) as user:
        # Anyone may read and create.
        assert user.get(f"{UC}/catalogs/{catalog}").status_code == 200
        mine = unique("mine")
        made = user.post(f"{UC}/schemas", json={"name": mine, "catalog_name": catalog})
        assert made.status_code == 200 and made.json()["owner"] == name
        assert (
            user.patch(f"{UC}/schemas/{catalog}.{mine}", json={"comment": "ok"}).status_code == 200
        )
        for response in (
            user.patch(f"{UC}/catalogs/{catalog}", json={"comment": "no"}),
            user.delete(f"{UC}/catalogs/{catalog}"),
            user.delete(f"{UC}/schemas/{catalog}.default"),
        ):
            assert_error(response, 403, "PERMISSION_DENIED")
        assert user.delete(f"{UC}/schemas/{catalog}.{mine}").status_code == 200
    assert sdk.catalogs.get(catalog).comment == "tests"


class _Host:
    """A context host for dbutils pointing at the test server (as a notebook's dbutils)."""

    cluster_id = "no-cluster"
    context_id = "no-context"
    user_name = "admin"
    dbfs_root: str | None = None

    def __init__(self, server: Server) -> None:
        self.api_url = server.url
        self.token = server.token

    def emit(self, output: dict[str, object]) -> None:
        raise AssertionError("not expected here")

    def request_restart(self) -> None:
        raise AssertionError("not expected here")


def test_volume_files(
    sdk: WorkspaceClient, admin: httpx.Client, server: Server, catalog: str
) -> None:
    from kiln.driver.dbutils import attach

    sdk.volumes.create(
        catalog_name=catalog, schema_name="default", name="files", volume_type=VolumeType.MANAGED
    )
    landing = f"dbfs:/landing/{unique('ext')}"
    ext = sdk.volumes.create(
        catalog_name=catalog,
        schema_name="default",
        name="ext_files",
        volume_type=VolumeType.EXTERNAL,
        storage_location=landing,
    )
    base = f"/Volumes/{catalog}/default/files"
    sdk.files.upload(f"{base}/raw/a.csv", io.BytesIO(b"x,y\n1,2\n"), overwrite=True)
    got = sdk.files.download(f"{base}/raw/a.csv").contents
    assert got is not None and got.read() == b"x,y\n1,2\n"
    listed = [e.path for e in sdk.files.list_directory_contents(f"{base}/raw")]
    assert listed == [f"{base}/raw/a.csv"]
    # dbutils.fs reaches the same files (a notebook's dbutils, over the control plane).
    attached = attach(_Host(server))
    try:
        fs = attached.dbutils.fs
        assert fs.head(f"{base}/raw/a.csv") == "x,y\n1,2\n"
        fs.put(f"{base}/raw/b.txt", "from dbutils", True)
        assert {f.name for f in fs.ls(f"{base}/raw")} == {"a.csv", "b.txt"}
    finally:
        attached.close()
    b = sdk.files.download(f"{base}/raw/b.txt").contents
    assert b is not None and b.read() == b"from dbutils"
    # An external volume's files are its location's files, listed under /Volumes.
    ext_base = f"/Volumes/{catalog}/default/ext_files"
    sdk.files.upload(f"{ext_base}/e.txt", io.BytesIO(b"ext"), overwrite=True)
    assert ext.storage_location
    assert (Path(ext.storage_location.removeprefix("file://")) / "e.txt").read_bytes() == b"ext"
    assert [e.path for e in sdk.files.list_directory_contents(ext_base)] == [f"{ext_base}/e.txt"]
    # A path naming no volume is a plain DBFS path (as Files API paths were before volumes).
    assert_error(
        admin.get(f"/api/2.0/fs/directories/Volumes/{catalog}/default/nope"),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    # A renamed managed volume keeps its files under its new name.
    sdk.volumes.update(f"{catalog}.default.files", new_name="files2")
    moved = sdk.files.download(f"/Volumes/{catalog}/default/files2/raw/a.csv").contents
    assert moved is not None and moved.read() == b"x,y\n1,2\n"
    sdk.volumes.delete(f"{catalog}.default.files2")
    sdk.volumes.delete(f"{catalog}.default.ext_files")
    assert not (dbfs(server) / "Volumes" / catalog / "default" / "files2").exists()
