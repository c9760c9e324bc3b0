"""Presets, inits and contexts as objects (issue 16, items 3 and 4): the tables agree with the networks they describe,
one vocabulary for the init everywhere, and ``scale`` reads a whole :class:`~nni_archscale.core.networks.Network`."""

from __future__ import annotations

import argparse

import pytest

from nni_archscale.errors import RuleError
from nni_archscale.core.formats import from_paper_code
from nni_archscale.core.networks import CellNetwork, bare, dag_cell_network, nb201_network, single_layer
from nni_archscale.rules.presets import INITS, PAPER, PRESETS, RELEASE, STANDARD, Context, Init, preset_of
from nni_archscale.rules.paper import scale
from nni_archscale.rules.first_step import base_cell
from nni_archscale.torch_layer.hook import HookConfig

CELL = from_paper_code("2_12_112_1112")
SIZED = CellNetwork(CELL, 64, 32, 10)
NETWORKS = {Context.DAG: bare(CELL), Context.MLP_CELL: dag_cell_network(CELL, "mlp"),
            Context.CNN_CELL: dag_cell_network(CELL, "cnn"), Context.NB201_CELL: nb201_network(CELL, 2)}


@pytest.mark.parametrize("context", list(Context))
def test_the_paper_depth_offset_is_the_layers_before_the_cell(context):
    """§3.3: L_p counts the ReLUs on the path: the stem's (every layer before the cell), not the readout's."""
    net = NETWORKS[context]
    assert net.context is context
    assert PAPER.depth_offset[context] == net.layers_before_cell
    # the base network: the base cell (one layer; NB201's skip cell) behind the same stem
    base_layers = 0 if context is Context.NB201_CELL else 1
    assert PAPER.base_depth_power_sum[context] == (net.layers_before_cell + base_layers) ** 3


@pytest.mark.parametrize("context", list(Context))
def test_scale_reads_the_network(context):
    net = NETWORKS[context]
    for preset in PRESETS:
        whole = scale(net, 0.3, preset)
        assert whole == scale(CELL, 0.3, preset, context.value)
        assert whole.context == context.value and whole.preset == preset
    with pytest.raises(RuleError, match="contradicts"):
        scale(net, 0.3, "paper", "nb201-cell" if context is not Context.NB201_CELL else "dag")


def test_release_tables_copy_the_released_code():
    """paper-notes §2: source in-degree, fan_out outside NAS-Bench-201, (2/fan)^2 readout, 3 extra layers."""
    assert RELEASE.degree == "source" and PAPER.degree == "target" and STANDARD.degree is None
    assert RELEASE.fan[Context.NB201_CELL] == "fan_in" and RELEASE.fan[Context.MLP_CELL] == "fan_out"
    assert (RELEASE.readout_scale, RELEASE.readout_power) == (4, 2)
    assert RELEASE.base_depth_power_sum[Context.DAG] == 3 ** 3  # the all-skip cell: depth [3]
    assert RELEASE.base_depth_power_sum[Context.MLP_CELL] == (1 + 3) ** 3  # the base cell, one layer + 3
    assert not STANDARD.transfers_rate and PAPER.transfers_rate


def test_one_init_vocabulary():
    assert INITS == ("paper", "exact", "release", "standard")
    assert Init.of("exact").preset is PAPER and Init.EXACT.node_scales
    assert all(Init.of(p).preset is PRESETS[p] and not Init.of(p).node_scales for p in PRESETS)
    assert str(Init.EXACT) == "exact" and f"{Context.MLP_CELL}" == "mlp-cell"
    for bad in ("rule", "mup", ""):
        with pytest.raises(RuleError, match="unknown init"):
            Init.of(bad)
    with pytest.raises(RuleError, match="unknown preset"):
        preset_of("exact")
    assert HookConfig(init="exact").scheme is Init.EXACT
    assert HookConfig(preset=RELEASE, init=Init.RELEASE).to_dict()["preset"] == "release"  # objects or names
    assert HookConfig(preset="release").scheme is Init.RELEASE
    with pytest.raises(RuleError, match="starts from preset paper"):
        HookConfig(preset="release", init="exact")


def _choices(command: str, option: str) -> tuple:
    from nni_archscale.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return tuple(action.choices)


def test_search_calibrate_and_inspect_accept_the_same_names():
    assert _choices("search", "--init") == _choices("inspect", "--init") == _choices("calibrate", "--init") == INITS
    assert _choices("search", "--rate-rule") == _choices("inspect", "--rate-rule")
    assert {"readout-limited-sgd", "feature", "segmented", "shared"} <= set(_choices("search", "--rate-rule"))
    assert _choices("search", "--preset") == _choices("calibrate", "--preset") == tuple(PRESETS)
    assert _choices("search", "--space") == _choices("inspect", "--space") == _choices("calibrate", "--space")


def test_a_bare_network_of_several_blocks_is_read_whole():
    """stacked() (and any Network of bare blocks) carries no cell context: scale reads the whole chain, not its first block."""
    from nni_archscale.core.networks import chain, stacked

    net = stacked(chain(1), 3)
    assert scale(net, 1.0).learning_rate.value == pytest.approx(scale(net.flatten(), 1.0).learning_rate.value)
    assert scale(net, 1.0).learning_rate.value == pytest.approx(3 ** -1.5)  # one path of 3 layers: (3^3)^(-1/2)
    assert SIZED.network.cell == CELL and SIZED.network.context is Context.MLP_CELL  # a sized network's blocks


def test_a_network_without_a_cell_block_says_so():
    from nni_archscale.core.networks import Block, Network

    with pytest.raises(RuleError, match="role='cell'"):
        Network("stem only", (Block("stem", single_layer(), "stem"),)).cell
    assert dag_cell_network(base_cell("mlp")).cell == base_cell("mlp")
