"""When a warm pool instance may be a cluster's driver, and the reason it starts cold if not."""

from __future__ import annotations

from typing import Any

from kiln.compute.node_types import NodeType, NodeTypeCatalogue
from kiln.compute.pools import FAIL_FAST_CONF, PoolSpec
from kiln.compute.pools.attach import cold_start_reason
from kiln.compute.spec import ClusterSpec, parse_spec

CATALOGUE = NodeTypeCatalogue([NodeType("small", 2, 1024, "small")])
POOL = PoolSpec.of({"instance_pool_name": "p", "node_type_id": "small"})
PRELOADED = PoolSpec.of(
    {
        "instance_pool_name": "p",
        "node_type_id": "small",
        "preloaded_spark_versions": ["16.4.x-scala2.13"],
    }
)
SINGLE = {"spark.databricks.cluster.profile": "singleNode", "spark.master": "local[*]"}


def cluster(**fields: Any) -> ClusterSpec:
    raw = {"spark_version": "16.4.x-scala2.13", "node_type_id": "small", **fields}
    return parse_spec(raw, CATALOGUE, max_workers=4)


def reason(spec: ClusterSpec, pool: PoolSpec = POOL, **flags: Any) -> str | None:
    args = {"workers": 0, "init_scripts": False, "libraries": False, **flags}
    return cold_start_reason(spec, pool, **args)


def test_a_plain_single_node_cluster_takes_a_warm_instance() -> None:
    assert reason(cluster()) is None
    assert reason(cluster(spark_conf=SINGLE)) is None
    assert reason(cluster(spark_conf={**SINGLE, "spark.master": "local[2]"})) is None
    assert reason(cluster(spark_conf={FAIL_FAST_CONF: "true"})) is None
    assert reason(cluster(), PRELOADED) is None


def test_what_a_started_driver_cannot_take() -> None:
    assert "workers" in (reason(cluster(num_workers=1), workers=1) or "")
    assert "init scripts" in (reason(cluster(), init_scripts=True) or "")
    assert "libraries" in (reason(cluster(), libraries=True) or "")
    conf = reason(cluster(spark_conf={**SINGLE, "spark.sql.shuffle.partitions": "3"}))
    assert conf is not None and "spark.sql.shuffle.partitions" in conf
    assert "spark.master" in (reason(cluster(spark_conf={"spark.master": "local[1]"})) or "")
    env = reason(cluster(spark_env_vars={"TEAM": "kiln"}))
    assert env is not None and "TEAM" in env
    version = reason(cluster(spark_version="15.4.x-scala2.12"), PRELOADED)
    assert version is not None and "15.4.x-scala2.12" in version and "preloaded" in version
    # A pool that preloads nothing serves any runtime: Kiln runs one Spark for all of them.
    assert reason(cluster(spark_version="15.4.x-scala2.12")) is None
