"""Presets, inits and contexts as objects (issue 16, items 3 and 4; issue 24, item 2): the tables agree with the
networks they describe, one vocabulary for the init everywhere (the init and the rate rule two choices; an earlier
version's spellings refused naming the new ones), and ``scale`` reads a whole
:class:`~nni_archscale.core.networks.Network`."""

from __future__ import annotations

import argparse

import pytest

from nni_archscale.errors import RuleError
from nni_archscale.core.formats import from_paper_code
from nni_archscale.core.networks import CellNetwork, bare, dag_cell_network, nb201_network, single_layer
from nni_archscale.rules.presets import (HE_INIT, INITS, PAPER, PRESETS, RELEASE, Context, Degree, Fan, Init,
                                         KernelFactor, preset_of)
from nni_archscale.rules.registry import stored_options
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
    assert PAPER.count.depth_offset[context] == net.layers_before_cell
    # the base network: the base cell (one layer; NB201's skip cell) behind the same stem
    base_layers = 0 if context is Context.NB201_CELL else 1
    assert PAPER.count.base_depth_power_sum[context] == (net.layers_before_cell + base_layers) ** 3


@pytest.mark.parametrize("context", list(Context))
def test_scale_reads_the_network(context):
    net = NETWORKS[context]
    for init in INITS:
        whole = scale(net, 0.3, init)
        assert whole == scale(CELL, 0.3, init, context.value)
        assert whole.context == context.value and whole.preset == Init.of(init).preset.name
        assert whole.init_rule == Init.of(init).rule.name
    with pytest.raises(RuleError, match="contradicts"):
        scale(net, 0.3, "paper", "nb201-cell" if context is not Context.NB201_CELL else "dag")


def test_release_tables_copy_the_released_code():
    """paper-notes §2: source in-degree, fan_out outside NAS-Bench-201, (2/fan)^2 readout, 3 extra layers."""
    assert RELEASE.init.degree is Degree.SOURCE and PAPER.init.degree is Degree.TARGET and HE_INIT.degree is Degree.NONE
    assert RELEASE.init.fan[Context.NB201_CELL] is Fan.FAN_IN and RELEASE.init.fan[Context.MLP_CELL] is Fan.FAN_OUT
    assert (RELEASE.init.readout_scale, RELEASE.init.readout_power) == (4, 2)
    assert RELEASE.count.base_depth_power_sum[Context.DAG] == 3 ** 3  # the all-skip cell: depth [3]
    assert RELEASE.count.base_depth_power_sum[Context.MLP_CELL] == (1 + 3) ** 3  # the base cell, one layer + 3
    assert RELEASE.count.kernel_factor[Context.CNN_CELL] is KernelFactor.RELEASE_CNN
    # eq. 9's factor is a callable the count owns: q_base / q in the paper, 3 / q in the released CNN code
    conv = from_paper_code("2_02_002", kernel_size=5)
    assert KernelFactor.PAPER(conv, Context.CNN_CELL)[0] == pytest.approx(3 / 5)
    assert KernelFactor.RELEASE_CNN(conv, Context.CNN_CELL, 7)[0] == pytest.approx(3 / 7)
    assert KernelFactor.RELEASE_MLP(conv, Context.MLP_CELL)[0] == 1


def test_one_init_vocabulary():
    assert INITS == ("paper", "exact", "release", "standard")
    assert tuple(PRESETS) == ("paper", "release")  # the published conventions, and only those
    assert Init.of("exact").preset is PAPER and Init.EXACT.node_scales and Init.EXACT.rule is PAPER.init
    assert Init.STANDARD.rule is HE_INIT and Init.STANDARD.preset is PAPER  # He's init, counted as the paper counts
    assert all(Init.of(p).preset is PRESETS[p] and Init.of(p).rule is PRESETS[p].init for p in PRESETS)
    assert str(Init.EXACT) == "exact" and f"{Context.MLP_CELL}" == "mlp-cell"
    for bad in ("rule", "mup", ""):
        with pytest.raises(RuleError, match="unknown init"):
            Init.of(bad)
    with pytest.raises(RuleError, match="unknown preset"):
        preset_of("exact")
    with pytest.raises(RuleError, match="'standard' is an init, not a preset.*rate rule 'shared'"):
        preset_of("standard")
    assert HookConfig(init="exact").scheme is Init.EXACT
    assert HookConfig(init=Init.RELEASE).to_dict()["init"] == "release"  # an object or a name
    assert "preset" not in HookConfig().to_dict()


def test_the_old_hook_spelling_is_refused_and_old_records_still_read():
    """``preset=`` in a hook's options is refused naming the new options; what an earlier version stored reads in
    today's words (``standard`` was He's init at one rate for every candidate)."""
    with pytest.raises(RuleError, match="hook option 'preset' is gone: pass init="):
        HookConfig.from_dict({"preset": "release"})
    with pytest.raises(TypeError):
        HookConfig(preset="release")
    def stored(options):
        return HookConfig.from_dict(stored_options(options))

    assert stored({"preset": "release", "init": None}).init == "release"
    assert stored({"preset": "paper", "init": "exact"}).init == "exact"
    old_he = stored({"preset": "standard", "init": None, "rate_rule": "auto"})
    assert (old_he.init, old_he.rate_rule) == ("standard", "shared")
    assert stored_options({"init": "paper", "optimizer": "adam"}) == {"init": "paper", "optimizer": "adam"}


def _choices(command: str, option: str) -> tuple:
    from nni_archscale.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions if option in a.option_strings)
    return tuple(action.choices)


def test_search_calibrate_and_inspect_accept_the_same_names():
    assert _choices("search", "--init") == _choices("inspect", "--init") == _choices("calibrate", "--init") == INITS
    assert _choices("search", "--rate-rule") == _choices("inspect", "--rate-rule")
    assert {"readout-limited-sgd", "feature", "segmented", "shared"} <= set(_choices("search", "--rate-rule"))
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


@pytest.mark.parametrize("argv, says", [
    (["search", "--preset", "release"], "--preset is gone: give the init as --init"),
    (["calibrate", "--preset", "standard"], "--preset standard (He's init at one rate) is --init standard "
                                            "--rate-rule shared"),
    (["inspect", "2_02_002", "--preset", "paper"], "--preset is gone"),
    (["inspect", "2_02_002", "--network", "mlp", "--rule", "shared"], "--rule is gone: use --rate-rule"),
    (["verify", "2_02_002", "--preset", "release"], "--preset is gone: use --init"),
    (["fairness", "--out", "x", "--preset", "paper"], "--preset is gone"),
    (["experiment", "nb201-lr", "--presets", "paper"], "--presets is gone: use --inits"),
])
def test_the_old_command_line_spellings_are_refused_in_one_line(argv, says, capsys):
    from nni_archscale.cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err
