"""The scaling rules: an init variance for every parameterised edge, and a learning rate, for a graph.

Source: Chen, Wu, Wang & Hanin, "Principled Architecture-aware Scaling of Hyperparameters", ICLR 2024.

Init (eq. 2 and eq. 4, read as App. A eq. 12):
    Var W_e = 2 / (d_in(target(e)) * fan_in)          hidden edges (He fan-in divided by the in-degree)
    Var W   = 1 / fan_in^2                            readout, mean-field (eq. 2; App. B)
Learning rate (eq. 8, and eq. 9 for convolutions):
    eta = c * (sum over input-output paths p of L_p^3)^(-1/2) * q^(-1)
with ``c`` calibrated once on a base network: ``eta = base_lr * sqrt(S_base / S) * q_base / q``.

A graph's edges are always hidden layers (Linear/Conv + ReLU, skips, pooling); the readout is a separate
linear layer after the graph's output node. ``L_p`` counts the Linear/Conv+ReLU layers on path ``p`` in the
network the graph stands for (its *context*):

=========== ================================================= ===================== ======================
context     what the graph is                                 ``paper`` L_p / base   ``release`` L_p / base
=========== ================================================= ===================== ======================
dag         the paper's bare DAG (eq. 1), e.g. a paper code    k_p / 1 (one layer)     k_p + 3 / 3^3
nb201-cell  one NAS-Bench-201 cell (§4.3)                      1 + k_p / 1             1 + k_p / 1
mlp-cell    the cell of the paper's MLP (Linear+ReLU stem,     1 + k_p / 2^3           k_p + 3 / 4^3
            cell, linear readout; §4.1)
cnn-cell    the same with Conv stem and cell edges (§4.2)      1 + k_p / 2^3           k_p + 3 / 4^3
=========== ================================================= ===================== ======================

In the ``paper`` count ``L_p`` counts the ReLUs on the path (§3.3: "the number of ReLU activations"): the
stem's and the cell's, not the linear readout's. For ``mlp-cell``/``cnn-cell`` the base network is the cell
``0_00_000_2000`` (one Linear/Conv edge from input to output), under each count, so that
``base_lr`` always means the rate calibrated on that network; ``release`` then keeps the released code's
ratios between candidates (its hard-coded base depth [3] is the all-skip cell).

A :class:`~nni_archscale.core.networks.Network` carries its context (:func:`~nni_archscale.core.networks.bare`,
:func:`~nni_archscale.core.networks.dag_cell_network`, :func:`~nni_archscale.core.networks.nb201_network`), so
``scale(network, base_lr, init)`` needs nothing else; the paper's depth offset is the network's
``layers_before_cell`` (tested).

For NAS-Bench-201 the paper's experiments count the paths of *one* cell, with the stem conv as the "1"
(paper-notes §4); we follow them and say so, and leave whole-network counts to the evidence.

The init and the path count are data (:mod:`nni_archscale.rules.presets`: an
:class:`~nni_archscale.rules.presets.InitRule` per init, a :class:`~nni_archscale.rules.presets.PathCount` per
published convention); the functions below read those fields and branch on no name. The inits:

* ``paper`` (default): target in-degree, fan-in, mean-field readout; its count: ``q^-1`` with q the largest
  kernel on the network's parameterised layers (the most restrictive layer bounds a single global rate).
* ``exact``: ``paper`` plus node-sum scalars (applied by the torch layer; the variances here are the paper's).
* ``release``: the authors' released code exactly: source in-degree (at least 1), fan_out for MLP/CNN cells
  and fan_in for NAS-Bench-201, readout ``(2/fan)^2``; its count: ``3/q`` for MLP/CNN and no kernel factor for
  NAS-Bench-201, and the base rate when no path has a parameterised edge.
* ``standard``: Kaiming/He fan-in init (readout 1/fan_in), counted as the paper counts. One learning rate for every
  candidate is not an init: it is the rate rule ``shared`` (:mod:`nni_archscale.rules.registry`).
"""

