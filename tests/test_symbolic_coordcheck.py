"""Coord check across graphs (examples/coord_check.py): after one SGD step at the rule's learning rate the
output-node features move by the same order across depths 1..32, while one fixed rate spreads the change
by more than an order of magnitude. Measured at width 256 with 2 seeds (about 5 s)."""

from __future__ import annotations


import pytest
from loading import load_file



@pytest.fixture(scope="module")
def coord_check():
    return load_file("examples/coord_check.py", "coord_check_example")


@pytest.fixture(scope="module")
def measured(coord_check):
    return coord_check.run(width=256, seeds=2, depths=(1, 2, 4, 8, 16, 32), sizes=(3, 5, 7), branches=())


def test_rule_keeps_depth_scaling_flat(coord_check, measured):
    results, _ = measured
    chains = [r for r in results if r.family == "chain"]
    rule = coord_check.spread(r.rule_change for r in chains)
    fixed = coord_check.spread(r.fixed_change for r in chains)
    assert rule < 4, rule
    assert fixed > 10, fixed
    assert fixed > 4 * rule


def test_rule_spread_across_depth_and_path_count_is_smaller(coord_check, measured):
    results, _ = measured
    rule = coord_check.spread(r.rule_change for r in results)
    fixed = coord_check.spread(r.fixed_change for r in results)
    assert rule * 2 < fixed, (rule, fixed)
    assert all(r.rule_change > 0 and r.fixed_change > 0 for r in results)


def test_plot_is_written(coord_check, measured, tmp_path):
    results, fixed = measured
    path = coord_check.plot(results, fixed, tmp_path / "coord.png")
    assert path.stat().st_size > 10_000
