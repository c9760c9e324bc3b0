"""Rate rules on prepared candidates (torch_layer.rate_choice, hook.apply_rate_rule, adapters' auto choice) and
the guard rails: a rate beyond 4 octaves of the base is clamped and named, an unmodelled layer is named."""

import logging
import math
import warnings

import pytest
import torch
from torch import nn

from nni_archscale.rules.names import CELL_RULE_NAMES
from nni_archscale.rules.defaults import FAMILIES, SPACE_RATE_RULES, default_rate_rule
from nni_archscale.errors import RuleError
from nni_archscale.rules.registry import GRAPH, SEGMENTED, SHARED, get
from nni_archscale.nni_glue.adapters import network_family, prepare_candidate, resolve_rate_rule
from nni_archscale.torch_layer.hook import HookConfig
from nni_archscale.torch_layer.measured_rate import first_step_change
from nni_archscale.torch_layer.rate_choice import (MAX_OCTAVES, RATE_RULES, Reference, clamp_octaves, reference_of,
                                                   rule_rate, unmodelled_layers)
from nni_archscale.torch_layer.segments import segment_rate_factor

warnings.filterwarnings("ignore")


def conv_net(depth: int, norm: bool = True, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers = [nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(depth):
        layers += ([nn.BatchNorm2d(8)] if norm else []) + [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)]
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)]
    return nn.Sequential(*layers)


BATCH = (torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(1)),
         torch.randint(0, 10, (16,), generator=torch.Generator().manual_seed(2)))


def test_clamp_octaves():
    assert clamp_octaves(0.1, 0.1, "x") == (0.1, None)
    rate, note = clamp_octaves(0.1 * 2 ** -6, 0.1, "group conv.3")
    assert rate == pytest.approx(0.1 * 2 ** -MAX_OCTAVES)
    assert "group conv.3" in note and "-6.0 octaves" in note and "clamped" in note
    assert clamp_octaves(0.1 * 2 ** 5, 0.1, "x")[0] == pytest.approx(0.1 * 2 ** MAX_OCTAVES)


def test_rule_rates_relative_to_the_reference():
    base, deep = conv_net(1), conv_net(4)
    ref = reference_of(base, BATCH, "sgd")
    assert rule_rate("shared", deep, 0.2) == 0.2
    # no reference: segments compared with the graph rule's base (every segment one layer of kernel 3)
    assert rule_rate("segmented", deep, 0.2) == pytest.approx(0.2 * segment_rate_factor(deep))
    assert rule_rate("segmented", deep, 0.2, ref) == pytest.approx(
        0.2 * segment_rate_factor(deep) / segment_rate_factor(base))
    expected = 0.2 * first_step_change(base, *BATCH) / first_step_change(deep, *BATCH)
    assert rule_rate("measured", deep, 0.2, ref, BATCH, "sgd") == pytest.approx(expected, rel=1e-6)
    assert rule_rate("measured", base, 0.2, ref, BATCH, "sgd") == pytest.approx(0.2, rel=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"rule": "measured"}, "pass reference"),
    ({"rule": "measured", "ref": True}, "needs a training batch"),
    ({"rule": "measured", "ref": True, "batch": True, "optimizer": "adam"}, "measured for sgd"),
    ({"rule": "lars"}, "unknown rate rule"),
])
def test_rule_errors_say_what_to_pass(kwargs, match):
    model = conv_net(1)
    ref = reference_of(model, BATCH, "sgd") if kwargs.get("ref") else None
    with pytest.raises(RuleError, match=match):
        rule_rate(kwargs["rule"], model, 0.1, ref, BATCH if kwargs.get("batch") else None,
                  kwargs.get("optimizer", "sgd"))


def test_reference_round_trips_through_json():
    ref = Reference("adam", 0.5, 0.25)
    assert Reference.from_dict(ref.to_dict()) == ref
    assert Reference.from_dict(None) is None


def test_hook_config_refuses_an_unknown_rate_rule():
    with pytest.raises(RuleError, match="unknown rate rule"):
        HookConfig(rate_rule="magic")


@pytest.mark.parametrize("rule", [r for r in RATE_RULES if r not in CELL_RULE_NAMES])  # DAG-cell rules: test_dag_cell
def test_prepare_candidate_applies_the_rule_it_names(rule):
    base, model = conv_net(1), conv_net(3)
    cfg = HookConfig(base_lr=0.1, rate_rule=rule)
    ref = reference_of(base, BATCH, "sgd")
    p = prepare_candidate(model, cfg, sample={}, adapter="fx", batch=BATCH, reference=ref,
                          generator=torch.Generator().manual_seed(0))
    assert p.rate_rule == rule
    rates = {g["lr"] for g in p.groups}
    if get(rule).per_group:  # the graph rule: eq. 8 over the whole network (3 layers deep here: within the guard's bound)
        assert p.learning_rate == pytest.approx(p.scaling.learning_rate.value)
        assert p.learning_rate < 0.1 and not any("clamped" in n for n in p.notes)
    else:
        # the rule's rate is computed after the init, on the initialised model
        assert rates == {p.learning_rate}
        if rule == "shortest-path":  # a registered rule with its own rate (registry): L_min^(-3/2)
            from nni_archscale.rules.shortest_path import shortest_path_rate

            want = shortest_path_rate(p.graph, 0.1, p.scaling.preset, p.scaling.context,
                                      float(p.scaling.learning_rate.kernel_factor))
            assert p.learning_rate == pytest.approx(want, rel=1e-9)
        else:
            assert p.learning_rate == pytest.approx(rule_rate(rule, model, 0.1, ref, BATCH, "sgd"), rel=1e-6)
    assert all(abs(math.log2(r / 0.1)) <= MAX_OCTAVES + 1e-9 for r in rates)