from __future__ import annotations

import math
import numbers
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from ..errors import ArchitectureParseError, NoPathError, RateUnderflowError, RuleError, shorten
from ..core.formats import ACCEPTED_FORMS, parse_architecture
from ..core.graph import MAX_KERNEL_SIZE, ArchGraph, Edge
from ..core.networks import Network
from ..core.paths import Moments, compose_moments, path_statistics, power_sum, shift_moments
from ..core.context import Context as ContextName
from ..core.context import default_base_kernel_size, effective_kernel_size  # noqa: F401  (re-exported: eq. 9's q)
from .presets import PRESETS, Init, Preset, init_rule_of, preset_of  # noqa: F401  (PRESETS: re-exported)

#: the context names (:class:`nni_archscale.core.context.Context`)
CONTEXTS = tuple(c.value for c in ContextName)
Context = Literal["dag", "nb201-cell", "mlp-cell", "cnn-cell"]
#: Base learning rates used when none is given: the authors' NAS-Bench-201 example (0.46); elsewhere 1.0, so that
#: a printed learning rate reads as the multiplier of the rate calibrated on the base network.
DEFAULT_BASE_LR = {"nb201-cell": 0.46, "dag": 1.0, "mlp-cell": 1.0, "cnn-cell": 1.0}


@dataclass(frozen=True)
class EdgeInit:
    """Init of one parameterised edge: ``Var W = gain / fan`` (fan is ``fan_in`` or ``fan_out``)."""

    edge: Edge
    gain: Fraction
    fan: str
    degree_node: int | None
    degree: int | None
    formula: str

    def variance(self, fan_value: int | float) -> float:
        return float(self.gain) / fan_value


@dataclass(frozen=True)
class ReadoutInit:
    """Init of the readout layer: ``Var W = scale / fan ** power``."""

    scale: Fraction
    power: int
    fan: str
    formula: str

    def variance(self, fan_value: int | float) -> float:
        return float(self.scale) / fan_value**self.power


@dataclass(frozen=True)
class LearningRate:
    """A global learning rate and how it was obtained."""

    value: float
    base_lr: float
    depth_offset: int
    depth_power_sum: int
    base_depth_power_sum: int
    kernel_factor: Fraction
    formula: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scaling:
    """Everything the paper's rules say about one graph: the init's variances and the graph rule's rate, counted by
    the published convention ``preset`` (:attr:`nni_archscale.rules.presets.Init.preset`)."""

    preset: str
    context: str
    graph: ArchGraph
    path_moments: Moments
    init: tuple[EdgeInit, ...]
    readout: ReadoutInit
    learning_rate: LearningRate
    edge_learning_rates: dict[Edge, float] = field(default_factory=dict)
    #: the init rule the variances are (``paper``, ``release`` or ``standard``; ``exact``'s are the paper's)
    init_rule: str = "paper"

    @property
    def num_paths(self) -> int:
        return self.path_moments[0]


# --------------------------------------------------------------------------- init
InitName = "str | Init | InitRule | Preset"


def edge_init(graph: ArchGraph, init: InitName = "paper", context: Context = "dag") -> tuple[EdgeInit, ...]:
    """Init variance of every parameterised edge of ``graph`` (eq. 4 / App. A eq. 12 for ``paper``):
    ``Var W_e = 2 / (d * fan)`` with ``d`` and the fan fixed by the init's rule
    (:class:`~nni_archscale.rules.presets.InitRule`; ``init`` an init name, an Init, a rule or a preset's)."""
    r, ctx = init_rule_of(init), ContextName.of(context)
    fan = r.fan[ctx]
    out = []
    for e in graph.parameterised_edges:
        node, d = r.degree.divisor(graph, e)
        out.append(EdgeInit(e, Fraction(2, d or 1), fan.value, node, d, r.edge_formula(d, node, fan)))
    return tuple(out)


