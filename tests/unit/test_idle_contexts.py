"""The idle-context cache of notebook runs: per user and cluster, capped, expiring."""

from __future__ import annotations

from kiln.compute.notebook_runs.idle import IdleContexts
from kiln.principal import Principal

ANN = Principal(1, "ann@example.com", False, "")
BOB = Principal(2, "bob@example.com", False, "")


def test_a_context_goes_back_only_to_its_user_on_its_cluster() -> None:
    idle = IdleContexts()
    assert idle.put("c1", ANN, "ctx-a")
    assert idle.take("c1", BOB.user_id) is None
    assert idle.take("c2", ANN.user_id) is None
    found = idle.take("c1", ANN.user_id)
    assert found is not None and found.context_id == "ctx-a" and found.principal == ANN
    assert idle.take("c1", ANN.user_id) is None


def test_the_most_recent_context_is_taken_first() -> None:
    idle = IdleContexts()
    for name in ("old", "new"):
        idle.put("c1", ANN, name)
    taken = [idle.take("c1", ANN.user_id), idle.take("c1", ANN.user_id)]
    assert [t.context_id for t in taken if t is not None] == ["new", "old"]


def test_a_cluster_keeps_at_most_its_cap() -> None:
    idle = IdleContexts(max_per_cluster=2)
    assert idle.put("c1", ANN, "a") and idle.put("c1", BOB, "b")
    assert not idle.put("c1", ANN, "c")
    assert idle.put("c2", ANN, "d")


def test_expired_and_drained_contexts_are_handed_back_for_destruction() -> None:
    idle = IdleContexts(idle_seconds=0.0)
    idle.put("c1", ANN, "a")
    idle.put("c2", BOB, "b")
    assert sorted(e.context_id for e in idle.expired()) == ["a", "b"]
    assert idle.take("c1", ANN.user_id) is None
    keep = IdleContexts()
    keep.put("c1", ANN, "a")
    assert keep.expired() == []
    assert [e.context_id for e in keep.drain()] == ["a"]
    assert keep.drain() == []
