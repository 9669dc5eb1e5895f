"""Instance pool specs: validation of create/edit requests and the fail-fast switch."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.compute.node_types import NodeType, NodeTypeCatalogue
from kiln.compute.pools import FAIL_FAST_CONF, FAIL_FAST_TAG, PoolSpec, fail_fast, parse_pool_spec
from kiln.errors import InvalidParameterValue

CATALOGUE = NodeTypeCatalogue([NodeType("small", 1, 1024, "small"), NodeType("big", 2, 2048, "")])


def spec(**overrides: Any) -> dict[str, Any]:
    return {"instance_pool_name": "p", "node_type_id": "small", **overrides}


def test_defaults_and_record() -> None:
    parsed = parse_pool_spec(
        spec(max_capacity=3, custom_tags={"team": "x"}, aws_attributes={"a": 1}), CATALOGUE
    )
    assert parsed.min_idle_instances == 0
    assert parsed.max_capacity == 3
    assert parsed.idle_instance_autotermination_minutes == 60
    assert parsed.record["custom_tags"] == {"team": "x"}
    assert parsed.record["aws_attributes"] == {"a": 1}
    assert PoolSpec.of(parsed.record) == parsed


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"node_type_id": "huge"}, "node_type_id"),
        ({"node_type_id": None}, "node_type_id"),
        ({"instance_pool_name": ""}, "instance_pool_name"),
        ({"instance_pool_name": "x" * 101}, "instance_pool_name"),
        ({"min_idle_instances": -1}, "min_idle_instances"),
        ({"max_capacity": -2}, "max_capacity"),
        ({"max_capacity": 0}, "max_capacity"),
        ({"max_capacity": "3"}, "max_capacity"),
        ({"min_idle_instances": True}, "min_idle_instances"),
        ({"idle_instance_autotermination_minutes": -5}, "idle_instance_autotermination_minutes"),
        ({"min_idle_instances": 3, "max_capacity": 2}, "min_idle_instances"),
        ({"preloaded_spark_versions": ["nonsense"]}, "preloaded_spark_versions"),
        ({"preloaded_spark_versions": ["16.4.x-scala2.13", "15.4.x-scala2.12"]}, "preloaded"),
        ({"custom_tags": {"a": 1}}, "custom_tags"),
    ],
)
def test_bad_input_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidParameterValue, match=field):
        parse_pool_spec(spec(**overrides), CATALOGUE)


def test_edit_keeps_node_type_and_preloaded_versions() -> None:
    before = parse_pool_spec(spec(preloaded_spark_versions=["16.4.x-scala2.13"]), CATALOGUE)
    after = parse_pool_spec(spec(min_idle_instances=2), CATALOGUE, previous=before)
    assert after.preloaded_spark_versions == ("16.4.x-scala2.13",)
    assert after.spark_version == "16.4.x-scala2.13"
    with pytest.raises(InvalidParameterValue, match="node_type_id cannot be changed"):
        parse_pool_spec(spec(node_type_id="big"), CATALOGUE, previous=before)


def test_fail_fast_switch() -> None:
    assert fail_fast({FAIL_FAST_CONF: "true"}, {})
    assert fail_fast({}, {FAIL_FAST_TAG: "TRUE"})
    assert not fail_fast({FAIL_FAST_CONF: "false"}, {"team": "true"})