def readout_init(init: InitName = "paper", context: Context = "dag") -> ReadoutInit:
    """Init of the readout layer (eq. 2: mean-field 1/n^2 for ``paper``)."""
    r, ctx = init_rule_of(init), ContextName.of(context)
    return ReadoutInit(r.readout_scale, r.readout_power, r.fan[ctx].value, r.readout_formula[ctx])


# --------------------------------------------------------------------------- learning rate
def depth_offset(preset: str | Preset, context: Context) -> int:
    """Layers outside the graph that every path crosses (see the module docstring's table)."""
    return preset_of(preset).count.depth_offset[ContextName.of(context)]


def base_depth_power_sum(preset: str | Preset, context: Context) -> int:
    """``sum L_p^3`` of the base network the rate ``c`` is calibrated on."""
    return preset_of(preset).count.base_depth_power_sum[ContextName.of(context)]


def learning_rate(
    graph: ArchGraph,
    base_lr: float,
    preset: "str | Preset | Init" = "paper",
    context: Context = "dag",
    kernel_size: int | None = None,
    base_kernel_size: int | None = None,
    moments: Moments | None = None,
) -> LearningRate:
    """The global learning rate of eq. 8 / eq. 9, transferred from ``base_lr`` on the base network, with paths
    counted by ``preset`` (``paper`` or ``release``, or an :class:`~nni_archscale.rules.presets.Init`'s own)."""
    p, ctx = preset_of(preset).count, ContextName.of(context)
    check_base_lr(base_lr)
    check_kernel_sizes(kernel_size, base_kernel_size)
    if moments is None:
        moments = path_statistics(graph).output
    notes: list[str] = []
    offset = p.depth_offset[ctx]
    base_sum = p.base_depth_power_sum[ctx]
    fallback = p.base_depth_fallback[ctx]
    if moments[0] == 0:
        if fallback:
            notes.append("no input-output path: the release falls back to the base depth [3] (base rate)")
        else:
            raise NoPathError(
                "the graph has no input-to-output path, so sum_p L_p^3 is empty and the learning-rate rule "
                "(eq. 8) is undefined; connect the output to the input (this candidate computes a constant)"
            )
    if fallback and moments[1] == 0:
        total = 27  # release: no parameterised edge on any path -> depth list [0] -> [3]
        if moments[0]:
            notes.append("no parameterised edge on any path: the release uses the base depth [3]")
    else:
        total = power_sum(moments, 3, offset)
    if total == 0:
        raise RuleError(
            "no input-output path crosses a parameterised layer (sum_p L_p^3 = 0): the graph has no weights "
            "whose learning rate the rule could set; add a Linear/Conv edge on some path"
        )
    kfac, kdesc = p.kernel_factor[ctx](graph, ctx, kernel_size, base_kernel_size)
    value = transferred_rate(base_lr, base_sum, total, kfac)
    depth = "k_p" if offset == 0 else f"k_p + {offset}"
    formula = (
        f"eta = base_lr * sqrt(S_base / sum_p L_p^3) * ({kdesc}) = {base_lr:g} * sqrt({base_sum} / "
        f"{big_int_text(total)}) "
        f"* {float(kfac):g} = {value:.6g}   [eq. 8/9; L_p = {depth}]"
    )
    return LearningRate(value, float(base_lr), offset, total, base_sum, kfac, formula, tuple(notes))


def big_int_text(n: int) -> str:
    """An integer for a formula: in full up to 30 digits, else as a power of ten (a path sum may have hundreds)."""
    return str(n) if n < 10**30 else f"10^{math.log10(n):.2f}"


