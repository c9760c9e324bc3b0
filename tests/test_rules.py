"""The scaling rules: init variances of the paper, release and He inits, and the learning rates of eq. 8/9 under
the paper's and the release's path counts."""

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nni_archscale import (
    ArchGraph, Edge, EdgeKind, NoPathError, RuleError, from_nb201, from_paper_code, scale,
)
from nni_archscale.core.paths import enumerate_paths
from nni_archscale.rules.paper import edge_init, edge_learning_rates, learning_rate, readout_init
from strategies import graphs

ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
CHAIN3 = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
NO_PATH = "|none~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize("arch, expected", [(ALL_CONV3, 0.0410), (CHAIN3, 0.0575), (ALL_SKIP, 0.23)])
@pytest.mark.parametrize("preset", ["release", "paper"])
def test_released_nb201_rates(arch, expected, preset):
    rate = learning_rate(from_nb201(arch), 0.46, preset, "nb201-cell")
    assert round(rate.value, 4) == expected


def test_all_conv_cell_sum_is_126():
    rate = learning_rate(from_nb201(ALL_CONV3), 0.46, "release", "nb201-cell")
    assert rate.depth_power_sum == 126 and rate.value == pytest.approx(0.46 / math.sqrt(126))


@pytest.mark.parametrize("preset", ["paper", "release"])
def test_cell_without_path_is_refused(preset):
    with pytest.raises(NoPathError, match="no input-to-output path"):
        learning_rate(from_nb201(NO_PATH), 0.46, preset, "nb201-cell")


@pytest.mark.parametrize(
    "code, ratio",
    [
        ("1", 1.0),  # all-skip: base depth 3
        ("2", math.sqrt(27 / 64)),  # 0.65 x base
        ("2_02_002_0002", math.sqrt(27 / 343)),  # 4-edge chain: 0.28 x base
        ("2_22_222_2222", math.sqrt(27 / 1430)),  # fully connected: 0.137 x base
    ],
)
def test_release_mlp_rates_from_the_notes(code, ratio):
    assert learning_rate(from_paper_code(code), 1.0, "release", "dag").value == pytest.approx(ratio)


def test_release_mlp_without_path_falls_back_to_base_rate_and_says_so():
    rate = learning_rate(from_paper_code("0_00"), 0.1, "release", "dag")
    assert rate.value == pytest.approx(0.1) and "no input-output path" in rate.notes[0]


def test_release_cnn_kernel_factor_is_3_over_q():
    g = from_paper_code("2", kernel_size=7)
    assert learning_rate(g, 1.0, "release", "dag").value == pytest.approx(math.sqrt(27 / 64) * 3 / 7)


def test_paper_kernel_factor_is_one_over_q_relative_to_base():
    g3, g7 = from_paper_code("2_02", kernel_size=3), from_paper_code("2_02", kernel_size=7)
    r3, r7 = (learning_rate(g, 1.0, "paper", "dag").value for g in (g3, g7))
    assert r3 / r7 == pytest.approx(7 / 3)
    assert r3 == pytest.approx(math.sqrt(1 / 8))  # base CNN q = 3


def test_paper_rule_needs_a_parameterised_layer_on_some_path():
    with pytest.raises(RuleError, match="no input-output path crosses a parameterised layer"):
        learning_rate(from_paper_code("1_01"), 1.0, "paper", "dag")
    with pytest.raises(NoPathError):
        learning_rate(ArchGraph(3, []), 1.0, "paper", "dag")


@given(graphs(max_nodes=8), st.sampled_from(["paper", "release"]), st.sampled_from(["dag", "nb201-cell"]))
def test_rate_equals_eq8_over_enumerated_paths(g, preset, context):
    paths = list(enumerate_paths(g))
    ks = [sum(e.kind is EdgeKind.PARAM for e in p) for p in paths]
    offset = 1 if context == "nb201-cell" else (3 if preset == "release" else 0)
    total = sum((k + offset) ** 3 for k in ks)
    base = 27 if (preset, context) == ("release", "dag") else 1
    try:
        rate = learning_rate(g, 0.5, preset, context)
    except (NoPathError, RuleError):
        assert not paths or total == 0
        return
    if (preset, context) == ("release", "dag") and sum(ks) == 0:
        total = 27
    assert rate.depth_power_sum == total
    assert rate.value == pytest.approx(0.5 * math.sqrt(base / total) * float(rate.kernel_factor))


@given(graphs(max_nodes=8))
def test_paper_init_divides_he_by_target_in_degree(g):
    for item in edge_init(g, "paper"):
        assert item.gain == Fraction(2, g.in_degree[item.edge.dst]) and item.fan == "fan_in"
    for item in edge_init(g, "release", "nb201-cell"):
        assert item.gain == Fraction(2, max(1, g.in_degree[item.edge.src])) and item.fan == "fan_in"
    for item in edge_init(g, "release", "dag"):
        assert item.fan == "fan_out"
    assert all(item.gain == 2 for item in edge_init(g, "standard"))


