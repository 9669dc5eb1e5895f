"""Cluster permission levels and the validation of access control lists."""

from __future__ import annotations

import pytest

from kiln.compute.permissions import PermissionLevel, parse_acl, permission_levels
from kiln.errors import InvalidParameterValue


def test_levels_are_ordered() -> None:
    ranks = [lv.rank for lv in PermissionLevel]
    assert ranks == sorted(ranks) == [0, 1, 2]
    assert PermissionLevel.CAN_MANAGE.rank > PermissionLevel.CAN_RESTART.rank
    assert [d["permission_level"] for d in permission_levels()] == [
        "CAN_ATTACH_TO",
        "CAN_RESTART",
        "CAN_MANAGE",
    ]


def test_acl_entries() -> None:
    assert parse_acl(None) == []
    assert parse_acl(
        [
            {"user_name": "a@example.com", "permission_level": "CAN_RESTART"},
            {"group_name": " data ", "permission_level": "CAN_ATTACH_TO"},
        ]
    ) == [
        ("user_name", "a@example.com", PermissionLevel.CAN_RESTART),
        ("group_name", "data", PermissionLevel.CAN_ATTACH_TO),
    ]


@pytest.mark.parametrize(
    ("acl", "named"),
    [
        ("everyone", "access_control_list"),
        (["x"], "access_control_list[0]"),
        ([{"permission_level": "CAN_MANAGE"}], "access_control_list[0]"),
        (
            [{"user_name": "a", "group_name": "b", "permission_level": "CAN_MANAGE"}],
            "access_control_list[0]",
        ),
        ([{"user_name": "", "permission_level": "CAN_MANAGE"}], "access_control_list[0].user_name"),
        ([{"user_name": 3, "permission_level": "CAN_MANAGE"}], "access_control_list[0].user_name"),
        ([{"user_name": "a"}], "access_control_list[0].permission_level"),
        (
            [
                {"user_name": "a", "permission_level": "CAN_MANAGE"},
                {"group_name": "g", "permission_level": "IS_OWNER"},
            ],
            "access_control_list[1].permission_level",
        ),
    ],
)
def test_bad_entries_name_the_entry(acl: object, named: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_acl(acl)
    assert named in err.value.message
