"""The node-type catalogue: machine-derived defaults and configured entries."""

from __future__ import annotations

import pytest

from kiln.compute.node_types import NodeTypeCatalogue, default_node_types
from kiln.errors import InvalidParameterValue
from kiln.settings import ComputeSettings, NodeTypeSetting


@pytest.mark.parametrize(
    ("cores", "memory_mb", "sizes"),
    [
        (1, 4096, [1]),
        (2, 24 * 1024, [1, 2]),
        (6, 64 * 1024, [1, 2, 4, 6]),
        (16, 128 * 1024, [1, 2, 4, 8, 16]),
    ],
)
def test_defaults_fit_the_machine(cores: int, memory_mb: int, sizes: list[int]) -> None:
    types = default_node_types(cores, memory_mb)
    assert [t.num_cores for t in types] == sizes
    for t in types:
        assert t.memory_mb <= memory_mb * t.num_cores // cores or t.memory_mb == 512 * t.num_cores
        assert t.memory_mb <= 4096 * t.num_cores
    assert len({t.node_type_id for t in types}) == len(types)


def test_configured_catalogue_replaces_the_defaults() -> None:
    settings = ComputeSettings(
        node_types=[
            NodeTypeSetting(node_type_id="big", num_cores=4, memory_mb=8192),
            NodeTypeSetting(node_type_id="small", num_cores=1, memory_mb=1024),
        ]
    )
    catalogue = NodeTypeCatalogue.from_settings(settings)
    assert [n.node_type_id for n in catalogue.node_types] == ["small", "big"]
    assert catalogue.default.node_type_id == "small"
    wire = catalogue.get("big").to_wire()
    assert wire["num_cores"] == 4.0 and wire["memory_mb"] == 8192
    assert wire["node_type_id"] == "big" and wire["category"]


def test_unknown_node_type_names_the_field() -> None:
    catalogue = NodeTypeCatalogue(default_node_types(2, 8192))
    with pytest.raises(InvalidParameterValue, match=r"driver_node_type_id: Node type i3\.xlarge"):
        catalogue.get("i3.xlarge", field="driver_node_type_id")


def test_machine_default_is_not_empty() -> None:
    catalogue = NodeTypeCatalogue.from_settings(ComputeSettings())
    assert catalogue.node_types
    assert catalogue.default.num_cores == 1
