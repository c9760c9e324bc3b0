"""The evidence-backed DAG-cell rules reach the hook: a model recognised as the paper's DAG-cell MLP trains at the rate
``defaults.DEFAULT_RULES`` names for its init and optimizer (issue 16, item 1)."""

from __future__ import annotations

import logging
import math

import pytest
import torch
from torch import nn

from nni_archscale.core.networks import CellNetwork
from nni_archscale.errors import RuleError
from nni_archscale.core.formats import from_paper_code, to_text
from nni_archscale.nni_glue.adapters import network_family, prepare_candidate
from nni_archscale.core.paths import live_edges_only, path_statistics
from nni_archscale.rules.registry import READOUT_LIMITED_SGD
from nni_archscale.rules.first_step import (READOUT_LIMIT, base_cell, first_step_kernel, cell_init,
                                            second_step_multiplier)
from nni_archscale.torch_layer.dag_cell import DagCellMLP, recognise
from nni_archscale.torch_layer.hook import HookConfig
from nni_archscale.torch_layer.rate_choice import Reference, reference_of

IN, WIDTH, CLASSES = 64, 32, 10
CODES = ["2_12_112_1112", "2_12_002_0012", "2_22_222_2222", "0_00_000_2000", "2_02_002_2000"]


def _net(code: str, width: int = WIDTH) -> DagCellMLP:
    torch.manual_seed(0)
    return DagCellMLP(from_paper_code(code), IN, width, CLASSES)


@pytest.mark.parametrize("code", CODES)
def test_a_dag_cell_mlp_is_recognised_with_its_cell_and_sizes(code):
    shape = recognise(_net(code))
    cell = from_paper_code(code)
    assert shape is not None
    if shape.cell.num_nodes == cell.num_nodes:  # no dead node: the very graph (up to isomorphism)
        assert shape.cell == live_edges_only(cell)
    # fx drops dead nodes; what the rules read is the same: paths and every kernel term
    assert path_statistics(shape.cell).output == path_statistics(cell).output
    for init in ("paper", "exact", "release"):
        k1 = first_step_kernel(cell_init(CellNetwork(shape.cell, IN, WIDTH, CLASSES), init))
        k2 = first_step_kernel(cell_init(CellNetwork(cell, IN, WIDTH, CLASSES), init))
        assert (k1.centered2, k1.centered1, k1.output_second_moment) == pytest.approx(
            (k2.centered2, k2.centered1, k2.output_second_moment), rel=1e-12)
    assert (shape.in_features, shape.width, shape.num_classes) == (IN, WIDTH, CLASSES)


def test_other_networks_are_not_dag_cells():
    assert recognise(nn.Sequential(nn.Flatten(), nn.Linear(IN, WIDTH), nn.BatchNorm1d(WIDTH), nn.ReLU(),
                                   nn.Linear(WIDTH, CLASSES))) is None  # normalisation
    assert recognise(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 36, CLASSES))) is None
    assert recognise(nn.Sequential(nn.Flatten(), nn.Linear(IN, WIDTH), nn.ReLU(), nn.Linear(WIDTH, 2 * WIDTH),
                                   nn.ReLU(), nn.Linear(2 * WIDTH, CLASSES))) is None  # a cell edge changes width
    assert recognise(_net("1_00_000_0001")) is None  # no parameterised edge: nothing to recognise a width from
    # the kernels assume ReLU: another activation, or none, is not the paper's network
    for act in (nn.Tanh(), nn.GELU(), nn.Identity()):
        assert recognise(nn.Sequential(nn.Flatten(), nn.Linear(IN, WIDTH), act, nn.Linear(WIDTH, WIDTH), nn.ReLU(),
                                       nn.Linear(WIDTH, CLASSES))) is None, act
    assert recognise(nn.Sequential(nn.Flatten(), nn.Linear(IN, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH),
                                   nn.Linear(WIDTH, CLASSES))) is None  # a cell Linear without its ReLU
    chain = nn.Sequential(nn.Flatten(), nn.Linear(IN, WIDTH), nn.ReLU(), nn.Linear(WIDTH, WIDTH), nn.ReLU(),
                          nn.Linear(WIDTH, CLASSES))
    assert recognise(chain).cell == from_paper_code("2")  # a plain equal-width ReLU MLP: its cell is a chain
    assert network_family(_net(CODES[0])) == "dag-cell"


def _second_step(cell, init, width=WIDTH):
    return second_step_multiplier(first_step_kernel(cell_init(CellNetwork(cell, IN, width, CLASSES), init)), cell)


