"""The first-step rules for the paper's DAG-cell networks: the maximal-update condition with the actual moments.

Source: this project, beyond the paper. Eq. 8 assumes the init keeps every node's second moment at the input's
(eq. 3); with skips and post-ReLU means it does not (:mod:`nni_archscale.rules.forward_moments`), so the
first-step argument is redone with the moments as they are. After one step the output changes, to first order in
the rate, by

* SGD:  ``Delta f = -eta * Theta * dL/df``, ``Theta = sum over weights theta of (df/dtheta)^2`` (the NTK's diagonal);
* Adam: ``Delta f = -eta * Theta_1 * sign(dL/df)``, ``Theta_1 = sum over theta of |df/dtheta|`` (the first step
  moves every weight by ``eta * sign(gradient)``).

For a weight matrix of edge ``s -> v``, ``df/dW = a outer delta``, so per layer ``||df/dW||_2^2 = (n E[a^2]) (n
E[delta^2])`` and ``||df/dW||_1 = (n E|a|) (n E|delta|)``, with per-unit moments at infinite width: forward
moments from :mod:`nni_archscale.rules.forward_moments`, backward moments by the same atom bookkeeping in reverse
(gradient independence; a ReLU's derivative an independent Bernoulli(1/2) mask): a parameterised edge passes
``gain * E[act'^2] * E[delta_v^2]`` back, a skip passes ``delta_v`` unchanged, and the output gradient is the
readout's row, ``E[delta_out^2] = Var W_readout`` (:func:`first_step_kernel`). Every kernel is *centred*: each
layer's input second moment ``E[a^2]`` is replaced by its variance ``E[a^2] - E[a]^2`` (at init a classification
loss's output factor ``p - y`` sums to about zero over a balanced batch, so a feature constant across inputs moves
no logit differently from another). For convolutions every hidden term gains ``q^2`` (App. C's ``q^2`` in ``B``).

The product's rules (:data:`RULES`, the defaults of :mod:`nni_archscale.rules.defaults`), each relative to the base
cell (one Linear edge, or one 3x3 conv), which carries the one calibrated constant ``c``:

* ``feature-sgd`` / ``feature-adam`` (``feature`` picks by optimizer): eq. 7's maximal-update condition at the
  features the readout reads, relative to their own scale: ``eta* = c * sqrt(E[z_out^2]) / Theta_h`` (Adam:
  ``Theta_1,h``), ``Theta_h`` the stem-and-cell part of the centred kernel (without the readout's own term
  ``n E[z_out^2]``);
* the second-step limit (:func:`second_step_multiplier`): after one step the mean-field readout row is dominated by
  its own update, so the hidden weights' second update moves the features by ``~ eta^2 n Theta_h``; holding that at
  ``Theta(1)``, with a heuristic depth factor (the mean over paths of ``k_p + 3``, eq. 8's per-path count with the
  release's offset) so that a chain gets ``~ 1/L`` as App. D measures: ``eta* = c * (Theta_h * mean_p (k_p +
  3))^(-1/2)``;
* ``readout-limited-sgd`` (:func:`readout_limited_rate`): the tighter of the second-step limit and the readout's
  own first-step limit, ``eta n Var(z_out) / B <= READOUT_LIMIT``, in absolute units.

These rules depend on the init, the width ``n`` and the input size: that is the point. The variants that lost
their tests live in :mod:`nni_archscale.experiments.rule_variants` and reach :func:`multiplier` as
:class:`KernelRule` objects. Evidence: ``reports/beyond-paper/``; the derivation's measured motivation, each rule's
tests and their figures: ``reports/defaults.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Mapping, Sequence

from ..errors import RuleError
from ..core.formats import from_paper_code
from ..core.graph import ArchGraph, Edge, EdgeKind
from .forward_moments import _MEAN, _SECOND, exact_node_scales, forward_moments, stem_output
from ..core.networks import CellNetwork
from ..core.paths import has_input_output_path, path_statistics
from ..core.context import Context
from .presets import PRESETS, Fan, Init, preset_of
from .registry import GRAPH, REGISTRY
from .paper import edge_init, learning_rate, readout_init

#: rules that give an absolute rate (they need the calibrated base rate and the batch size, not only a multiplier
#: relative to the base cell): see :func:`readout_limited_rate`
ABSOLUTE_RULES = ("readout-limited-sgd",)


#: ``readout-limited-sgd``: the readout's first step may move the logits of a batch by at most
#: ``eta * n * Var(z_out) / B = READOUT_LIMIT`` (``n Var(z_out)``: the readout's centred kernel term; ``B``: the batch
#: size). An absolute constant, measured, not derived (MNIST-14, batch 32; reports/defaults.md, "readout-limited-sgd's
#: constant"). See :func:`readout_limited_rate`.
READOUT_LIMIT = 2**6.5 / 32

#: ``L_p = k_p + DEPTH_OFFSET`` in the second-step limit's mean path length (the release's count, which fits
#: App. D's chains: reports/lr-prediction-mlp-depth)
DEPTH_OFFSET = 3


@lru_cache(maxsize=None)
def _derivative_second_moment(activation: str, v: float) -> float:
    """E[act'(h)^2], h ~ N(0, v): 1/2 for ReLU; GeLU by Gauss-Hermite quadrature (smooth integrand)."""
    if activation == "relu" or v == 0:
        return 0.5 if activation == "relu" else 0.25
    import numpy as np

    x, w = np.polynomial.hermite_e.hermegauss(120)
    h = math.sqrt(v) * x
    cdf = 0.5 * (1 + np.array([math.erf(t / math.sqrt(2)) for t in h]))
    pdf = np.exp(-h * h / 2) / math.sqrt(2 * math.pi)
    return float(np.sum(w * (cdf + h * pdf) ** 2) / np.sum(w))


@lru_cache(maxsize=None)
def _derivative_mean(activation: str, v: float) -> float:
    """E[act'(h)] (what a mask passes of E|delta|): 1/2 for ReLU; GeLU by quadrature."""
    if activation == "relu" or v == 0:
        return 0.5
    import numpy as np

    x, w = np.polynomial.hermite_e.hermegauss(120)
    h = math.sqrt(v) * x
    cdf = 0.5 * (1 + np.array([math.erf(t / math.sqrt(2)) for t in h]))
    pdf = np.exp(-h * h / 2) / math.sqrt(2 * math.pi)
    return float(np.sum(w * np.abs(cdf + h * pdf)) / np.sum(w))


@dataclass(frozen=True)
class CellInit:
    """What an init gives every layer of a :class:`~nni_archscale.core.networks.CellNetwork`: the gain ``Var W *
    fan_in`` of the stem and of every parameterised cell edge, the readout's variance, and (``exact``) the node-sum
    scalars. Built by :func:`cell_init`; the rules read it (:func:`first_step_kernel`), the batched experiments
    draw their weights from it (:meth:`variance`)."""

    net: CellNetwork
    gains: Mapping[Edge, float]  # Var W_e * fan_in of every parameterised cell edge
    stem_gain: float  # Var W_stem * fan_in
    readout_variance: float
    node_scales: tuple[float, ...] | None = None

    def variance(self, layer: str, edge: Edge | None = None) -> float:
        """``Var W`` of ``layer`` (``stem``, ``edge`` with its ``edge``, ``readout``)."""
        if layer == "readout":
            return self.readout_variance
        gain = self.stem_gain if layer == "stem" else self.gains[edge]
        return gain / self.net.fan_in(layer, edge)


@dataclass(frozen=True)
class Kernel:
    """``theta2 = sum (df/dtheta)^2`` (SGD) and ``theta1 = sum |df/dtheta|`` (Adam), with per-layer parts;
    ``centered2``/``centered1`` the same with every layer's input features centred (see :func:`first_step_kernel`)."""

    theta2: float
    theta1: float
    parts2: dict
    parts1: dict
    centered2: float = 0.0
    centered1: float = 0.0
    readout_centered2: float = 0.0  # the readout's own terms of ``centered2``/``centered1``
    readout_centered1: float = 0.0
    output_second_moment: float = 0.0  # E[z_out^2] per unit, the features the readout reads

    @property
    def hidden_centered2(self) -> float:
        """The centred SGD kernel of the hidden weights (stem and cell), without the readout's own term."""
        return self.centered2 - self.readout_centered2

    @property
    def hidden_centered1(self) -> float:
        """The centred Adam kernel of the hidden weights (stem and cell), without the readout's own term."""
        return self.centered1 - self.readout_centered1


def node0_moments(stem_gain: float, convention: str, activation: str) -> tuple[float, float]:
    """(mean, second moment) of node 0: ``act(W x)`` for Linear-then-activation networks, the symmetric
    pre-activation ``W x`` for eq. 1 networks (whose edges apply the activation themselves)."""
    if convention == "eq1":
        return 0.0, stem_gain
    return stem_output(1.0, stem_gain, activation)


def first_step_kernel(init: CellInit) -> Kernel:
    """The SGD and Adam first-step kernels of a DAG-cell network at init (see the module docstring).

    Notation: ``u_v`` is node ``v``'s raw sum, ``z_v = alpha_v u_v`` the node, ``G_v = df/dz_v``.
    """
    net = init.net
    g, n, act = net.cell, net.width, net.activation
    eq1 = net.convention == "eq1"
    mean0, second0 = node0_moments(init.stem_gain, net.convention, act)
    fm = forward_moments(g, init.gains, convention=net.convention, activation=act, input_second_moment=second0,
                         input_mean=mean0, node_scales=init.node_scales)
    alpha = fm.node_scales
    params = list(g.parameterised_edges)
    atom = {e: 1 + i for i, e in enumerate(params)}
    var = [0.0] * (1 + len(params))
    var[0] = init.readout_variance  # G_out = the readout's row
    out = g.output_node
    coeff: list[list[float]] = [[0.0] * len(var) for _ in range(g.num_nodes)]
    coeff[out][0] = 1.0
    back = [0.0] * g.num_nodes  # E[G_v^2] per unit
    pre: dict[Edge, float] = {}  # variance of the Gaussian the edge's activation sees
    for v in range(out, -1, -1):
        if v != out:
            c = [0.0] * len(var)
            for e in g.out_edges[v]:
                if e.kind is EdgeKind.PARAM:
                    c[atom[e]] += 1.0
                else:  # z_w = alpha_w (... + z_v + ...): G_v += alpha_w G_w
                    a = alpha[e.dst]
                    for i, x in enumerate(coeff[e.dst]):
                        c[i] += a * x
            coeff[v] = c
        back[v] = sum(x * x * s for x, s in zip(coeff[v], var))
        gsum = alpha[v] ** 2 * back[v]  # E[(df/du_v)^2]
        for e in g.in_edges[v]:
            if e.kind is EdgeKind.PARAM:
                # eq. 1: act(z_s) with z_s ~ N(0, K_s); Linear-then-act: act(h), h ~ N(0, gain * E[z_s^2])
                pre[e] = (fm.second_moment[e.src] - fm.mean[e.src] ** 2) if eq1 else init.gains[e] * fm.second_moment[e.src]
                var[atom[e]] = init.gains[e] * _derivative_second_moment(act, pre[e]) * gsum
    q2 = lambda e: (e.kernel_size**2 if net.kind == "cnn" else 1)  # noqa: E731
    parts2, parts1 = {}, {}
    abs_mean = lambda second: math.sqrt(2 / math.pi * second)  # noqa: E731  E|X| of a centred Gaussian

    def node_abs_mean(v: int) -> float:
        """E|z_v|: exact (= the mean) for ReLU networks, whose nodes are sums of non-negative activations;
        a folded-normal estimate from the node's mean and variance otherwise."""
        m, sec = fm.mean[v], fm.second_moment[v]
        if not eq1 and act == "relu":
            return m
        sd = math.sqrt(max(sec - m * m, 0.0))
        if sd == 0:
            return abs(m)
        return sd * math.sqrt(2 / math.pi) * math.exp(-m * m / (2 * sd * sd)) + m * math.erf(m / (sd * math.sqrt(2)))
    centered2 = centered1 = 0.0
    for e in params:
        gsum = alpha[e.dst] ** 2 * back[e.dst]
        if eq1:  # df/dW = (df/du_v) outer act(z_s)
            a2, a1 = _SECOND[act](pre[e]), _MEAN[act](pre[e])
            a2c = a2 - _MEAN[act](pre[e]) ** 2
            d2, d1 = gsum, abs_mean(gsum)
        else:  # df/dW = (act'(h) * df/du_v) outer z_s
            a2 = fm.second_moment[e.src]
            a1 = node_abs_mean(e.src)
            a2c = a2 - fm.mean[e.src] ** 2
            d2 = _derivative_second_moment(act, pre[e]) * gsum
            d1 = _derivative_mean(act, pre[e]) * abs_mean(gsum)
        parts2[e.name] = q2(e) * (n * a2) * (n * d2)
        parts1[e.name] = q2(e) * (n * a1) * (n * d1)
        centered2 += q2(e) * (n * a2c) * (n * d2)
        centered1 += q2(e) * (n * abs_mean(a2c)) * (n * d1)
    # stem: df/dW_stem = x outer (act'(h_0) * G_0) (Linear-then-act) or x outer G_0 (eq. 1); E[x^2] = 1
    d_act2 = 1.0 if eq1 else _derivative_second_moment(act, init.stem_gain)
    d_act1 = 1.0 if eq1 else _derivative_mean(act, init.stem_gain)
    parts2["stem"] = net.in_features * n * d_act2 * back[0]
    parts1["stem"] = net.in_features * abs_mean(1.0) * n * d_act1 * abs_mean(back[0])
    # readout: df/dW_readout = z_out for the logit it produces
    parts2["readout"] = n * fm.second_moment[out]
    parts1["readout"] = n * node_abs_mean(out)
    var_out = fm.second_moment[out] - fm.mean[out] ** 2
    centered2 += parts2["stem"] + n * var_out
    centered1 += parts1["stem"] + n * abs_mean(var_out)
    return Kernel(sum(parts2.values()), sum(parts1.values()), parts2, parts1, centered2, centered1,
                  n * var_out, n * abs_mean(var_out), fm.second_moment[out])


def cell_init(net: CellNetwork, init: str | Init) -> CellInit:
    """What ``init`` (:class:`~nni_archscale.rules.presets.Init`) gives every layer of ``net``: its rule's edge and
    readout variances (:mod:`nni_archscale.rules.paper`) and, for ``exact``, the node-sum
    scalars (:func:`nni_archscale.rules.forward_moments.exact_node_scales`)."""
    context = Context.of_cell_network(net.kind).value
    scheme = Init.of(init)
    rule = scheme.rule
    gains = {}
    for item in edge_init(net.cell, rule, context):
        # fan_out = fan_in for width -> width layers, so the gain is Var * fan_in either way
        gains[item.edge] = float(item.gain)
    ro = readout_init(rule, context)
    readout = ro.variance(net.num_classes if ro.fan == "fan_out" else net.width)
    # the stem's He gain 2 over its fan: 2 / fan_in, or the release's 2 / fan_out (Var * fan_in = 2 in / width)
    stem_gain = 2.0 * net.in_features / net.width if rule.fan[Context.of(context)] is Fan.FAN_OUT else 2.0
    scales = None
    if scheme.node_scales:
        mean, sec = node0_moments(stem_gain, net.convention, net.activation)
        scales = exact_node_scales(net.cell, gains, convention=net.convention, activation=net.activation,
                                   input_second_moment=sec, input_mean=mean)
    return CellInit(net, gains, stem_gain, readout, scales)


@dataclass(frozen=True)
class RuleContext:
    """The network a rule is evaluated in: ``kernel_of(cell)`` computes any cell's first-step kernel there, and
    ``base`` is the base cell every rate is anchored on."""

    kernel_of: Callable[[ArchGraph], "Kernel"]
    base: ArchGraph


@dataclass(frozen=True)
class KernelRule:
    """A learning-rate rule up to the calibrated constant: ``multiplier(kernel, cell, context)`` gives the rate
    of ``cell`` (whose first-step kernel is ``kernel``) before it is divided by the base cell's
    (:class:`RuleContext`). ``needs_kernel=False`` rules read only the graph (``kernel`` is then None).
    ``formula`` is the one line the reports print."""

    name: str
    formula: str
    multiplier: Callable[["Kernel | None", ArchGraph, RuleContext], float]
    needs_kernel: bool = True


def second_step_multiplier(kernel: Kernel, cell: ArchGraph) -> float:
    """The hidden features' second-step limit, ``(Theta_h * mean over paths of (k_p + 3))^(-1/2)`` (module
    docstring, ``second-step-sgd``): the first of ``readout-limited-sgd``'s two limits."""
    return (kernel.hidden_centered2 * path_mean_length(cell)) ** -0.5


def _feature(adam: bool) -> Callable[[Kernel | None, ArchGraph, RuleContext], float]:
    def rule(k: Kernel | None, cell: ArchGraph, context: RuleContext) -> float:
        assert k is not None
        return math.sqrt(k.output_second_moment) / (k.hidden_centered1 if adam else k.hidden_centered2)

    return rule


#: The product's kernel rules: the evidence-backed defaults of :mod:`nni_archscale.rules.defaults` (besides
#: eq. 8/9, the one shared rate and the absolute rule ``readout-limited-sgd``). The variants that lost
#: their tests (moment-*, centered-*, depth-centered-sgd, path-mean-depth, second-step-sgd, readout-capped-sgd)
#: live in :mod:`nni_archscale.experiments.rule_variants`, which passes them to :func:`multiplier` as objects.
RULES: dict[str, KernelRule] = {
    "feature-sgd": KernelRule("feature-sgd", "sqrt(E[z_out^2]) / Theta_h (the readout's features move by a fixed "
                              "fraction of their scale; SGD kernel)", _feature(adam=False)),
    "feature-adam": KernelRule("feature-adam", "sqrt(E[z_out^2]) / Theta_1,h (as feature-sgd, Adam's first-step "
                               "kernel)", _feature(adam=True)),
}

#: names that pick a rule by optimizer (``feature`` -> ``feature-sgd`` or ``feature-adam``); see
#: :func:`resolve_rule`
ALIASES = ("feature",)


def resolve_rule(rule: str, optimizer: str, aliases: Sequence[str] = ALIASES) -> str:
    """The rule an alias (``feature``; the research table adds its own) names for ``optimizer``; any other name
    unchanged."""
    return f"{rule}-{'adam' if optimizer == 'adam' else 'sgd'}" if rule in aliases else rule


def _kernel_rule(rule: str | KernelRule, optimizer: str) -> KernelRule:
    if isinstance(rule, KernelRule):
        return rule
    if rule in ABSOLUTE_RULES:
        raise RuleError(f"{rule} gives an absolute rate, not a multiplier: it needs the calibrated base rate and the "
                        f"batch size; use readout_limited_rate(base_lr, net, init, batch_size)")
    name = resolve_rule(rule, optimizer)
    if name not in RULES:
        raise RuleError(f"unknown rule {rule!r}; the product's rules are {', '.join((*RULES, *ALIASES, *ABSOLUTE_RULES))} "
                        f"(research variants that lost their tests live in nni_archscale.experiments.rule_variants)")
    return RULES[name]


def multiplier(rule: str | KernelRule, net: CellNetwork, init: str, optimizer: str) -> float:
    """A rule's learning rate for ``net``'s cell up to the calibrated constant (``1 / Theta`` and the like):
    ``rule`` is a name of :data:`RULES` (or the alias ``feature``) or a :class:`KernelRule` object."""
    kr = _kernel_rule(rule, optimizer)

    def kernel_of(other: ArchGraph) -> Kernel:
        return first_step_kernel(cell_init(replace(net, cell=other), init))

    context = RuleContext(kernel_of, base_cell(net.kind))
    if not kr.needs_kernel:
        return kr.multiplier(None, net.cell, context)
    if not has_input_output_path(net.cell):
        raise RuleError("the cell has no input-to-output path, so the network computes a constant and no "
                        "first-step rule is defined; connect the output to the input")
    return kr.multiplier(kernel_of(net.cell), net.cell, context)


def readout_rate_limit(net: CellNetwork, init: str, batch_size: int) -> float:
    """The largest SGD rate at which the readout's own first step keeps ``eta n Var(z_out) / B`` at
    :data:`READOUT_LIMIT` (an absolute rate, not relative to the base cell). MLP cells only: the constant was
    fitted on them."""
    if net.kind != "mlp":
        raise RuleError(f"readout-limited-sgd's cap was fitted on MLP cells only, not {net.kind!r} cells; use "
                        f"second-step-sgd, or the default one shared rate for CNN cells")
    k = first_step_kernel(cell_init(net, init))
    return READOUT_LIMIT * batch_size / k.readout_centered2


def second_step_ratio(net: CellNetwork, init: str, anchor: ArchGraph | None = None) -> float:
    """The second-step limit of ``net``'s cell relative to ``anchor``'s (default: the base cell) in the same
    network: :func:`second_step_multiplier` of the one over the other's."""
    other = anchor if anchor is not None else base_cell(net.kind)

    def limit(cell: ArchGraph) -> float:
        return second_step_multiplier(first_step_kernel(cell_init(replace(net, cell=cell), init)), cell)

    return limit(net.cell) / limit(other)


def readout_limits(base_lr: float, net: CellNetwork, init: str, batch_size: int) -> tuple[float, float]:
    """``readout-limited-sgd``'s two limits, (second-step rate, readout cap); the rule is their minimum
    (:func:`readout_limited_rate`)."""
    return base_lr * second_step_ratio(net, init), readout_rate_limit(net, init, batch_size)


def readout_limited_rate(base_lr: float, net: CellNetwork, init: str, batch_size: int) -> float:
    """``readout-limited-sgd``: the tighter of two SGD limits, each in absolute units.

    * the hidden features' second-step limit, ``second-step-sgd``: ``base_lr`` (calibrated on the base cell) times
      the cell's multiplier relative to the base cell;
    * the readout's first-step limit, :func:`readout_rate_limit`: after one step the readout alone moves the
      logits by ``eta n Var(z_out) g / B`` (its centred kernel term), which grows with the width and with the
      output's variance; beyond a fixed size that overshoot, not divergence, sets the best rate.

    Unlike every other rule this one carries a second number besides the calibrated ``base_lr``,
    :data:`READOUT_LIMIT`, measured on MNIST-14; how it was fixed, the batch-size check and what is not known (other
    data sets): ``reports/defaults.md``.
    """
    return min(readout_limits(base_lr, net, init, batch_size))


def path_mean_length(cell: ArchGraph, offset: int = DEPTH_OFFSET) -> float:
    """Mean over input-output paths of ``k_p + offset`` (``k_p`` parameterised edges on the path)."""
    m = path_statistics(cell).output
    if m[0] == 0:
        raise RuleError("the cell has no input-to-output path; connect the output to the input")
    return m[1] / m[0] + offset


BASE_CELL_CODE = "0_00_000_2000"


def base_cell(kind: str = "mlp") -> ArchGraph:
    """The base cell every rule is anchored on: one Linear edge, or for CNNs one 3x3 conv (the paper's base CNN)."""
    return from_paper_code(BASE_CELL_CODE, kernel_size=3 if kind == "cnn" else 1)


def rule_multiplier(rule: str | KernelRule, net: CellNetwork, init: str = "paper", optimizer: str = "sgd") -> float:
    """The rate a rule gives ``net``'s cell inside its DAG-cell network, relative to the base cell
    ``0_00_000_2000`` (which gets 1). ``rule``: a name of :data:`RULES` or a :class:`KernelRule`; a registered rate
    rule that gives one rate (``shared``: 1); ``graph``, eq. 8/9 counted by the init's preset; or a published
    preset's name (``paper``, ``release``: eq. 8/9 counted as that convention counts, whatever the init)."""
    context = Context.of_cell_network(net.kind).value
    if isinstance(rule, str) and (rule in PRESETS or rule == GRAPH.name):
        preset = preset_of(rule) if rule in PRESETS else Init.of(init).preset
        return learning_rate(net.cell, 1.0, preset, context).value  # already anchored on the base cell
    if isinstance(rule, str) and rule in REGISTRY and REGISTRY[rule].base_rate:
        return 1.0
    base = replace(net, cell=base_cell(net.kind))
    return multiplier(rule, net, init, optimizer) / multiplier(rule, base, init, optimizer)


def cell_rate(rule: str, base_lr: float, net: CellNetwork, init: str, optimizer: str, batch_size: int = 32,
              anchor: ArchGraph | None = None) -> float:
    """The learning rate a product rule (:data:`RULES`, the alias ``feature`` or ``readout-limited-sgd``) gives
    ``net``'s cell inside the paper's DAG-cell MLP, with ``base_lr`` the rate calibrated on the ``anchor`` cell's
    network (default: the base cell ``0_00_000_2000``, on which every rule's constant was measured). What the hook
    applies to a model recognised as a DAG-cell MLP (:mod:`nni_archscale.torch_layer.dag_cell`)."""
    name = resolve_rule(rule, optimizer)
    if name in ABSOLUTE_RULES:
        if optimizer != "sgd":
            raise RuleError(f"{name} is an SGD rule; with {optimizer} use feature (the default for paper-init Adam) "
                            f"or shared")
        # base_lr is the anchor's rate: move it to the base cell the multiplier is relative to
        ratio = 1.0 if anchor is None else second_step_ratio(replace(net, cell=anchor), init)
        return readout_limited_rate(base_lr / ratio, net, init, batch_size)
    ratio = 1.0 if anchor is None else rule_multiplier(name, replace(net, cell=anchor), init, optimizer)
    return base_lr * rule_multiplier(name, net, init, optimizer) / ratio
