"""Whole-network init plans: which variance every Linear/Conv layer of a network gets, by module name.

A rule (:mod:`nni_archscale.rules.paper`) speaks about the edges of one graph. A real network also has a stem, stacked
copies of the cell, reduction blocks and a classifier. This module maps each of those to a
:class:`LayerInit` keyed by the torch module name it applies to, so that the torch layer can re-initialise a
model without knowing anything about graphs or rules. Pure Python: no torch, no NNI.

NAS-Bench-201 macro network (NNI's ``NasBench201`` module names; ``N`` cells per stage):

===============  ========================================  ============================  ===========================
module           what                                      ``paper``                     ``release``
===============  ========================================  ============================  ===========================
``stem``         3x3 conv, the "1" of L_p = 1 + k_p        2 / fan_in                    2 / fan_in (degree 1)
``cells.K.layers.(i-1).j``  cell edge j->i                 2 / (d_in(i) fan_in)          2 / (max(d_in(j),1) fan_in)
``cells.R.conv_a``   reduction block, first conv           2 / fan_in   (target deg 1)   2 / (2 fan_in)
``cells.R.conv_b``   reduction block, second conv          2 / (2 fan_in) (target deg 2) 2 / fan_in
``cells.R.downsample``  reduction shortcut 1x1 conv        2 / (2 fan_in) (target deg 2) 2 / (2 fan_in)
``classifier``   readout                                   1 / fan_in^2                  4 / fan_in^2
===============  ========================================  ============================  ===========================

``paper`` reads the reduction block as the 3-node graph of :func:`networks.resnet_reduction_block` and applies
eq. 4 with the target's in-degree; ``release`` copies the authors' released code (paper-notes §2).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Mapping

from ..core.graph import ArchGraph, Edge, EdgeKind
from ..core.networks import nb201_network, resnet_reduction_block, single_layer
from .presets import init_rule_of
from .forward_moments import exact_node_scales
from .paper import Context, InitName, edge_init, readout_init

#: He/Kaiming fan-in init with ReLU gain: what a layer of in-degree 1 gets under every init.
HE_GAIN = Fraction(2)


@dataclass(frozen=True)
class LayerInit:
    """``Var W = gain / fan ** power`` for every Linear/Conv weight at or below module ``module``."""

    module: str
    gain: Fraction
    fan: str = "fan_in"
    power: int = 1
    role: str = "layer"
    formula: str = ""

    def variance(self, fan_value: int | float) -> float:
        if fan_value <= 0:
            raise ValueError(f"module {self.module!r}: fan must be positive, got {fan_value}")
        return float(self.gain) / float(fan_value) ** self.power


@dataclass(frozen=True)
class InitPlan:
    """Layer inits keyed by module-name prefix (the longest matching prefix wins), plus a default for the rest.

    ``default`` applies to Linear/Conv layers no entry covers; ``None`` leaves such layers untouched.
    """

    layers: tuple[LayerInit, ...]
    default: LayerInit | None
    #: the init rule's name (:class:`nni_archscale.rules.presets.InitRule`)
    init: str
    description: str = ""

    def lookup(self, module_name: str) -> LayerInit | None:
        best: LayerInit | None = None
        for spec in self.layers:
            m = spec.module
            if module_name == m or module_name.startswith(m + ".") or m == "":
                if best is None or len(m) > len(best.module):
                    best = spec
        return best

    def summary(self) -> str:
        roles: dict[str, int] = {}
        for spec in self.layers:
            roles[spec.role] = roles.get(spec.role, 0) + 1
        parts = ", ".join(f"{n} {r}" for r, n in roles.items())
        return f"init plan [{self.init}]: {parts}" + (f"; {self.description}" if self.description else "")


def _he(module: str, role: str, note: str = "") -> LayerInit:
    return LayerInit(module, HE_GAIN, "fan_in", 1, role, "2 / fan_in" + (f"  [{note}]" if note else ""))


def nb201_edge_module(edge: Edge) -> str:
    """Module name, relative to the cell, of NNI's NasBench201Cell op for edge j->i: ``layers.(i-1).j``."""
    return f"layers.{edge.dst - 1}.{edge.src}"


def nb201_cell_indices(cells_per_stage: int) -> tuple[list[int], list[int]]:
    """Indices into NNI's ``NasBench201.cells`` of the searched cells and of the two reduction blocks, read off
    :func:`~nni_archscale.core.networks.nb201_network` (NNI's ``cells`` are its blocks between the stem and the
    classifier: reductions at ``n`` and ``2n + 1``)."""
    body = nb201_network(single_layer(1), cells_per_stage).blocks[1:-1]
    return ([k for k, b in enumerate(body) if b.role == "cell"],
            [k for k, b in enumerate(body) if b.role == "reduction"])


