"""What a Spark action read, from the driver's status store: the bytes behind the Spark UI's
"Input" column, used to show that a scan was pruned (and by the tables benchmark)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["input_bytes"]

# How long to wait for the listener bus to deliver an action's task metrics (milliseconds).
_LISTENER_WAIT_MS = 60000


def _total_input(spark: Any) -> int:
    context = spark.sparkContext._jsc.sc()
    # Task metrics reach the status store through the listener bus, after the action returns.
    context.listenerBus().waitUntilEmpty(_LISTENER_WAIT_MS)
    gateway = spark.sparkContext._gateway
    no_quantiles = gateway.new_array(gateway.jvm.double, 0)
    no_task_statuses = gateway.jvm.java.util.ArrayList()
    stages = context.statusStore().stageList(None, False, False, no_quantiles, no_task_statuses)
    return int(sum(stages.apply(i).inputBytes() for i in range(stages.size())))


def input_bytes(spark: Any, action: Callable[[], Any]) -> int:
    """Bytes read from storage by the Spark jobs that `action` runs (a classic session's)."""
    before = _total_input(spark)
    action()
    return _total_input(spark) - before
