"""``--init exact`` on NNI's NAS-Bench-201 network: node-sum scalars keep every cell's output at its input's scale."""

import pytest
import torch

from nni_archscale import from_nb201
from nni_archscale.rules.forward_moments import exact_node_scales, forward_moments
from nni_archscale.rules.planner import nb201_output_scales
from nni_archscale.torch_layer.hook import HookConfig, prepare_graph, prepare_nb201
from nni_archscale.errors import RuleError

SKIPPY = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"


def nb201(arch, width=16):
    from nni_archscale.fairness.nb201_sampling import nni_sample
    from nni_archscale.nni_glue.calibration import build_nb201

    return build_nb201(width, 1, 10, nni_sample(arch))


def cell_gain(model, index=0, batch=32, size=8):
    """E|cell output|^2 / E|cell input|^2 for the first cell, BN in training mode as at the first step."""
    seen = {}
    cell = model.cells[index]
    handle = cell.register_forward_hook(lambda m, i, o: seen.update(x=i[0].detach(), y=o.detach()))
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        model(torch.randn(batch, 3, size, size))
    handle.remove()
    return float((seen["y"] ** 2).mean() / (seen["x"] ** 2).mean())


def test_scales_cover_every_active_edge_of_every_cell():
    cell = from_nb201(SKIPPY)
    scales = nb201_output_scales(cell, cells_per_stage=2)
    alpha = exact_node_scales(cell, convention="conv-bn")
    assert len(scales) == 6 * len(cell.active_edges)  # 3 stages x 2 cells
    assert scales["cells.0.layers.2.0"] == pytest.approx(alpha[3])
    assert scales["cells.4.layers.1.1"] == pytest.approx(alpha[2])


def test_exact_init_restores_the_cell_output_scale_in_a_real_network():
    cell = from_nb201(SKIPPY)
    predicted = forward_moments(cell, convention="conv-bn").output_gain
    rule = nb201(SKIPPY)
    prepare_nb201(rule, cell, 1, HookConfig(base_lr=0.1, init="paper"), torch.Generator().manual_seed(0))
    exact = nb201(SKIPPY)
    prepare_nb201(exact, cell, 1, HookConfig(base_lr=0.1, init="exact"), torch.Generator().manual_seed(0))
    # the stem's BN makes the cell input zero-mean with unit variance, as the conv-bn convention assumes
    assert cell_gain(rule) == pytest.approx(predicted, rel=0.15)
    assert cell_gain(exact) == pytest.approx(1.0, rel=0.15)


def test_exact_init_is_refused_where_it_is_not_defined():
    with pytest.raises(RuleError, match="unknown init"):
        HookConfig(init="mup")
    with pytest.raises(RuleError, match="NAS-Bench-201"):
        prepare_graph(torch.nn.Linear(2, 2), from_nb201(SKIPPY), HookConfig(init="exact"))


def test_preparing_twice_replaces_the_scalars_and_hooks_can_be_removed():
    cell = from_nb201(SKIPPY)
    model = nb201(SKIPPY)
    cfg = HookConfig(base_lr=0.1, init="exact")
    prepare_nb201(model, cell, 1, cfg, torch.Generator().manual_seed(0))
    prepared = prepare_nb201(model, cell, 1, cfg, torch.Generator().manual_seed(0))
    assert cell_gain(model) == pytest.approx(1.0, rel=0.15)  # not alpha^2 applied twice
    for h in prepared.hooks:
        h.remove()
    assert cell_gain(model) == pytest.approx(forward_moments(cell, convention="conv-bn").output_gain, rel=0.15)
