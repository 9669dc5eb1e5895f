"""Cluster lifecycle enums and the transition table."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from databricks.sdk.service import compute as sdk

from kiln.compute.states import (
    ACTIVE_STATES,
    TRANSITIONS,
    EventType,
    State,
    TerminationCode,
    TerminationType,
    can_transition,
    transition,
)
from kiln.errors import InvalidState


@dataclass
class Row:
    state: str
    state_message: str = ""


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (State, sdk.State),
        (EventType, sdk.EventType),
        (TerminationType, sdk.TerminationReasonType),
    ],
)
def test_enums_have_databricks_values(ours: type, theirs: type) -> None:
    assert {m.value for m in ours} == {m.value for m in theirs}


def test_termination_codes_are_databricks_codes() -> None:
    known = {m.value for m in sdk.TerminationReasonCode}
    assert {m.value for m in TerminationCode} <= known


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.PENDING, State.RUNNING),
        (State.PENDING, State.TERMINATING),
        (State.RUNNING, State.RESIZING),
        (State.RUNNING, State.RESTARTING),
        (State.RUNNING, State.TERMINATING),
        (State.RESTARTING, State.RUNNING),
        (State.RESTARTING, State.TERMINATING),
        (State.RESIZING, State.RUNNING),
        (State.RESIZING, State.TERMINATING),
        (State.TERMINATING, State.TERMINATED),
        (State.TERMINATED, State.PENDING),
    ],
)
def test_databricks_transitions_are_allowed(current: State, target: State) -> None:
    row = Row(current.value)
    assert can_transition(current, target)
    assert transition(row, target, "why") == current
    assert (row.state, row.state_message) == (target.value, "why")


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (State.TERMINATED, State.RESTARTING),
        (State.TERMINATED, State.RUNNING),
        (State.TERMINATED, State.RESIZING),
        (State.TERMINATING, State.RUNNING),
        (State.PENDING, State.RESIZING),
        (State.RESTARTING, State.RESIZING),
        (State.TERMINATED, State.TERMINATING),
    ],
)
def test_other_transitions_are_refused(current: State, target: State) -> None:
    row = Row(current.value, "unchanged")
    with pytest.raises(InvalidState) as info:
        transition(row, target)
    assert info.value.error_code == "INVALID_STATE"
    assert (row.state, row.state_message) == (current.value, "unchanged")


def test_every_state_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(State)
    assert State.TERMINATED not in ACTIVE_STATES
    assert State.PENDING in ACTIVE_STATES
