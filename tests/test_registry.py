"""The rate-rule registry says what a consumer needs to know about a rule as attributes of its object, so no code
outside the rules package compares a rule's name with a literal (issue 24)."""

from nni_archscale.rules.defaults import default_rate_rule, rate_rule_for
from nni_archscale.rules.names import CELL_RULE_NAMES
from nni_archscale.rules.registry import (AUTO, GRAPH, MEASURED, READOUT_LIMITED_SGD, REGISTRY, SEGMENTED, SHARED,
                                          SHORTEST_PATH, get, is_auto)


def names(test) -> list[str]:
    return [name for name, rule in REGISTRY.items() if test(rule)]


def test_each_behaviour_is_an_attribute():
    """What the hook and the torch side decide by a rule's name, each an attribute of the rule."""
    assert names(lambda r: r.per_group) == [GRAPH.name]  # the graph rule's per-group rates, clamped group by group
    assert names(lambda r: r.base_rate) == [SHARED.name]  # the calibrated base rate itself
    assert names(lambda r: r.missing(reference=None, batch=None)) == [MEASURED.name]  # falls back when chosen by default
    assert names(lambda r: r.missing(reference=object(), batch=None)) == [MEASURED.name]
    assert names(lambda r: r.missing(reference=None)) == [MEASURED.name]  # segmented can go without its reference
    assert names(lambda r: "reference" in r.optional) == [SEGMENTED.name]
    assert names(lambda r: "batch_size" in r.needs) == [READOUT_LIMITED_SGD.name]
    assert names(lambda r: r.dag_cell_only) == list(CELL_RULE_NAMES)
    # every rule has its one rate method once the torch layer is imported, except graph's per-group rates
    import nni_archscale.torch_layer.rate_choice  # noqa: F401  (implements the measuring rules)

    assert names(lambda r: r.rate is None) == [GRAPH.name]
    assert SHORTEST_PATH.rate is not None  # registered with its own, torch-free
    assert all(get(rule.name) is rule for rule in (GRAPH, SEGMENTED, MEASURED, SHARED, READOUT_LIMITED_SGD))


def test_auto_is_the_defaults_lookup_not_a_rule():
    assert is_auto(AUTO) and not any(is_auto(name) for name in REGISTRY)
    for family in ("nb201", "cells", "mobile", "dag-cell", "plain"):
        assert rate_rule_for(AUTO, family, "sgd") == default_rate_rule(family, "sgd")
        assert rate_rule_for(SEGMENTED.name, family, "sgd") == SEGMENTED.name
