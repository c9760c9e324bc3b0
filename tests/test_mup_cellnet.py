"""muP in the learning-rate experiment: the numbers read off the ``mup`` package reproduce the package's own
training step for step, and they are the muP rules the package documents."""

import pytest
import torch

from nni_archscale import from_paper_code
from nni_archscale.errors import RuleError
from nni_archscale.experiments.batched import BatchedCellNet, ReplicaOptimizer
from nni_archscale.core.networks import CellNetwork
from nni_archscale.rules.first_step import cell_init

mup = pytest.importorskip("mup")
from nni_archscale.experiments.mup_cellnet import (  # noqa: E402
    CellNet, copy_into_batched, mup_parametrization,
)


def _spec(kind="mlp", width=16, code="2_12_112", convention="linear-act", activation="relu"):
    q = 3 if kind == "cnn" else 1
    return CellNetwork(from_paper_code(code, kernel_size=q), 1 if kind == "cnn" else 12, width, 4, kind=kind,
                       kernel_size=q, convention=convention, activation=activation)


@pytest.mark.parametrize("kind, optimizer, convention, activation", [
    ("mlp", "sgd", "linear-act", "relu"), ("mlp", "adam", "linear-act", "relu"), ("cnn", "sgd", "linear-act", "relu"),
    ("mlp", "adam", "eq1", "gelu")])
def test_batched_training_equals_the_mup_package(kind, optimizer, convention, activation):
    """The package's basic usage (MuReadout, set_base_shapes against a half-width copy, MuSGD/MuAdam) and the
    batched trainer fed with mup_parametrization's numbers give the same outputs after every step."""
    torch.manual_seed(0)
    spec = _spec(kind, convention=convention, activation=activation)
    base = CellNet(CellNetwork(spec.cell, spec.in_features, spec.width // 2, spec.num_classes, spec.kind,
                               spec.kernel_size, convention, activation))
    model = CellNet(spec)
    mup.set_base_shapes(model, base)  # rescales the readout, as basic usage does
    batched = BatchedCellNet(spec, 1)
    copy_into_batched(model, batched)
    par = mup_parametrization(spec, optimizer)
    batched.readout_multiplier = par.readout_multiplier
    lr = 0.05 if optimizer == "sgd" else 0.01
    ref_opt = (mup.MuSGD if optimizer == "sgd" else mup.MuAdam)(model.parameters(), lr=lr)
    names, params = zip(*batched.named_parameters())
    opt = ReplicaOptimizer(params, torch.tensor([lr]), optimizer, multipliers=[par.lr_multipliers[n] for n in names])
    x = torch.randn(8, 1, 6, 6) if kind == "cnn" else torch.randn(8, 12)
    y = torch.randint(0, 4, (8,))
    for _ in range(4):
        ref = model(x)
        out = batched(x)[0]
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
        ref_opt.zero_grad()
        torch.nn.functional.cross_entropy(ref, y).backward()
        ref_opt.step()
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step(torch.tensor([True]))
    assert not torch.allclose(model(x), ref)  # it trained


def test_the_package_gives_the_documented_mup_rules():
    spec = _spec(width=32)
    sgd = mup_parametrization(spec, "sgd")  # base width 16: width_mult 2
    assert sgd.base_width == 16 and sgd.readout_multiplier == pytest.approx(0.5)
    # SGD: vector-like parameters (stem weight, biases, readout weight) x width_mult, hidden matrices x 1,
    # the readout bias (no width dimension) x 1
    assert sgd.lr_multipliers["stem_w"] == sgd.lr_multipliers["stem_b"] == sgd.lr_multipliers["readout_w"] == 2
    assert all(sgd.lr_multipliers[f"edge_w.{i}"] == 1 for i in range(len(spec.cell.parameterised_edges)))
    assert sgd.lr_multipliers["readout_b"] == 1
    adam = mup_parametrization(spec, "adam")
    # Adam: hidden matrices / width_mult, everything else x 1
    assert all(adam.lr_multipliers[f"edge_w.{i}"] == 0.5 for i in range(len(spec.cell.parameterised_edges)))
    assert adam.lr_multipliers["stem_w"] == adam.lr_multipliers["readout_w"] == 1
    # init: the standard He fan-in init, readout weight rescaled by sqrt(width_mult) (variance x 2)
    std = cell_init(spec, "standard")
    assert sgd.init.stem_gain == std.stem_gain and sgd.init.gains == std.gains
    assert sgd.init.readout_variance == pytest.approx(2 * std.readout_variance)


def test_a_base_width_that_is_not_narrower_is_refused():
    with pytest.raises(RuleError, match="narrower base model"):
        mup_parametrization(_spec(width=16), "sgd", base_width=16)
