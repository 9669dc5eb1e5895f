"""Cluster spec validation: every refusal names its field; valid specs normalize."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.compute.node_types import NodeType, NodeTypeCatalogue
from kiln.compute.spark_versions import list_spark_versions, validate
from kiln.compute.spec import parse_spec
from kiln.errors import InvalidParameterValue

CATALOGUE = NodeTypeCatalogue(
    [NodeType("small", 1, 1024, "small"), NodeType("medium", 2, 4096, "medium")]
)
BASE = {"spark_version": "16.4.x-scala2.13", "node_type_id": "small"}


def parse(**fields: Any) -> Any:
    return parse_spec({**BASE, **fields}, CATALOGUE, max_workers=8)


def test_minimal_spec_defaults() -> None:
    spec = parse()
    assert spec.num_workers == 0 and spec.single_node and not spec.standalone
    assert spec.driver_node_type.node_type_id == "small"
    assert spec.autotermination_minutes == 0
    assert spec.record["num_workers"] == 0
    assert spec.record["driver_node_type_id"] == "small"


def test_workers_and_sizes() -> None:
    spec = parse(num_workers=2, driver_node_type_id="medium")
    assert spec.standalone and spec.initial_workers == 2
    assert spec.driver_node_type.num_cores == 2


def test_autoscale() -> None:
    spec = parse(autoscale={"min_workers": 1, "max_workers": 3})
    assert spec.autoscale is not None and spec.initial_workers == 1 and spec.standalone
    assert "num_workers" not in spec.record
    assert spec.record["autoscale"] == {"min_workers": 1, "max_workers": 3}


def test_single_node_profile() -> None:
    spec = parse(
        num_workers=0,
        spark_conf={"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"},
        custom_tags={"ResourceClass": "SingleNode"},
    )
    assert spec.single_node
    assert spec.spark_conf["spark.master"] == "local[*]"


def test_scalars_in_maps_are_written_as_spark_reads_them() -> None:
    spec = parse(spark_conf={"spark.a": True, "spark.b": 3}, spark_env_vars={"N": 1})
    assert spec.spark_conf == {"spark.a": "true", "spark.b": "3"}
    assert spec.spark_env_vars == {"N": "1"}


def test_store_locations_are_normalized() -> None:
    spec = parse(
        cluster_log_conf={"dbfs": {"destination": "dbfs:/cluster-logs"}},
        init_scripts=[
            {"workspace": {"destination": "/Workspace/Users/a@b.c/init.sh"}},
            {"dbfs": {"destination": "dbfs:/scripts/x.sh"}},
            {"volumes": {"destination": "/Volumes/c/s/v/y.sh"}},
        ],
    )
    assert spec.cluster_log_conf is not None and spec.cluster_log_conf.path == "/cluster-logs"
    assert [(s.kind, s.path) for s in spec.init_scripts] == [
        ("workspace", "/Users/a@b.c/init.sh"),
        ("dbfs", "/scripts/x.sh"),
        ("volumes", "/Volumes/c/s/v/y.sh"),
    ]
    assert spec.record["init_scripts"][1] == {"dbfs": {"destination": "dbfs:/scripts/x.sh"}}


def test_recorded_attributes_come_back() -> None:
    spec = parse(
        aws_attributes={"availability": "SPOT"},
        data_security_mode="SINGLE_USER",
        single_user_name="a@b.c",
        bogus_field=1,
    )
    assert spec.record["aws_attributes"] == {"availability": "SPOT"}
    assert spec.record["single_user_name"] == "a@b.c"
    assert "bogus_field" not in spec.record


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"spark_version": None}, "spark_version"),
        ({"spark_version": "1.2.3"}, "spark_version"),
        ({"node_type_id": "i3.xlarge"}, "node_type_id"),
        ({"driver_node_type_id": "nope"}, "driver_node_type_id"),
        ({"num_workers": -1}, "num_workers"),
        ({"num_workers": 9}, "num_workers"),
        ({"num_workers": "many"}, "num_workers"),
        ({"num_workers": 1, "autoscale": {"min_workers": 1, "max_workers": 2}}, "num_workers"),
        ({"autoscale": {"min_workers": 3, "max_workers": 2}}, "autoscale.max_workers"),
        ({"autoscale": {"min_workers": -1, "max_workers": 2}}, "autoscale.min_workers"),
        ({"autoscale": {"min_workers": 1, "max_workers": 99}}, "autoscale.max_workers"),
        ({"autotermination_minutes": 5}, "autotermination_minutes"),
        ({"autotermination_minutes": 10001}, "autotermination_minutes"),
        ({"autotermination_minutes": -1}, "autotermination_minutes"),
        ({"spark_conf": ["a"]}, "spark_conf"),
        ({"spark_conf": {"spark.x": {"nested": 1}}}, "spark_conf.spark.x"),
        ({"spark_conf": {"spark.x": None}}, "spark_conf.spark.x"),
        ({"spark_conf": {"bad key!": "1"}}, "spark_conf"),
        ({"spark_conf": {"spark.authenticate": "false"}}, "spark_conf"),
        ({"spark_conf": {"spark.driver.bindAddress": "0.0.0.0"}}, "spark_conf"),
        ({"spark_conf": {"spark.master": "spark://elsewhere:7077"}}, "spark_conf"),
        ({"num_workers": 2, "spark_conf": {"spark.master": "local[*]"}}, "spark_conf"),
        ({"num_workers": 2, "is_single_node": True}, "num_workers"),
        ({"spark_env_vars": {"1BAD": "x"}}, "spark_env_vars"),
        ({"spark_env_vars": {"SPARK_LOCAL_IP": "0.0.0.0"}}, "spark_env_vars"),
        ({"custom_tags": {"Vendor": "x"}}, "custom_tags"),
        ({"custom_tags": {f"k{i}": "v" for i in range(46)}}, "custom_tags"),
        ({"cluster_log_conf": {"s3": {"destination": "s3://b/logs"}}}, "cluster_log_conf.s3"),
        ({"cluster_log_conf": {"dbfs": {"destination": "dbfs:/a/../b"}}}, "cluster_log_conf"),
        ({"cluster_log_conf": {"volumes": {"destination": "/tmp/logs"}}}, "cluster_log_conf"),
        ({"init_scripts": [{"file": {"destination": "/etc/init.sh"}}]}, "init_scripts[0].file"),
        ({"init_scripts": [{"s3": {"destination": "s3://b/i.sh"}}]}, "init_scripts[0].s3"),
        ({"init_scripts": [{"dbfs": {"destination": "dbfs:/../etc/x"}}]}, "init_scripts[0]"),
        ({"init_scripts": [{"workspace": {"destination": "Users/x.sh"}}]}, "init_scripts[0]"),
        ({"init_scripts": [{"dbfs": {}}]}, "init_scripts[0].dbfs.destination"),
        ({"init_scripts": "x"}, "init_scripts"),
        ({"data_security_mode": "WIDE_OPEN"}, "data_security_mode"),
        ({"kind": "SERVERLESS"}, "kind"),
        ({"cluster_name": "x" * 101}, "cluster_name"),
    ],
)
def test_refusals_name_the_field(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidParameterValue) as info:
        parse(**fields)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert named in info.value.message


@pytest.mark.parametrize(
    "key", ["16.4.x-scala2.13", "13.3.x-cpu-ml-scala2.12", "14.3.x-photon-scala2.12", "kiln-4.3.0"]
)
def test_runtime_keys_are_accepted(key: str) -> None:
    assert validate(key) == key


def test_listed_versions_name_the_spark_that_runs() -> None:
    versions = list_spark_versions()
    assert any(v["key"] == "16.4.x-scala2.13" for v in versions)
    assert all("4.3.0" in v["name"] for v in versions)
    for v in versions:
        assert validate(v["key"]) == v["key"]
