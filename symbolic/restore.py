"""Which per-edge gains keep every node at the input's second moment (paper eq. 3), and where none can.

Claim (derived here, not in the paper). Fix the activation and the input moment ``s0``. Write every node
as a sum of independent zero-mean *fields*: the input ``x``, and one field ``G_e = W_e sigma(z_u)`` per
parameterised edge ``e = (u, v)``, entering the graph at ``v``. Skip and pool edges only copy fields
onward, so ``z_w = sum_F A[w, F] F`` with ``A[w, G_e]`` the (pool-weighted) number of skip/pool-only paths
from ``v`` to ``w`` - *the same for every parameterised edge into ``v``*. By :mod:`symbolic.moments`,

    E|z_w|^2 = sum_F A[w, F]^2 E|F|^2,      E|G_e|^2 = C_e V(E|z_u|^2).

If every earlier node is at ``s0``, node ``v`` needs ``sum_{live PARAM e into v} C_e V(s0) = s0 - Q_v``, where
``Q_v`` is the second moment of ``v``'s skip/pool part, fixed by the earlier nodes. Because all fields
entering at ``v`` have the same downstream coefficients, only the *sum* ``t_v = sum_e C_e`` matters
downstream. So, node by node in topological order:

* ``t_v = (s0 - Q_v) / V(s0)`` is **forced** (unique); the split among ``v``'s parameterised edges is free.
  This module picks the even split ``C_e = t_v / m_v`` (``m_v`` = parameterised edges into ``v`` from nodes
  reachable from the input). With ReLU: ``C_e = 2 (1 - Q_v/s0) / m_v``; without skips this is the paper's
  ``2 / d_in(v)`` (eq. 12) with ``d_in`` counting only live edges.
* ``Q_v > s0``: **no gains can restore equality** - the skips alone exceed the budget (by ``Q_v / s0``).
* ``Q_v < s0`` and ``m_v = 0``: none can either - skips/pools alone fall short and nothing can make it up.
* ``Q_v = s0`` with ``m_v > 0``: only by switching the parameterised edges off (``C_e = 0``).
* a node no path from the input reaches is identically zero (every rule, every gain).

Since ``t_v`` is forced whenever all earlier nodes are preserved, an infeasible node proves that *no*
assignment preserves every node of the graph. After an infeasible node the construction continues with the
gains that come closest (``C_e = 0`` on an over-full node), so later nodes are still analysed.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping

import mpmath
import sympy as sp

from nni_archscale.errors import RuleError
from nni_archscale.core.graph import ArchGraph, EdgeKind

from .gaussian import Activation, activation as get_activation
from .moments import NUMERIC_DPS, PoolModel, convert, domain_of, is_zero, moment_map, second_moments, tidy

#: Per-node outcomes of :func:`restoring_gains`.
STATUSES = {
    "input": "the input node",
    "ok": "restorable: the parameterised edges into it share the remaining budget",
    "skips-exact": "preserved by its skip/pool edges alone",
    "zero-variance": "preserved only if its parameterised edges get variance 0 (switched off)",
    "over": "not restorable: skip/pool edges alone exceed the input's second moment",
    "under": "not restorable: skip/pool edges alone fall short and no parameterised edge can make it up",
    "dead": "no path from the input: identically zero under every rule",
}


@dataclass(frozen=True)
class NodeRestoration:
    node: int
    status: str
    skip_moment_ratio: Any  # Q_v / s0
    total_gain: Any  # t_v (None where not applicable)
    live_param_edges: int

    @property
    def feasible(self) -> bool:
        return self.status in ("input", "ok", "skips-exact", "zero-variance", "dead")


@dataclass(frozen=True)
class Restoration:
    """Result of :func:`restoring_gains`: gains per parameterised edge (None = irrelevant) and per-node status."""

    graph: ArchGraph
    activation: str
    gains: dict[tuple[int, int], Any]
    nodes: tuple[NodeRestoration, ...]

    @property
    def feasible(self) -> bool:
        """True when every node that carries signal can be held at the input's second moment."""
        return all(n.feasible for n in self.nodes)

    @property
    def infeasible_nodes(self) -> tuple[NodeRestoration, ...]:
        return tuple(n for n in self.nodes if not n.feasible)

    @property
    def dead_nodes(self) -> tuple[int, ...]:
        return tuple(n.node for n in self.nodes if n.status == "dead")


