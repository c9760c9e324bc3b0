"""Exact forward second moments of every node at initialisation, at infinite width, and a variance-exact init.

The paper's init (eq. 4) is derived assuming that the terms summed at a node are uncorrelated (App. A,
eq. 11). They are not when a node sums skip edges, nor, in the released networks' convention, when it sums
post-ReLU edges (non-zero means). This module computes the moments exactly, for three conventions:

* ``"eq1"`` - the paper's eq. 1: a parameterised edge adds ``W act(z_src)``; a skip adds ``z_src``.
* ``"linear-act"`` - the released MLP/CNN cells (paper-notes §1): a parameterised edge adds
  ``act(W z_src)`` (Linear, then ReLU); a skip adds ``z_src``. Post-activation features have non-zero means.
* ``"conv-bn"`` - NAS-Bench-201's ReLU-Conv-BN edges: BatchNorm (at init, batch statistics, unit gain) makes
  every parameterised edge's output zero-mean with unit variance whatever the weights, so the weights' scale
  no longer matters and only skips and pooling decide each node's moment.

Method (infinite width, Gaussian input): every weight matrix is fresh and zero-mean, so the pre-activation
``h_e = W z_src`` of edge ``e`` is, per unit, a Gaussian independent of everything computed before it, with
variance ``gain_e * E[z_src^2]`` (``Var W = gain / fan_in``; the fan-in, kernel taps included, cancels the
sum over inputs). So each node is a fixed linear combination of independent *atoms*: the input coordinate
and one atom per parameterised edge (``act(h_e)`` or ``W act(z_src)``). With ``c_v`` node ``v``'s coefficients,

    E[z_v z_w] = sum_a c_va c_wa Var(atom_a) + E[z_v] E[z_w],      E[z_v] = sum_a c_va E[atom_a],

and the coefficients follow skip paths (a skip adds its source's coefficients; pooling is treated as linear
with coefficient ``pool_factor``, 1 for spatially constant features). Activation moments for
``h ~ N(0, V)`` are closed forms: ReLU mean ``sqrt(V / 2 pi)``, second moment ``V / 2``; GeLU
(``h Phi(h)``) mean ``V / sqrt(2 pi (1 + V))`` (Stein's lemma) and the second moment of
:func:`gelu_second_moment`.

The variance-exact init (:func:`exact_node_scales`) multiplies each node's sum by a fixed scalar ``alpha_v``
chosen in topological order so that ``E[z_v^2] = E[z_0^2]`` for every live node: the same idea as unit
scaling's fixed weights on residual additions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import RuleError
from ..core.graph import ArchGraph, Edge, EdgeKind
from .paper import edge_init

CONVENTIONS = ("eq1", "linear-act", "conv-bn")
ACTIVATIONS = ("relu", "gelu")


# --------------------------------------------------------------------------- activation moments
def relu_mean(v: float) -> float:
    """E[relu(h)], h ~ N(0, v)."""
    return math.sqrt(v / (2 * math.pi))


def relu_second_moment(v: float) -> float:
    """E[relu(h)^2] = v / 2 (App. A eq. 10)."""
    return v / 2


def gelu_mean(v: float) -> float:
    """E[h Phi(h)] = v E[phi(h)] = v / sqrt(2 pi (1 + v)) (Stein's lemma)."""
    return v / math.sqrt(2 * math.pi * (1 + v))


def gelu_second_moment(v: float) -> float:
    """E[(h Phi(h))^2], h ~ N(0, v):  v/4 + v/(2 pi) asin(v/(1+v)) + v^2 / (pi (1+v) sqrt(1+2v)).

    The diagonal of the GeLU dual kernel; derived with sympy in ``symbolic`` and checked by quadrature in the tests.
    """
    if v == 0:
        return 0.0
    return v / 4 + v / (2 * math.pi) * math.asin(v / (1 + v)) + v * v / (math.pi * (1 + v) * math.sqrt(1 + 2 * v))


_MEAN = {"relu": relu_mean, "gelu": gelu_mean}
_SECOND = {"relu": relu_second_moment, "gelu": gelu_second_moment}


@dataclass(frozen=True)
class ForwardMoments:
    """Per-unit moments of every node: ``second_moment[v] = E[z_v^2]``, ``mean[v] = E[z_v]``."""

    graph: ArchGraph
    convention: str
    activation: str
    second_moment: tuple[float, ...]
    mean: tuple[float, ...]
    node_scales: tuple[float, ...]
    coefficients: tuple[tuple[float, ...], ...]
    atom_variance: tuple[float, ...]
    atom_mean: tuple[float, ...]

    def ratio(self, v: int) -> float:
        """``E[z_v^2] / E[z_0^2]``: 1 where the init preserves the input's scale."""
        return self.second_moment[v] / self.second_moment[0]

    @property
    def ratios(self) -> tuple[float, ...]:
        return tuple(self.ratio(v) for v in range(self.graph.num_nodes))

    @property
    def output_gain(self) -> float:
        """Second-moment gain of the graph: output over input."""
        return self.ratio(self.graph.output_node)

    def cross_moment(self, v: int, w: int) -> float:
        """``E[z_v z_w]`` per unit."""
        cv, cw = self.coefficients[v], self.coefficients[w]
        return sum(a * b * s for a, b, s in zip(cv, cw, self.atom_variance)) + self.mean[v] * self.mean[w]

    def live(self, v: int) -> bool:
        """True when the node carries signal (some coefficient is non-zero)."""
        return any(self.coefficients[v])


def _gains_from_rule(graph: ArchGraph, init: str, context: str) -> dict[Edge, float]:
    return {item.edge: float(item.gain) for item in edge_init(graph, init, context)}  # type: ignore[arg-type]


def forward_moments(
    graph: ArchGraph,
    gains: Mapping[Edge, float] | None = None,
    *,
    init: str = "paper",
    context: str = "dag",
    convention: str = "eq1",
    activation: str = "relu",
    input_second_moment: float = 1.0,
    input_mean: float = 0.0,
    node_scales: Sequence[float] | str | None = None,
    pool_factor: float = 1.0,
) -> ForwardMoments:
    """Exact per-unit moments of every node at init (infinite width, Gaussian input).

    ``gains[e]`` is ``Var W_e * fan_in``; by default the ``init``'s (eq. 4: ``2 / d_in(target)``).
    ``node_scales[v]`` multiplies node ``v``'s sum (1 everywhere by default; ``"exact"`` chooses the scales of
    :func:`exact_node_scales` on the way). For ``"linear-act"``, node 0
    is usually a post-activation stem output: pass its mean and second moment (see :func:`stem_output`).
    """
    if convention not in CONVENTIONS:
        raise RuleError(f"unknown convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    if activation not in ACTIVATIONS:
        raise RuleError(f"unknown activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
    if input_second_moment <= 0 or input_mean**2 > input_second_moment * (1 + 1e-12):
        raise RuleError(
            f"input moments impossible: mean^2 = {input_mean**2:g} must not exceed the second moment "
            f"{input_second_moment:g} (> 0)"
        )
    if convention == "eq1" and input_mean != 0:
        raise RuleError(
            "the eq. 1 convention assumes a symmetric input (App. A, eq. 10): input_mean must be 0; "
            "a post-activation input belongs to the 'linear-act' convention"
        )
    if gains is None:
        gains = _gains_from_rule(graph, init, context)
    n = graph.num_nodes
    normalise = node_scales == "exact"
    scales = [1.0] * n if node_scales is None or normalise else [float(x) for x in node_scales]
    if len(scales) != n:
        raise RuleError(f"node_scales has {len(scales)} entries for a graph of {n} nodes")
    mean_fn, second_fn = _MEAN[activation], _SECOND[activation]

    param_index = {e: 1 + i for i, e in enumerate(graph.parameterised_edges)}
    num_atoms = 1 + len(param_index)
    atom_var = [0.0] * num_atoms
    atom_mean = [0.0] * num_atoms
    atom_var[0] = input_second_moment - input_mean**2
    atom_mean[0] = input_mean

    coeff: list[list[float]] = [[0.0] * num_atoms for _ in range(n)]
    coeff[0][0] = scales[0]
    second = [0.0] * n
    mean = [0.0] * n
    mean[0] = scales[0] * input_mean
    second[0] = scales[0] ** 2 * input_second_moment

    for v in range(1, n):
        c = [0.0] * num_atoms
        for e in graph.in_edges[v]:
            s = e.src
            if e.kind is EdgeKind.PARAM:
                if e not in gains:
                    raise RuleError(f"no init gain given for parameterised edge {e.name}")
                g = float(gains[e])
                a = param_index[e]
                if convention == "conv-bn":  # BN(conv(act(z_s))): unit variance, zero mean (a live input)
                    atom_var[a] = 1.0 if second[s] > 0 else 0.0
                    atom_mean[a] = 0.0
                elif convention == "eq1":  # W act(z_s): zero mean, E = g * E[act(z_s)^2], z_s ~ N(0, K_s)
                    atom_var[a] = g * second_fn(second[s] - mean[s] ** 2) if second[s] > 0 else 0.0
                    atom_mean[a] = 0.0
                else:  # act(W z_s): W z_s ~ N(0, g * E[z_s^2])
                    pre = g * second[s]
                    atom_mean[a] = mean_fn(pre)
                    atom_var[a] = second_fn(pre) - atom_mean[a] ** 2
                c[a] += 1.0
            else:
                factor = pool_factor if e.kind is EdgeKind.POOL else 1.0
                src = coeff[s]
                for i in range(num_atoms):
                    if src[i]:
                        c[i] += factor * src[i]
        if normalise:
            raw_mean = sum(x * mu for x, mu in zip(c, atom_mean))
            raw = sum(x * x * s2 for x, s2 in zip(c, atom_var)) + raw_mean * raw_mean
            scales[v] = math.sqrt(second[0] / raw) if raw > 0 else 1.0
        c = [scales[v] * x for x in c]
        coeff[v] = c
        m = sum(x * mu for x, mu in zip(c, atom_mean))
        mean[v] = m
        second[v] = sum(x * x * s2 for x, s2 in zip(c, atom_var)) + m * m
    return ForwardMoments(
        graph, convention, activation, tuple(second), tuple(mean), tuple(scales),
        tuple(tuple(x) for x in coeff), tuple(atom_var), tuple(atom_mean),
    )


def stem_output(input_second_moment: float = 1.0, gain: float = 2.0, activation: str = "relu") -> tuple[float, float]:
    """(mean, second moment) of ``act(W x)`` for a He-initialised stem (``Var W = gain / fan_in``)."""
    pre = gain * input_second_moment
    return _MEAN[activation](pre), _SECOND[activation](pre)


def exact_node_scales(
    graph: ArchGraph,
    gains: Mapping[Edge, float] | None = None,
    **kwargs,
) -> tuple[float, ...]:
    """Fixed scalars ``alpha_v`` on node sums so that every live node keeps the input's second moment.

    Chosen in topological order in one pass: with the predecessors already scaled,
    ``alpha_v = sqrt(E[z_0^2] / E[raw z_v^2])``. Dead nodes (no signal) and node 0 keep 1.
    """
    kwargs["node_scales"] = "exact"
    return forward_moments(graph, gains, **kwargs).node_scales