def transferred_rate(base_lr: float, base_sum: int, total: int, kernel_factor: Fraction | float = 1) -> float:
    """Eq. 8 (times eq. 9's kernel factor): ``base_lr * sqrt(base_sum / total) * kernel_factor``, in logs, so that
    a path sum past float64's range (a 2,000-node ladder has about 10^418 paths) gives its true, tiny rate or a
    :class:`~nni_archscale.errors.RateUnderflowError`, never 0 or an OverflowError."""
    if total < 10**300:  # the direct formula (bit for bit what every committed report used)
        return float(base_lr) * math.sqrt(base_sum / total) * float(kernel_factor)
    log_rate = math.log(base_lr) + 0.5 * (math.log(base_sum) - math.log(total)) + math.log(kernel_factor)
    if log_rate < math.log(sys.float_info.min):
        raise RateUnderflowError(
            f"eq. 8 gives a learning rate of 10^{log_rate / math.log(10):.1f} (sum_p L_p^3 = "
            f"10^{math.log10(total):.1f}), below the smallest float64: no optimizer step can be that small; "
            f"a graph this deep and wide needs another rate rule (e.g. shortest-path) or a smaller graph")
    return math.exp(log_rate)


#: Largest learning rate the commands accept (``--base-lr``, ``--shared-lr``, ``--low``, ``--high``, the
#: experiments' grids): far above any rate that trains (1e6 already diverges, and is reported so), far below
#: float32's range, which a larger rate overflows inside the optimizer (the Python API's ``HookConfig`` refuses only
#: rates past that range: a test may train at 1e12 to see a divergence).
MAX_LEARNING_RATE = 1e6


def check_base_lr(base_lr: object) -> None:
    """Refuse anything but a positive finite real number (a bool is not one: ``True`` would silently mean 1.0)."""
    if isinstance(base_lr, bool) or not isinstance(base_lr, numbers.Real):
        raise RuleError(
            f"base learning rate must be a positive finite number, got {shorten(base_lr)} "
            f"({type(base_lr).__name__}); pass the rate calibrated on the base network, e.g. base_lr=0.46"
        )
    if not (math.isfinite(base_lr) and base_lr > 0):
        raise RuleError(
            f"base learning rate must be a positive finite number, got {shorten(base_lr)}; pass the rate "
            "calibrated on the base network, e.g. base_lr=0.46"
        )


def check_kernel_sizes(kernel_size: object, base_kernel_size: object) -> None:
    """Each of ``kernel_size`` (q) and ``base_kernel_size`` (q_base) of eq. 9 is None (the default: the graph's
    own, the base network's) or an integer 1..:data:`~nni_archscale.core.graph.MAX_KERNEL_SIZE` (not a bool): 0 must
    not silently mean the default, a negative size would give a negative rate, 2.5 is no kernel."""
    for name, q in (("kernel_size", kernel_size), ("base_kernel_size", base_kernel_size)):
        if q is None:
            continue
        if isinstance(q, bool) or not isinstance(q, numbers.Integral) or not 1 <= q <= MAX_KERNEL_SIZE:
            raise RuleError(
                f"{name} must be an integer in 1..{MAX_KERNEL_SIZE:,} (nni_archscale.core.graph.MAX_KERNEL_SIZE), got "
                f"{shorten(q)}; give the side q of the square kernel, e.g. 3 for 3x3, or None for the default"
            )


def edge_learning_rates(graph: ArchGraph, rate: LearningRate) -> dict[Edge, float]:
    """Optional per-edge rates (not in the paper): eq. 8 restricted to the paths through each edge.

    ``eta_e = base_lr * sqrt(S_base / sum_{p through e} L_p^3) * kernel_factor``; edges on no input-output
    path keep the global rate. Path moments through ``e`` compose the input-to-source moments, the edge
    and the target-to-output moments, all by dynamic programming.
    """
    fwd = path_statistics(graph).moments
    bwd = _backward_moments(graph)
    out = {}
    for e in graph.parameterised_edges:
        through = compose_moments(shift_moments(fwd[e.src]), bwd[e.dst])
        total = power_sum(through, 3, rate.depth_offset)
        if through[0] == 0 or total == 0:
            out[e] = rate.value
        else:
            out[e] = transferred_rate(rate.base_lr, rate.base_depth_power_sum, total, rate.kernel_factor)
    return out


