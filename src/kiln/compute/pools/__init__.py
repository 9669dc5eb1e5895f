"""Instance pools: warm driver runtimes kept ready for clusters, and queues for capacity.

Invariants: a pool instance's processes are recorded (PIDs with start times) before anything
waits on them; an instance lent to a cluster is retired when the cluster ends (a used Spark
application never serves the next one); clusters waiting for a full pool are served in arrival
order, unless one asked to fail fast as Databricks does; no idle instance survives a pool
delete or a clean stop of the server, and a restarted server adopts or reaps what it finds.
"""

from kiln.compute.pools.capacity import Grant, Usage, grant, waiting_message
from kiln.compute.pools.pools import (
    create_pool,
    delete_pool,
    edit_pool,
    get_pool,
    list_pools,
)
from kiln.compute.pools.spec import (
    FAIL_FAST_CONF,
    FAIL_FAST_TAG,
    InstanceState,
    PoolSpec,
    PoolState,
    fail_fast,
    parse_pool_spec,
)

__all__ = [
    "FAIL_FAST_CONF",
    "FAIL_FAST_TAG",
    "Grant",
    "InstanceState",
    "PoolSpec",
    "PoolState",
    "Usage",
    "create_pool",
    "delete_pool",
    "edit_pool",
    "fail_fast",
    "get_pool",
    "grant",
    "list_pools",
    "parse_pool_spec",
    "waiting_message",
]