def test_source_and_target_in_degree_differ_on_a_cell():
    g = from_nb201("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|skip_connect~2|")
    paper = {i.edge.name: i.gain for i in edge_init(g, "paper", "nb201-cell")}
    release = {i.edge.name: i.gain for i in edge_init(g, "release", "nb201-cell")}
    assert paper == {"0->1": 2, "1->2": 1, "0->3": Fraction(2, 3), "1->3": Fraction(2, 3)}
    assert release == {"0->1": 2, "1->2": 2, "0->3": 2, "1->3": 2}


def test_readouts():
    assert readout_init("paper").variance(64) == pytest.approx(1 / 64**2)
    assert readout_init("release", "nb201-cell").variance(64) == pytest.approx((2 / 64) ** 2)
    assert readout_init("release", "dag").variance(10) == pytest.approx(0.04)  # std 0.2 for CIFAR-10
    assert readout_init("standard").variance(64) == pytest.approx(1 / 64)


def test_he_init_is_counted_as_the_paper_counts():
    """He's init (init ``standard``) has no path count of its own: the graph rule counts as the paper does, and one
    rate for every candidate is the rate rule ``shared``, not an init (nor a preset)."""
    for arch in (ALL_CONV3, CHAIN3, ALL_SKIP):
        he = scale(arch, 0.1, "standard", "nb201-cell")
        assert he.learning_rate == scale(arch, 0.1, "paper", "nb201-cell").learning_rate
        assert he.init_rule == "standard" and all(item.gain == 2 for item in he.init)
    with pytest.raises(RuleError, match="'standard' is an init, not a preset"):
        learning_rate(from_nb201(ALL_CONV3), 0.1, "standard", "nb201-cell")


@given(graphs(max_nodes=8, kinds=(EdgeKind.SKIP, EdgeKind.PARAM, EdgeKind.ZERO)))
def test_per_edge_rates_use_paths_through_the_edge(g):
    try:
        rate = learning_rate(g, 1.0, "paper", "dag")
    except (NoPathError, RuleError):
        return
    per = edge_learning_rates(g, rate)
    for e, value in per.items():
        through = [p for p in enumerate_paths(g) if e in p]
        total = sum(sum(x.kind is EdgeKind.PARAM for x in p) ** 3 for p in through)
        if through:
            assert value == pytest.approx(math.sqrt(1 / total) * float(rate.kernel_factor))
            assert value >= rate.value * (1 - 1e-12)  # fewer paths, larger rate
        else:
            assert value == rate.value


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(init="mup"), "unknown init 'mup'"),
        (dict(context="resnet"), "unknown context 'resnet'"),
        (dict(base_lr=-1.0), "positive finite"),
        (dict(base_lr=float("nan")), "positive finite"),
    ],
)
def test_bad_rule_options_are_named(kwargs, message):
    args = dict(network=from_paper_code("2"), base_lr=0.1)
    args.update(kwargs)
    with pytest.raises(RuleError, match=message):
        scale(**args)


BASE_CELL = "0_00_000_2000"  # one Linear edge from the cell's input to its output


@pytest.mark.parametrize("preset", ["paper", "release"])
@pytest.mark.parametrize("context, q", [("mlp-cell", 1), ("cnn-cell", 3)])
def test_base_cell_gets_the_base_rate(preset, context, q):
    rate = learning_rate(from_paper_code(BASE_CELL, kernel_size=q), 0.05, preset, context)
    assert rate.value == pytest.approx(0.05)


@given(graphs(min_nodes=5, max_nodes=5, kinds=(EdgeKind.ZERO, EdgeKind.SKIP, EdgeKind.PARAM), kernels=(1,)),
       graphs(min_nodes=5, max_nodes=5, kinds=(EdgeKind.ZERO, EdgeKind.SKIP, EdgeKind.PARAM), kernels=(1,)))
def test_release_mlp_cell_keeps_the_released_ratios(a, b):
    try:
        ra, rb = (learning_rate(g, 1.0, "release", "mlp-cell").value for g in (a, b))
    except NoPathError:
        return
    da, db = (learning_rate(g, 1.0, "release", "dag").value for g in (a, b))
    assert ra / rb == pytest.approx(da / db)


def test_paper_mlp_cell_counts_the_stem_relu():
    # chain of 4 Linear+ReLU cell edges: L = 1 + 4 = 5, base L = 2
    assert learning_rate(from_paper_code("2_02_002_0002"), 1.0, "paper", "mlp-cell").value == pytest.approx(
        math.sqrt(8 / 125))


def test_release_cnn_cell_always_has_the_3_over_q_factor():
    g = from_paper_code("2_02_002", kernel_size=1)
    assert learning_rate(g, 1.0, "release", "cnn-cell").kernel_factor == 3
    assert learning_rate(g, 1.0, "release", "cnn-cell", kernel_size=1).kernel_factor == 3
    assert learning_rate(g, 1.0, "release", "mlp-cell").kernel_factor == 1
