"""The feature store client: tables, merge writes and point-in-time training sets (exact rows)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kiln.driver.feature_store import FeatureEngineeringClient, FeatureLookup

SPEND = "main.default.customer_spend"
REGION = "main.default.customer_region"


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day)


@pytest.fixture
def fe(tmp_path: Path) -> FeatureEngineeringClient:
    client = FeatureEngineeringClient(root=str(tmp_path / "features"))
    client.create_table(
        SPEND,
        primary_keys="customer_id",
        timestamp_keys="ts",
        df=pd.DataFrame(
            {
                "customer_id": ["c1", "c1", "c1", "c2"],
                "ts": [ts("2024-01-01"), ts("2024-01-05"), ts("2024-01-10"), ts("2024-01-03")],
                "spend": [10.0, 20.0, 30.0, 5.0],
            }
        ),
        description="Spend per customer over time",
    )
    client.create_table(
        REGION,
        primary_keys=["customer_id"],
        df=pd.DataFrame({"customer_id": ["c1", "c2"], "region": ["eu", "us"]}),
    )
    # Merge: one update (c1 on 01-05) and one new row (c2 on 01-08).
    client.write_table(
        SPEND,
        pd.DataFrame(
            {
                "customer_id": ["c1", "c2"],
                "ts": [ts("2024-01-05"), ts("2024-01-08")],
                "spend": [25.0, 7.0],
            }
        ),
        mode="merge",
    )
    return client


def rows(df: Any) -> list[tuple[Any, ...]]:
    """Rows as tuples, NaN/None/NaT as None (so they compare)."""
    out = []
    for row in df.itertuples(index=False):
        out.append(
            tuple(
                None
                if (v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)))
                else v
                for v in row
            )
        )
    return out


def test_tables_and_merge(fe: FeatureEngineeringClient) -> None:
    table = fe.get_table(SPEND)
    assert table.primary_keys == ["customer_id"] and table.timestamp_keys == ["ts"]
    assert table.description == "Spend per customer over time"
    spend = fe.read_table(SPEND).sort_values(["customer_id", "ts"])
    assert rows(spend) == [
        ("c1", ts("2024-01-01"), 10.0),
        ("c1", ts("2024-01-05"), 25.0),
        ("c1", ts("2024-01-10"), 30.0),
        ("c2", ts("2024-01-03"), 5.0),
        ("c2", ts("2024-01-08"), 7.0),
    ]
    fe.write_table(REGION, pd.DataFrame({"customer_id": ["c3"], "region": ["apac"]}), "overwrite")
    assert rows(fe.read_table(REGION)) == [("c3", "apac")]


def test_point_in_time_training_set_exact_rows(fe: FeatureEngineeringClient) -> None:
    training = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c1", "c1", "c3", "c2", "c1"],
            "event_ts": [
                ts("2024-01-04"),  # c1's latest at or before: 01-01 → 10
                ts("2024-01-02"),  # before c2's first row → null
                ts("2024-01-10"),  # exact match allowed → 30
                ts("2023-12-31"),  # before any row → null
                ts("2024-01-05"),  # unknown key → null
                ts("2024-01-09"),  # c2's 01-08 (merged in) → 7
                ts("2024-01-07"),  # c1's 01-05, updated by the merge → 25
            ],
            "label": [0, 1, 1, 0, 0, 1, 0],
        }
    )
    training_set = fe.create_training_set(
        training,
        [
            FeatureLookup(SPEND, lookup_key="customer_id", timestamp_lookup_key="event_ts"),
            FeatureLookup(
                REGION,
                lookup_key="customer_id",
                feature_names=["region"],
                rename_outputs={"region": "customer_region"},
            ),
        ],
        label="label",
        exclude_columns=["event_ts"],
    )
    df = training_set.load_df()
    assert list(df.columns) == ["customer_id", "label", "spend", "customer_region"]
    assert rows(df) == [
        ("c1", 0, 10.0, "eu"),
        ("c2", 1, None, "us"),
        ("c1", 1, 30.0, "eu"),
        ("c1", 0, None, "eu"),
        ("c3", 0, None, None),
        ("c2", 1, 7.0, "us"),
        ("c1", 0, 25.0, "eu"),
    ]


def test_lookup_without_timestamp_takes_the_latest(fe: FeatureEngineeringClient) -> None:
    df = fe.create_training_set(
        pd.DataFrame({"id": ["c2", "c1"]}),
        [FeatureLookup(SPEND, lookup_key="id", feature_names="spend")],
        label=None,
    ).load_df()
    assert rows(df) == [("c2", 7.0), ("c1", 30.0)]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda fe: fe.get_table("main.default.nope"), "does not exist"),
        (lambda fe: fe.get_table("no_dots"), "catalog.schema.table"),
        (lambda fe: fe.get_table("a.b.../x"), "catalog.schema.table"),
        (
            lambda fe: fe.create_table(SPEND, "customer_id", pd.DataFrame({"customer_id": ["x"]})),
            "already exists",
        ),
        (
            lambda fe: fe.create_table(
                "main.default.dups", "k", pd.DataFrame({"k": [1, 1], "v": [1, 2]})
            ),
            "duplicate rows",
        ),
        (
            lambda fe: fe.create_table("main.default.nokey", "k", pd.DataFrame({"v": [1]})),
            "not a column",
        ),
        (lambda fe: fe.create_table("main.default.empty", "k"), "df or schema"),
        (
            lambda fe: fe.write_table(REGION, pd.DataFrame({"customer_id": ["c1"]}), "append"),
            "mode",
        ),
        (
            lambda fe: fe.create_training_set(
                pd.DataFrame({"id": ["c1"]}),
                [FeatureLookup(SPEND, lookup_key="id", feature_names=["nope"])],
                label=None,
            ),
            "no feature",
        ),
        (
            lambda fe: fe.create_training_set(
                pd.DataFrame({"id": ["c1"]}),
                [FeatureLookup(SPEND, lookup_key=["id", "x"])],
                label=None,
            ),
            "does not match the primary keys",
        ),
        (
            lambda fe: fe.create_training_set(
                pd.DataFrame({"other": ["c1"]}), [FeatureLookup(SPEND, lookup_key="id")], label=None
            ),
            "no lookup key",
        ),
        (
            lambda fe: fe.create_training_set(
                pd.DataFrame({"id": ["c1"]}),
                [FeatureLookup(SPEND, lookup_key="id", timestamp_lookup_key="when")],
                label=None,
            ),
            "timestamp_lookup_key",
        ),
    ],
)
def test_bad_input(fe: FeatureEngineeringClient, call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call(fe)


def test_root_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KILN_FEATURE_STORE_ROOT", raising=False)
    with pytest.raises(ValueError, match="root"):
        FeatureEngineeringClient()


def test_publish_table_refuses_what_kiln_cannot_publish(
    fe: FeatureEngineeringClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.driver.feature_store import OnlineStoreSpec

    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    with pytest.raises(ValueError, match="must be an OnlineStoreSpec"):
        fe.publish_table(SPEND, "dynamodb")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not supported"):
        fe.publish_table(SPEND, streaming=True)
    with pytest.raises(ValueError, match="not supported"):
        fe.publish_table(SPEND, filter_condition="spend > 1")
    with pytest.raises(ValueError, match="Unsupported publish mode"):
        fe.publish_table(SPEND, mode="append")
    with pytest.raises(ValueError, match="needs Kiln's control plane"):
        fe.publish_table(SPEND, OnlineStoreSpec())


def test_run_context_reads_the_bound_notebook_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from kiln.driver.dbutils import RunBinding
    from kiln.driver.feature_store.control import run_context

    main = types.ModuleType("__main__")
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert run_context() == {}
    main.dbutils = types.SimpleNamespace(  # type: ignore[attr-defined]
        _binding=RunBinding(notebook_path="/Users/a@b.c/nb", run_id="0a1b2c")
    )
    assert run_context() == {"notebook_path": "/Users/a@b.c/nb", "run_id": "0a1b2c"}
    main.dbutils = types.SimpleNamespace(  # type: ignore[attr-defined]
        _binding=RunBinding(notebook_path="relative", run_id="../x")
    )
    assert run_context() == {}
