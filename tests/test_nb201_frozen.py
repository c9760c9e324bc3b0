"""Recognising NNI's frozen NasBench201 model without a sample (the ``nb201-model`` adapter).

The sample recovered from the frozen model must be the one it was frozen from, and ``prepare_candidate`` outside
an NNI trial must then give exactly what the ``nb201-sample`` adapter gives with that sample; anything that is not
NNI's frozen NasBench201 (another network, an unfrozen space, a model whose cells were edited) is left to fx.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from torch import nn

warnings.filterwarnings("ignore")

import nni  # noqa: E402,F401
from nni.nas.hub.pytorch import NasBench201  # noqa: E402

from nni_archscale.errors import ExtractionError, NoPathError  # noqa: E402
from nni_archscale.fairness.nb201_sampling import nni_sample  # noqa: E402
from nni_archscale.nni_glue.adapters import current_sample, nb201_sample_from_model, prepare_candidate  # noqa: E402
from nni_archscale.torch_layer.hook import HookConfig  # noqa: E402

EDGES = ["0_1", "0_2", "1_2", "0_3", "1_3", "2_3"]
OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]

SAMPLES = {
    "all-none": {f"cell/{e}": "none" for e in EDGES},
    "all-conv_3x3": {f"cell/{e}": "conv_3x3" for e in EDGES},
    "all-skip": {f"cell/{e}": "skip_connect" for e in EDGES},
    "all-pool": {f"cell/{e}": "avg_pool_3x3" for e in EDGES},
    "mixed": nni_sample("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"),
    "mixed-2": nni_sample("|nor_conv_1x1~0|+|skip_connect~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|skip_connect~2|"),
    "every-op": {f"cell/{e}": OPS[k % len(OPS)] for k, e in enumerate(EDGES)},
}
CFG = HookConfig(base_lr=0.1, init="paper")


_FROZEN: dict = {}


def _frozen(sample, n=1):
    """NNI's NasBench201 frozen from ``sample``: NNI freezes each (sample, n) once in this module (a deep copy of the
    whole space, the expensive part); every call gets a copy of it with freshly drawn parameters (each module's
    reset_parameters, which is how the space initialised them), so two calls still give independently initialised
    networks, as two builds would."""
    import copy

    key = (tuple(sorted(sample.items())), n)
    if key not in _FROZEN:
        _FROZEN[key] = NasBench201(stem_out_channels=8, num_modules_per_stack=n, num_labels=10).freeze(sample)
    model = copy.deepcopy(_FROZEN[key])
    for m in model.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return model


def _same_preparation(a, b):
    assert a.learning_rate == b.learning_rate
    assert [g["lr"] for g in a.groups] == [g["lr"] for g in b.groups]
    assert [[p.shape for p in g["params"]] for g in a.groups] == [[p.shape for p in g["params"]] for g in b.groups]
    assert a.graph == b.graph and a.graph.identical(b.graph)
    assert a.scaling.num_paths == b.scaling.num_paths


@pytest.fixture(autouse=True)
def outside_a_trial(monkeypatch):
    """No running trial: an earlier test in the same process may have left NNI's current parameter set."""
    import nni_archscale.nni_glue.adapters as adapters

    monkeypatch.setattr(adapters, "current_sample", lambda: None)


def test_outside_a_trial_there_is_no_sample():
    import nni_archscale.nni_glue.adapters as adapters

    assert adapters.current_sample() is None


@pytest.mark.parametrize("name", sorted(SAMPLES))
@pytest.mark.parametrize("n", [1, 2])
def test_recovered_sample_is_the_frozen_one(name, n):
    sample = SAMPLES[name]
    assert nb201_sample_from_model(_frozen(sample, n)) == sample
    relabelled = {k.replace("cell/", "c/"): v for k, v in sample.items()}
    assert nb201_sample_from_model(_frozen(sample, n), label="c") == relabelled


@pytest.mark.parametrize("name", sorted(k for k in SAMPLES if k != "all-none"))
def test_auto_without_sample_matches_the_sample_adapter(name):
    sample = SAMPLES[name]
    model, model2 = _frozen(sample), _frozen(sample)
    got = prepare_candidate(model, CFG, sample=None, generator=torch.Generator().manual_seed(3))
    want = prepare_candidate(model2, CFG, sample=sample, generator=torch.Generator().manual_seed(3))
    assert got.adapter == "nb201-model" and want.adapter == "nb201-sample"
    _same_preparation(got, want)
    # the same init too (same generator): the recovered cell drives the same plan
    sd, sd2 = model.state_dict(), model2.state_dict()
    assert sd.keys() == sd2.keys() and all(torch.equal(sd[k], sd2[k]) for k in sd)


