"""`clusters/update`: parsing update masks, applying them to a stored spec, and what a running
cluster does about the change (nothing, resize, or restart)."""

from __future__ import annotations

import pytest

from kiln.compute.cluster_update import apply_mask, parse_update_mask, plan_update
from kiln.errors import InvalidParameterValue

SPEC = {
    "cluster_name": "c",
    "spark_version": "16.4.x-scala2.13",
    "node_type_id": "small",
    "num_workers": 2,
    "spark_conf": {"spark.a": "1"},
    "custom_tags": {"team": "x"},
    "autotermination_minutes": 0,
}


def test_mask_paths() -> None:
    assert parse_update_mask("num_workers,spark_conf") == (("num_workers",), ("spark_conf",))
    assert parse_update_mask(" cluster_name , autoscale.max_workers ") == (
        ("cluster_name",),
        ("autoscale", "max_workers"),
    )
    assert parse_update_mask("aws_attributes.zone_id") == (("aws_attributes", "zone_id"),)
    assert parse_update_mask("*") is None


@pytest.mark.parametrize(
    ("mask", "named"),
    [
        (None, "update_mask"),
        ("", "update_mask"),
        (" ", "update_mask"),
        (7, "update_mask"),
        ("cluster_name,,num_workers", "update_mask"),
        ("cluster_name.", "update_mask"),
        ("bogus", "bogus"),
        ("cluster_id", "cluster_id"),
        ("state", "state"),
        ("spark_conf.spark.a", "spark_conf"),
        ("custom_tags.team", "custom_tags"),
        ("autoscale.most_workers", "autoscale.most_workers"),
        ("autoscale.min_workers.x", "autoscale.min_workers.x"),
        ("num_workers,num_workers", "num_workers"),
        ("autoscale,autoscale.max_workers", "autoscale.max_workers"),
    ],
)
def test_bad_masks_name_the_field(mask: object, named: str) -> None:
    with pytest.raises(InvalidParameterValue) as err:
        parse_update_mask(mask)
    assert named in err.value.message


def test_masked_fields_are_set_or_cleared() -> None:
    paths = parse_update_mask("cluster_name,spark_conf,custom_tags")
    out = apply_mask(SPEC, {"cluster_name": "d", "spark_conf": {"spark.b": "2"}}, paths, 2)
    assert out["cluster_name"] == "d"
    # Maps are replaced whole; a masked field the request leaves out is cleared.
    assert out["spark_conf"] == {"spark.b": "2"}
    assert "custom_tags" not in out
    assert out["num_workers"] == 2 and out["spark_version"] == SPEC["spark_version"]
    # The stored spec is not changed in place.
    assert SPEC["spark_conf"] == {"spark.a": "1"}


def test_one_size_or_the_other() -> None:
    to_autoscale = apply_mask(
        SPEC,
        {"autoscale": {"min_workers": 1, "max_workers": 3}},
        parse_update_mask("autoscale"),
        2,
    )
    assert to_autoscale["autoscale"] == {"min_workers": 1, "max_workers": 3}
    assert "num_workers" not in to_autoscale
    back = apply_mask(to_autoscale, {"num_workers": 4}, parse_update_mask("num_workers"), 2)
    assert back["num_workers"] == 4 and "autoscale" not in back
    # Clearing autoscale keeps the cluster at the size autoscaling had put it.
    cleared = apply_mask(to_autoscale, {}, parse_update_mask("autoscale"), 3)
    assert cleared["num_workers"] == 3 and "autoscale" not in cleared
    one_bound = apply_mask(
        to_autoscale,
        {"autoscale": {"max_workers": 5}},
        parse_update_mask("autoscale.max_workers"),
        2,
    )
    assert one_bound["autoscale"] == {"min_workers": 1, "max_workers": 5}


def test_star_replaces_everything() -> None:
    out = apply_mask(SPEC, {"spark_version": "16.4.x-scala2.13", "num_workers": 0}, None, 2)
    assert out == {"spark_version": "16.4.x-scala2.13", "num_workers": 0}


def test_plans() -> None:
    same = plan_update(SPEC, dict(SPEC))
    assert not same.changed and not same.restart and not same.resize
    renamed = plan_update(SPEC, {**SPEC, "cluster_name": "d", "autotermination_minutes": 30})
    assert renamed.changed == {"cluster_name", "autotermination_minutes"}
    assert not renamed.restart and not renamed.resize
    resized = plan_update(SPEC, {**SPEC, "num_workers": 3, "custom_tags": {}})
    assert resized.resize and not resized.restart
    conf = plan_update(SPEC, {**SPEC, "num_workers": 3, "spark_conf": {}})
    assert conf.restart and not conf.resize
    assert plan_update(SPEC, {**SPEC, "spark_version": "15.4.x-scala2.12"}).restart