def _backward_moments(graph: ArchGraph) -> list[Moments]:
    """Moments of the paths from each node to the output: the forward pass on the reversed graph."""
    n = graph.num_nodes
    reversed_graph = ArchGraph(n, (Edge(n - 1 - e.dst, n - 1 - e.src, e.kind, e.kernel_size) for e in graph.active_edges))
    forward = path_statistics(reversed_graph).moments
    return [forward[n - 1 - v] for v in range(n)]


# --------------------------------------------------------------------------- everything at once
def scale(
    network: "Network | ArchGraph | str",
    base_lr: float,
    init: "str | Init | Preset" = "paper",
    context: Context | None = None,
    kernel_size: int | None = None,
    base_kernel_size: int | None = None,
    per_edge: bool = False,
) -> Scaling:
    """Apply an init and the graph rule to a network: init of every parameterised edge of its searched cell,
    readout init, rate(s) of eq. 8/9 counted by the init's preset (:attr:`~nni_archscale.rules.presets.Init.preset`;
    a :class:`~nni_archscale.rules.presets.Preset` gives its own init and count).

    ``network`` is a :class:`~nni_archscale.core.networks.Network` (the paper's DAG-cell MLP/CNN from
    :func:`~nni_archscale.core.networks.dag_cell_network`, NAS-Bench-201 from
    :func:`~nni_archscale.core.networks.nb201_network`, a bare DAG from :func:`~nni_archscale.core.networks.bare`): its
    searched cell and the context it sits in (which fixes eq. 8's depth offset and the base network) are read off
    it. A bare :class:`~nni_archscale.core.graph.ArchGraph` or any text ``archscale inspect`` reads (a NAS-Bench-201
    string, a paper code, a text graph, inline JSON or a JSON file path; parse errors are
    :class:`~nni_archscale.errors.ArchitectureParseError`) is read in ``context``, which defaults, as in
    ``inspect``, to ``nb201-cell`` for a NAS-Bench-201 string and ``dag`` otherwise; ``kernel_size`` also sets the
    kernel of a paper code's parameterised edges. ``base_lr`` must be a positive finite number (not a bool).
    """
    check_kernel_sizes(kernel_size, base_kernel_size)  # before a string is read with kernel_size
    form = None
    graph = network
    if isinstance(network, Network):
        if context is not None and ContextName.of(context) is not network.context:
            raise RuleError(f"context {context!r} contradicts the network {network.name!r}, whose searched cell is "
                            f"a {network.context} graph; drop context= (a Network carries its own)")
        context = network.context.value
        # a bare DAG is read whole (several blocks in series: the flattened network); the cell networks are read
        # by their searched cell, as the paper counts them (a NAS-Bench-201 network's paths are one cell's)
        cells = sum(b.role == "cell" for b in network.blocks)
        graph = network.flatten() if network.context is ContextName.DAG and len(network.blocks) > 1 else network.cell
        if network.context is not ContextName.DAG and cells != 1 and network.context is not ContextName.NB201_CELL:
            raise RuleError(f"network {network.name!r} has {cells} cell blocks; a {network.context} network has one")
    elif isinstance(network, str):
        graph, form = parse_architecture(network, kernel_size=kernel_size or 1)
    elif not isinstance(network, ArchGraph):
        raise ArchitectureParseError(
            f"scale() needs a Network, an ArchGraph or an architecture string, got {type(network).__name__}; "
            f"give a networks.Network, an ArchGraph or {ACCEPTED_FORMS}"
        )
    if context is None:
        context = "nb201-cell" if form == "nb201" else "dag"
    rule, p, ctx = init_rule_of(init), preset_of(init if isinstance(init, Preset) else Init.of(init)), \
        ContextName.of(context)
    check_base_lr(base_lr)
    moments = path_statistics(graph).output
    rate = learning_rate(graph, base_lr, p, ctx.value, kernel_size, base_kernel_size, moments)
    per = edge_learning_rates(graph, rate) if per_edge else {}
    return Scaling(
        p.name, ctx.value, graph, moments, edge_init(graph, rule, ctx.value), readout_init(rule, ctx.value), rate, per,
        rule.name,
    )