@pytest.mark.parametrize("name", ["mixed", "all-conv_3x3"])
def test_per_edge_and_exact_init_match_too(name):
    sample = SAMPLES[name]
    cfg = HookConfig(base_lr=0.1, per_edge=True, init="exact")
    model, model2 = _frozen(sample, 2), _frozen(sample, 2)
    got = prepare_candidate(model, cfg, generator=torch.Generator().manual_seed(5))
    want = prepare_candidate(model2, cfg, sample=sample, generator=torch.Generator().manual_seed(5))
    assert got.adapter == "nb201-model"
    _same_preparation(got, want)
    assert len(got.hooks) == len(want.hooks)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    model.eval(), model2.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model2(x))  # same init and the same node-sum scalars


def test_all_none_cell_fails_the_same_way():
    sample = SAMPLES["all-none"]
    with pytest.raises(NoPathError) as got:
        prepare_candidate(_frozen(sample), CFG)
    with pytest.raises(NoPathError) as want:
        prepare_candidate(_frozen(sample), CFG, sample=sample)
    assert str(got.value) == str(want.value)
    # through the cell rule (fx would raise NoPathError too, from prepare_graph)
    assert any(e.name == "prepare_nb201" for e in got.traceback)
    assert not any(e.name == "prepare_graph" for e in got.traceback)


def test_explicit_sample_adapter_falls_back_to_the_model():
    sample = SAMPLES["mixed"]
    got = prepare_candidate(_frozen(sample), CFG, adapter="nb201-sample")
    want = prepare_candidate(_frozen(sample), CFG, sample=sample, adapter="nb201-sample")
    assert got.adapter == "nb201-model"
    _same_preparation(got, want)


def test_a_given_sample_still_wins():
    sample = SAMPLES["mixed"]
    got = prepare_candidate(_frozen(sample), CFG, sample=sample)
    assert got.adapter == "nb201-sample"


def test_non_nb201_model_is_left_to_fx():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    assert nb201_sample_from_model(model) is None
    assert prepare_candidate(model, CFG).adapter == "fx"
    with pytest.raises(ExtractionError, match="no 'cell/<j>_<i>' keys"):
        prepare_candidate(model, CFG, adapter="nb201-sample")  # no sample, none recoverable: still an error


def test_unfrozen_space_is_not_recognised(caplog):
    space = NasBench201(stem_out_channels=8, num_modules_per_stack=1, num_labels=10)
    with caplog.at_level(logging.INFO, logger="nni_archscale"):
        assert nb201_sample_from_model(space) is None
    assert "not a frozen NasBench201 op" in caplog.text


def test_cells_that_differ_go_to_fx(caplog):
    model = _frozen(SAMPLES["all-conv_3x3"], 1)
    model.cells[2].layers[0][0] = nn.Identity()  # a user edits one stacked cell
    with caplog.at_level(logging.INFO, logger="nni_archscale"):
        assert nb201_sample_from_model(model) is None
    assert "differs from cells.0 on cell/0_1" in caplog.text
    assert prepare_candidate(model, CFG).adapter == "fx"


@pytest.mark.parametrize("edit", ["maxpool", "conv5", "strided", "foreign", "layout"])
def test_unknown_ops_or_layout_are_not_recognised(edit):
    model = _frozen(SAMPLES["all-conv_3x3"], 1)
    if edit == "maxpool":
        model = _frozen({**SAMPLES["all-pool"]}, 1)
        for k in (0, 2, 4):
            model.cells[k].layers[0][0].op = nn.MaxPool2d(3, stride=1, padding=1)
    elif edit == "conv5":
        for k in (0, 2, 4):
            conv = model.cells[k].layers[1][1].op[1]
            model.cells[k].layers[1][1].op[1] = nn.Conv2d(conv.in_channels, conv.out_channels, 5, padding=2,
                                                          bias=False)
    elif edit == "strided":
        for k in (0, 2, 4):
            conv = model.cells[k].layers[1][1].op[1]
            conv.stride = (2, 2)
    elif edit == "foreign":
        for k in (0, 2, 4):
            model.cells[k].layers[2][2] = nn.Sequential(nn.ReLU())
    elif edit == "layout":
        del model.cells[1]
    assert nb201_sample_from_model(model) is None