@pytest.mark.parametrize("code", CODES[:3])
def test_readout_limited_sgd_is_its_definition(code):
    """Written out from the rule's definition (rules/defaults.py): min(base_lr x second-step ratio, readout cap)."""
    cell = from_paper_code(code)
    base_lr, batch = 0.05, 16
    p = prepare_candidate(_net(code), HookConfig(base_lr=base_lr, batch_size=batch, rate_rule=READOUT_LIMITED_SGD.name),
                          sample={}, adapter="fx", generator=torch.Generator().manual_seed(0))
    assert p.rate_rule == READOUT_LIMITED_SGD.name
    hidden = base_lr * _second_step(cell, "paper") / _second_step(base_cell("mlp"), "paper")
    kernel = first_step_kernel(cell_init(CellNetwork(cell, IN, WIDTH, CLASSES), "paper"))
    cap = READOUT_LIMIT * batch / kernel.readout_centered2
    assert p.learning_rate == pytest.approx(min(hidden, cap), rel=1e-9)
    assert {g["lr"] for g in p.groups} == {p.learning_rate}


def test_the_default_rule_follows_the_init_and_optimizer(caplog):
    net = lambda: _net(CODES[0])  # noqa: E731
    cases = {("paper", "adam"): "feature-sgd", ("standard", "sgd"): "shared", ("release", "sgd"): "graph",
             ("paper", "adamw"): "graph",  # adamw: not measured
             ("paper", "sgd"): "shared"}  # reports/fairness/dagcell-e2: no rule beat one shared rate (issue 23)
    for (init, optimizer), rule in cases.items():
        with caplog.at_level(logging.WARNING, logger="nni_archscale"):
            p = prepare_candidate(net(), HookConfig(base_lr=0.01, init=init, optimizer=optimizer), sample={},
                                  adapter="fx", generator=torch.Generator().manual_seed(0))
        assert p.rate_rule == rule, (init, optimizer)
    # readout-limited-sgd without the training batch size says which it assumed
    p = prepare_candidate(net(), HookConfig(base_lr=0.01, rate_rule="readout-limited-sgd"), sample={}, adapter="fx",
                          generator=torch.Generator().manual_seed(0))
    assert any("batch 32" in n for n in p.notes)


def test_an_explicit_cell_rule_on_another_network_is_refused():
    seq = nn.Sequential(nn.Flatten(), nn.Linear(IN, WIDTH), nn.BatchNorm1d(WIDTH), nn.ReLU(), nn.Linear(WIDTH, 10))
    with pytest.raises(RuleError, match="DAG-cell MLP"):
        prepare_candidate(seq, HookConfig(rate_rule="feature"), sample={}, adapter="fx")


@pytest.mark.parametrize("optimizer, rule", [("adam", "feature"), ("sgd", "readout-limited-sgd")])
def test_the_reference_anchors_the_rate_on_the_calibrated_base_network(optimizer, rule):
    """base_lr calibrated on another cell's network: the rule's rate is relative to that cell, not to 0_00_000_2000
    (the expected rates are written out from the rules' definitions)."""
    from nni_archscale.rules.first_step import rule_multiplier

    anchor_code, code = "2_12_002_0012", "2_12_112_1112"
    anchor, cell = from_paper_code(anchor_code), from_paper_code(code)
    ref = reference_of(_net(anchor_code), None, optimizer)
    assert ref.anchor_cell == to_text(recognise(_net(anchor_code)).cell)
    assert Reference.from_dict(ref.to_dict()) == ref  # travels to NNI trials as JSON
    base_lr = 0.002 if optimizer == "adam" else 0.05
    cfg = HookConfig(base_lr=base_lr, optimizer=optimizer, rate_rule=rule, batch_size=32)
    anchored = prepare_candidate(_net(code), cfg, sample={}, adapter="fx", reference=ref)
    plain = prepare_candidate(_net(code), cfg, sample={}, adapter="fx")
    if optimizer == "adam":  # feature resolves to feature-adam for Adam
        m = lambda c: rule_multiplier("feature-adam", CellNetwork(c, IN, WIDTH, CLASSES), "paper", "adam")
        assert m(anchor) != pytest.approx(1.0, abs=0.05)  # the anchor must matter for this test to mean anything
        assert anchored.learning_rate == pytest.approx(base_lr * m(cell) / m(anchor), rel=1e-9)
        assert plain.learning_rate == pytest.approx(base_lr * m(cell), rel=1e-9)
    else:  # the hidden limit moves with the anchor, the readout cap (absolute) does not
        hidden = base_lr * _second_step(cell, "paper") / _second_step(anchor, "paper")
        kernel = first_step_kernel(cell_init(CellNetwork(cell, IN, WIDTH, CLASSES), "paper"))
        cap = READOUT_LIMIT * 32 / kernel.readout_centered2
        assert anchored.learning_rate == pytest.approx(min(hidden, cap), rel=1e-9)
        assert anchored.learning_rate != pytest.approx(plain.learning_rate, rel=0.05)
    # the reference of the base cell's own network changes nothing
    base_ref = reference_of(_net("0_00_000_2000"), None, "adam")
    same = prepare_candidate(_net(code), cfg, sample={}, adapter="fx", reference=base_ref)
    assert same.learning_rate == pytest.approx(plain.learning_rate, rel=1e-9)
    assert math.isfinite(anchored.learning_rate)
