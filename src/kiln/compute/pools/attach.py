"""When a warm pool instance can serve a cluster, and why not when it cannot.

A warm instance is a driver runtime started before its cluster: a single-node Spark
application whose JVM, SparkConf and process environment are fixed. A cluster takes one only
if nothing it asks for would have had to be there at that start; otherwise it starts cold
inside the capacity it reserved in the pool (the warm instance is retired), and the reason is
recorded in its events. A pure function, tested on its own.
"""

from __future__ import annotations

from kiln.compute.pools.spec import FAIL_FAST_CONF, PoolSpec
from kiln.compute.spec import PROFILE_KEY, SINGLE_NODE_PROFILE, ClusterSpec

__all__ = ["cold_start_reason"]


def _foreign_conf(spec: ClusterSpec) -> list[str]:
    """spark_conf keys a warm instance was not started with."""
    cores = spec.driver_node_type.num_cores
    ok_masters = {"local[*]", f"local[{cores}]"}
    foreign = []
    for key, value in spec.spark_conf.items():
        if key == FAIL_FAST_CONF:
            continue
        if key == PROFILE_KEY and value == SINGLE_NODE_PROFILE:
            continue
        if key == "spark.master" and value in ok_masters:
            continue
        foreign.append(key)
    return sorted(foreign)


def cold_start_reason(
    spec: ClusterSpec,
    pool: PoolSpec,
    *,
    workers: int,
    init_scripts: bool,
    libraries: bool,
) -> str | None:
    """Why a warm instance of `pool` cannot be this cluster's driver (None: it can)."""
    if workers:
        return "a cluster with workers starts its Spark master and workers with its driver"
    if init_scripts:
        return "init scripts run before the driver starts"
    if libraries:
        return "libraries are installed into the cluster's own Python environment"
    if pool.preloaded_spark_versions and spec.spark_version not in pool.preloaded_spark_versions:
        preloaded = ", ".join(pool.preloaded_spark_versions)
        return f"spark_version {spec.spark_version} is not preloaded in the pool ({preloaded})"
    if spec.spark_env_vars:
        names = ", ".join(sorted(spec.spark_env_vars))
        return f"spark_env_vars ({names}) must be in the driver's environment when it starts"
    foreign = _foreign_conf(spec)
    if foreign:
        return f"spark_conf ({', '.join(foreign)}) must be set when Spark starts"
    return None