def nb201_stage_size(num_blocks: int) -> int | None:
    """The ``cells_per_stage`` ``n`` of an NB201 network whose ``cells`` list has ``num_blocks`` blocks (``3n + 2``,
    :func:`~nni_archscale.core.networks.nb201_network` less its stem and classifier), or None when no ``n`` fits."""
    n = (num_blocks - 2) // 3
    return n if n >= 1 and 3 * n + 2 == num_blocks else None


def nb201_plan(cell: ArchGraph, init: InitName = "paper", cells_per_stage: int = 5,
               readout_module: str = "classifier", stem_module: str = "stem") -> InitPlan:
    """The init plan of NNI's NasBench201 network whose every cell is ``cell`` (see the module docstring)."""
    if cell.num_nodes < 2:
        raise ValueError("a NAS-Bench-201 cell needs at least 2 nodes")
    layers: list[LayerInit] = [_he(stem_module, "stem", "stem: in-degree 1")]
    rule = init_rule_of(init)
    cell_specs = edge_init(cell, rule, "nb201-cell")
    cells, reductions = nb201_cell_indices(cells_per_stage)
    for k in cells:
        for spec in cell_specs:
            rel = spec.edge.module or nb201_edge_module(spec.edge)
            layers.append(LayerInit(f"cells.{k}.{rel}", spec.gain, spec.fan, 1, "cell", spec.formula))
    if rule.reduction is not None:  # the release's fixed table
        red_specs = list(rule.reduction)
    else:  # eq. 4 on the reduction block's 3-node graph
        red_specs = [(s.edge.module, s.gain, s.formula) for s in edge_init(resnet_reduction_block(), rule, "dag")]
    for k in reductions:
        for module, gain, formula in red_specs:
            layers.append(LayerInit(f"cells.{k}.{module}", gain, "fan_in", 1, "reduction", formula))
    ro = readout_init(rule, "nb201-cell")
    layers.append(LayerInit(readout_module, ro.scale, ro.fan, ro.power, "readout", ro.formula))
    return InitPlan(tuple(layers), _he("", "other", "unplanned layer"), rule.name,
                    f"NAS-Bench-201, {cells_per_stage} cell(s) per stage")


def graph_plan(graph: ArchGraph, init: InitName = "paper", context: Context = "dag",
               readout_module: str | None = None, prefix: str = "",
               extra: Iterable[LayerInit] = (), default_he: bool = True) -> InitPlan:
    """The plan of a network whose searched part is ``graph`` (edges name their modules in ``Edge.module``).

    Parameterised edges without a module name are skipped (nothing to re-initialise); the others are reported with
    role ``graph`` (a whole-network graph holds the stem too); ``readout_module`` gets the rule's readout init;
    every other Linear/Conv gets He fan-in init when ``default_he`` (in-degree 1).
    """
    layers: list[LayerInit] = list(extra)
    rule = init_rule_of(init)
    for spec in edge_init(graph, rule, context):
        if spec.edge.module and spec.edge.module != readout_module:
            layers.append(LayerInit(prefix + spec.edge.module, spec.gain, spec.fan, 1, "graph", spec.formula))
    if readout_module is not None:
        ro = readout_init(rule, context)
        layers.append(LayerInit(readout_module, ro.scale, ro.fan, ro.power, "readout", ro.formula))
    return InitPlan(tuple(layers), _he("", "other", "unplanned layer") if default_he else None, rule.name)


def module_rates(graph: ArchGraph, rates: Mapping[Edge, float], prefixes: Iterable[str] = ("",)) -> dict[str, float]:
    """Per-edge learning rates keyed by module name (for :func:`torch_layer.param_groups.build_param_groups`)."""
    out: dict[str, float] = {}
    for e, lr in rates.items():
        if e.kind is not EdgeKind.PARAM:
            continue
        rel = e.module or nb201_edge_module(e)
        for p in prefixes:
            out[p + rel] = lr
    return out


def nb201_output_scales(cell: ArchGraph, cells_per_stage: int = 5) -> dict[str, float]:
    """``--init exact`` for NNI's NAS-Bench-201 network: the scalar on every cell edge's output.

    Each node ``i`` of every cell is multiplied by ``alpha_i`` from :func:`nni_archscale.rules.forward_moments.exact_node_scales`
    in the ``conv-bn`` convention (ReLU-Conv-BN edges give unit-variance outputs, skips and pooling carry their
    source), so that every node keeps the cell input's second moment; node ``i``'s scalar is applied to each of
    its incoming edges ``layers.(i-1).j``.
    """
    alpha = exact_node_scales(cell, convention="conv-bn", init="paper", context="nb201-cell")
    cells, _ = nb201_cell_indices(cells_per_stage)
    return {f"cells.{k}.{nb201_edge_module(e)}": alpha[e.dst] for k in cells for e in cell.active_edges}
