"""Pool capacity decisions: warm first, never past max_capacity, nobody jumps the queue."""

from __future__ import annotations

from kiln.compute.pools import Grant, Usage, grant, waiting_message


def test_idle_instances_are_taken_first() -> None:
    assert grant(Usage(idle=2), 2, 1, 0) == Grant(warm=1, fresh=0)
    assert grant(Usage(idle=1), 3, 2, 0) == Grant(warm=1, fresh=1)


def test_full_pool_waits() -> None:
    assert grant(Usage(used=2), 2, 1, 0) is None
    # A warming instance counts against capacity: wait for it to become idle.
    assert grant(Usage(used=1, pending_idle=1), 2, 1, 0) is None


def test_queue_order_is_kept() -> None:
    assert grant(Usage(idle=1), 2, 1, ahead=1) is None


def test_unbounded_pool_always_grants() -> None:
    assert grant(Usage(used=50), None, 3, 0) == Grant(warm=0, fresh=3)


def test_stats_and_message() -> None:
    usage = Usage(pending_idle=1, idle=2, pending_used=3, used=4)
    assert usage.total == 10
    assert usage.wire() == {
        "used_count": 4,
        "idle_count": 2,
        "pending_used_count": 3,
        "pending_idle_count": 1,
    }
    assert waiting_message("p", 2, usage, 10).startswith("waiting for pool capacity: 2 ahead")