def test_graph_rule_beyond_four_octaves_is_clamped_and_named(caplog):
    deep = conv_net(12, norm=False)
    with caplog.at_level(logging.WARNING, logger="nni_archscale"):
        p = prepare_candidate(deep, HookConfig(base_lr=0.1, rate_rule="graph"), sample={}, adapter="fx")
    raw = p.scaling.learning_rate.value
    assert math.log2(0.1 / raw) > MAX_OCTAVES  # eq. 8 over 13 layers: far below the base rate
    assert p.learning_rate == pytest.approx(0.1 * 2 ** -MAX_OCTAVES)
    assert all(g["lr"] == pytest.approx(0.1 * 2 ** -MAX_OCTAVES) for g in p.groups)
    assert any("clamped" in n and "parameter group" in n for n in p.notes)
    assert "clamped" in caplog.text


def test_unmodelled_layers_are_named(caplog):
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.gain = nn.Parameter(torch.ones(8, 1, 1))

        def forward(self, x):
            return x * self.gain

    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Scaled(), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 10))
    assert unmodelled_layers(model) == ["1 (Scaled)"]
    with caplog.at_level(logging.WARNING, logger="nni_archscale"):
        p = prepare_candidate(model, HookConfig(base_lr=0.1, rate_rule="shared"), sample={}, adapter="fx")
    assert any("1 (Scaled)" in n for n in p.notes)
    assert "1 (Scaled)" in caplog.text


def test_families_and_auto():
    assert network_family(conv_net(1, norm=False)) == "plain"
    assert network_family(conv_net(1)) == "cells"
    assert network_family(conv_net(1), "nb201-model") == "nb201"
    for family in FAMILIES:
        for opt in ("sgd", "adam"):
            rule = default_rate_rule(family, opt)
            assert rule in RATE_RULES
            assert resolve_rate_rule(HookConfig(optimizer=opt), family) == rule
    assert default_rate_rule("plain", "sgd") == GRAPH.name  # eq. 8/9 where it is exact
    assert resolve_rate_rule(HookConfig(rate_rule=SHARED.name), "nb201") == SHARED.name
    assert set(SPACE_RATE_RULES.values()) <= set(RATE_RULES)
    with pytest.raises(RuleError, match="unknown network family"):
        default_rate_rule("transformers", "sgd")


def test_auto_applies_the_measured_defaults():
    """reports/spaces-maxlr decided (as re-scored by issue 23.5): normalised cell networks train with one shared
    rate under SGD and Adam; NNI's NasBench201 with one shared rate; networks without normalisation keep eq. 8/9.
    The segmented rule, the SGD default on cells before the re-scoring, is still applied when named."""
    bn = conv_net(3)
    p = prepare_candidate(bn, HookConfig(base_lr=0.1), sample={}, adapter="fx")
    assert p.rate_rule == SHARED.name and p.learning_rate == 0.1
    p = prepare_candidate(conv_net(3), HookConfig(base_lr=0.1, rate_rule=SEGMENTED.name), sample={}, adapter="fx")
    assert p.rate_rule == SEGMENTED.name and p.learning_rate == pytest.approx(0.1 * segment_rate_factor(bn))
    p = prepare_candidate(conv_net(3), HookConfig(base_lr=0.1, optimizer="adam"), sample={}, adapter="fx")
    assert p.rate_rule == SHARED.name and p.learning_rate == 0.1
    plain = prepare_candidate(conv_net(2, norm=False), HookConfig(base_lr=0.1), sample={}, adapter="fx")
    assert plain.rate_rule == GRAPH.name and plain.learning_rate == pytest.approx(plain.scaling.learning_rate.value)
    from nni_archscale.nni_glue.spaces import sample_model

    sample, nb201 = sample_model("nb201", 2)
    p = prepare_candidate(nb201, HookConfig(base_lr=0.1), sample=sample)
    assert p.adapter == "nb201-sample" and p.rate_rule == SHARED.name and p.learning_rate == 0.1


def test_per_edge_with_a_one_rate_rule_is_reported():
    p = prepare_candidate(conv_net(2), HookConfig(base_lr=0.1, per_edge=True, rate_rule="shared"), sample={},
                          adapter="fx")
    assert {g["lr"] for g in p.groups} == {0.1}
    assert any("per-edge rates are not used" in n for n in p.notes)


def test_calibration_names_keep_nb201_sizes():
    from nni_archscale.nni_glue.calibration import space_name

    assert space_name("nb201", 8, 1) == "nb201-C8-N1"
    assert space_name("nb201", 16, 1, {"num_modules_per_stack": 2}) == "nb201-C16-N2"
    assert space_name("nb201", 8, 1, {"bn_eps": 1e-3}) != space_name("nb201", 16, 1, {"bn_eps": 1e-3})
    assert space_name("darts", 8, 1, {"width": 4}) == "darts(width=4)"