def live_nodes(graph: ArchGraph) -> tuple[bool, ...]:
    """Which nodes some path from the input reaches (through active edges)."""
    live = [False] * graph.num_nodes
    live[0] = True
    for v in range(1, graph.num_nodes):
        live[v] = any(live[e.src] for e in graph.in_edges[v])
    return tuple(live)


def restoring_gains(
    graph: ArchGraph,
    activation: str | Activation = "relu",
    pool: PoolModel | str | Mapping[int, Any] | None = None,
    input_moment: Any = 1,
) -> Restoration:
    """Derive gains that keep every node at the input's second moment, or say where none can (docstring)."""
    act = activation if isinstance(activation, Activation) else get_activation(activation)
    pool = PoolModel.parse(pool)
    live = live_nodes(graph)
    amps = [pool.amplitude(q) for q in {e.kernel_size for e in graph.active_edges if e.kind is EdgeKind.POOL}]
    domain = domain_of(act, [input_moment, *amps])
    with mpmath.workdps(NUMERIC_DPS) if domain == "numeric" else nullcontext():
        return _restore(graph, act, pool, input_moment, live, domain)


def _restore(graph, act, pool, input_moment, live, domain) -> Restoration:
    s0 = convert(input_moment, domain)
    V = moment_map(act, domain)
    Vs0 = V(s0)
    zero = convert(0, domain)
    norm = tidy if domain == "symbolic" else (lambda x: x)

    gains: dict[tuple[int, int], Any] = {}
    nodes = [NodeRestoration(0, "input", convert(1, domain), None, 0)]
    # Grow the graph one node at a time; the moments of the prefix are final once its gains are fixed.
    # Placeholder gain 0 for the node being solved isolates its skip/pool part Q_v.
    for v in range(1, graph.num_nodes):
        in_param = [e for e in graph.in_edges[v] if e.kind is EdgeKind.PARAM]
        for e in in_param:
            gains[(e.src, e.dst)] = zero
        trial = second_moments(_prefix(graph, v), _gains_upto(graph, gains, v, zero), act, pool, input_moment)
        Q = trial.K[v][v]
        ratio = norm(Q / s0)
        if not live[v]:
            for e in in_param:
                gains[(e.src, e.dst)] = None
            nodes.append(NodeRestoration(v, "dead", ratio, None, 0))
            continue
        live_param = [e for e in in_param if live[e.src]]
        for e in in_param:
            if not live[e.src]:
                gains[(e.src, e.dst)] = None  # its field is identically zero: any gain
        need = s0 - Q
        sign = _sign(need)
        if sign < 0:
            status, total = "over", zero
        elif sign == 0:
            status, total = ("zero-variance" if live_param else "skips-exact"), zero
        elif not live_param:
            status, total = "under", None
        else:
            status, total = "ok", norm(need / Vs0)
        if total is not None:
            for e in live_param:
                # even split of the contribution; with every earlier node at s0 this is C_e = t_v / m_v
                share = need / len(live_param)
                gains[(e.src, e.dst)] = norm(share / V(trial.K[e.src][e.src])) if sign > 0 else zero
        nodes.append(NodeRestoration(v, status, ratio, total, len(live_param)))
    return Restoration(graph, act.name, gains, tuple(nodes))


def _sign(x: Any) -> int:
    if isinstance(x, Fraction):
        return (x > 0) - (x < 0)
    if isinstance(x, mpmath.mpf):
        return 0 if is_zero(x) else (1 if x > 0 else -1)
    x = tidy(x)
    if x.is_zero:
        return 0
    if x.is_positive:
        return 1
    if x.is_negative:
        return -1
    raise RuleError(
        f"cannot decide the sign of {x} (it depends on {sorted(map(str, x.free_symbols))}); "
        "give numbers for those symbols (e.g. pool='identity' or pool factors) to analyse restorability"
    )


def _prefix(graph: ArchGraph, v: int) -> ArchGraph:
    """The subgraph on nodes ``0..v`` (every edge into them)."""
    return ArchGraph(v + 1, [e for e in graph.edges if e.dst <= v])


def _gains_upto(graph: ArchGraph, gains: dict, v: int, zero: Any) -> dict:
    return {
        (e.src, e.dst): (zero if gains.get((e.src, e.dst)) is None else gains[(e.src, e.dst)])
        for e in graph.parameterised_edges
        if e.dst <= v
    }
