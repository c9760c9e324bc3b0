"""Verify one graph: the symbolic derivations against the numeric implementation, with a canonical cache.

For a graph and an init (``paper``, ``release`` or ``standard``), :func:`verify_graph` runs three checks, each
PASS or FAIL:

``path_statistics``
    :func:`nni_archscale.core.paths.path_statistics` (binomial moment recursion) against the path-counting
    polynomials of :mod:`symbolic.pathsums`, at every node.
``init_variance``
    every gain of :func:`nni_archscale.rules.paper.edge_init` against the init's derivation. For ``paper``
    the gain is derived from App. A eq. 11 (solved by sympy: ``sum over d_in incoming edges of
    V(s)/s * C = 1``) *and* the App. A property is checked on the graph read literally as eq. 1 (every
    active edge weighted): each node's second moment must be the mean of its sources'. ``release`` is held
    to its documented formula ``2 / max(d_in(source), 1)``, ``standard`` to He's ``1 / (V(s)/s) = 2``.
``learning_rate``
    :func:`nni_archscale.rules.paper.learning_rate` (the graph rule, counting paths as the init's preset does:
    the release's for its init, the paper's otherwise) against the maximal-update root of :mod:`symbolic.maxupdate`.

Beside the checks it reports, exactly, every node's second-moment ratio under the init's variances
(:mod:`symbolic.rule_check`) and whether / how they can be restored (:mod:`symbolic.restore`). Drift is
a finding about the rule, not an implementation mismatch, so it does not fail a graph unless asked.

:class:`Verifier` caches results by canonical form: isomorphic graphs (``ArchGraph.__eq__``) share one
computation, and node-level results are mapped back through the canonical labelling.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy as sp

from nni_archscale.core.canonical import canonical_labelling
from nni_archscale.core.formats import to_text
from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind
from nni_archscale.core.paths import path_statistics
from nni_archscale.rules.paper import edge_init
from nni_archscale.rules.presets import Init

from .gaussian import activation as get_activation, s
from .maxupdate import MaxUpdate, max_update
from .moments import PoolModel, second_moments
from .pathsums import path_polynomial, polynomial_power_sums
from .rule_check import RuleCheck, check_rule


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class GraphVerification:
    """Everything :func:`verify_graph` found for one graph."""

    graph: ArchGraph
    init: str
    context: str
    checks: tuple[Check, ...]
    path_moments: tuple[int, ...]
    drift: RuleCheck
    update: MaxUpdate
    cached: bool = False
    node_map: tuple[int, ...] | None = None  # node v of `graph` is node node_map[v] of the analysed graph

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def num_paths(self) -> int:
        return self.path_moments[0]

    def _node(self, v: int) -> int:
        return v if self.node_map is None else self.node_map[v]

    def ratio(self, v: int) -> Any:
        return self.drift.nodes[self._node(v)].ratio

    def node_status(self, v: int) -> str:
        return self.drift.nodes[self._node(v)].status

    def to_record(self) -> dict[str, Any]:
        """JSON-ready dict (the contract of ``archscale verify --json``)."""
        g = self.graph
        rest = self.drift.restoration
        inv = {}
        if self.node_map is not None:
            inv = {a: v for v, a in enumerate(self.node_map)}
        nodes = []
        for v in range(g.num_nodes):
            a = self._node(v)
            r = self.drift.nodes[a].ratio
            rn = rest.nodes[a] if rest is not None else None
            nodes.append(
                {
                    "node": v,
                    "in_degree": g.in_degree[v],
                    "second_moment_ratio": _exact_str(r),
                    "second_moment_ratio_float": _float(r),
                    "status": self.drift.nodes[a].status,
                    "restoration": rn.status if rn else "undecided",
                    "skip_moment_ratio": _exact_str(rn.skip_moment_ratio) if rn else None,
                    "restoring_total_gain": None if rn is None or rn.total_gain is None else _exact_str(rn.total_gain),
                }
            )
        gains = {}
        for (src, dst), value in (rest.gains.items() if rest is not None else ()):
            u, w = (inv.get(src, src), inv.get(dst, dst)) if inv else (src, dst)
            gains[f"{u}->{w}"] = None if value is None else _exact_str(value)
        up = self.update
        return {
            "graph": to_text(g),
            "init": self.init,
            "context": self.context,
            "activation": self.drift.moments.activation,
            "status": "PASS" if self.ok else "FAIL",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
            "num_paths": self.num_paths,
            "path_moments": list(self.path_moments),
            "sum_L3": up.power_sum,
            "kernel_size": up.kernel_size,
            "nodes": nodes,
            "moments_preserved": self.drift.preserved,
            "max_drift": None if self.drift.max_drift() is None else _exact_str(self.drift.max_drift()),
            "dead_nodes": sorted(inv.get(a, a) if inv else a for a in self.drift.dead),
            "restorable": None if rest is None else rest.feasible,
            "restorability_undecided": self.drift.undecided,
            "restoring_gains": dict(sorted(gains.items())),
            "learning_rate": {
                "rule": up.rule_value,
                "update": str(up.update),
                "eta_star": None if up.eta is None else str(up.eta),
                "constant": up.constant_formula,
                "implied_constant": up.implied_constant,
                "expected_constant": up.expected_constant,
            },
            "cached": self.cached,
        }


def _exact_str(x: Any) -> str:
    if isinstance(x, (int, Fraction)):
        return str(x)
    return str(sp.nsimplify(x) if isinstance(x, float) else x)


def _float(x: Any) -> float | None:
    """A float, or None for an expression that still has symbols (e.g. a symbolic pool factor)."""
    if isinstance(x, sp.Basic) and x.free_symbols:
        return None
    return float(x)


# --------------------------------------------------------------------------- the checks
def check_path_statistics(graph: ArchGraph) -> Check:
    numeric = path_statistics(graph).moments
    polys = path_polynomial(graph)
    for v in range(graph.num_nodes):
        symbolic = polynomial_power_sums(polys[v], 3)
        if tuple(numeric[v]) != symbolic:
            return Check("path_statistics", False,
                         f"node {v}: path_statistics gives {tuple(numeric[v])}, path polynomial gives {symbolic}")
    return Check("path_statistics", True,
                 f"moments of all {graph.num_nodes} nodes agree; output (S0..S3) = {tuple(numeric[-1])}")


@lru_cache(maxsize=None)
def app_a_gain(act_name: str = "relu") -> tuple[sp.Expr, sp.Symbol]:
    """Solve App. A eq. 11 for one gain shared by ``d`` incoming edges: ``d * C * V(s)/s = 1`` (eq. 12)."""
    d = sp.Symbol("d", positive=True, integer=True)
    C = sp.Symbol("C", positive=True)
    factor = sp.simplify(get_activation(act_name).second_moment_expr / s)
    (root,) = sp.solve(sp.Eq(d * C * factor, 1), C)
    return root, d


def expected_gain(graph: ArchGraph, e: Edge, init: str) -> Fraction:
    """The gain the init's derivation/specification prescribes for edge ``e`` (ReLU, like the rules):
    eq. 12's root at ``d = d_in(target)`` for ``paper``, at ``d = max(d_in(source), 1)`` for ``release``
    (the authors' code), at ``d = 1`` (He) for ``standard``."""
    if init == "paper":
        return _gain_at(graph.in_degree[e.dst])
    if init == "release":
        return _gain_at(max(graph.in_degree[e.src], 1))
    return _gain_at(1)


@lru_cache(maxsize=None)
def _gain_at(degree: int) -> Fraction:
    root, d = app_a_gain("relu")
    value = sp.nsimplify(root.subs(d, degree))
    return Fraction(int(value.p), int(value.q))


def all_weighted(graph: ArchGraph) -> ArchGraph:
    """The graph read literally as eq. 1: every active edge a weighted (Linear + ReLU) edge."""
    return ArchGraph(graph.num_nodes, [Edge(e.src, e.dst, EdgeKind.PARAM, e.kernel_size) for e in graph.active_edges])


def check_init(graph: ArchGraph, init: str, context: str, gains_fn=None) -> Check:
    """Gains of the rule (``gains_fn(graph) -> edge_init-like``; default the init's) against the derivation."""
    gains_fn = gains_fn or (lambda g: edge_init(g, init, context))
    given = {(i.edge.src, i.edge.dst): Fraction(i.gain) for i in gains_fn(graph)}
    for e in graph.parameterised_edges:
        want = expected_gain(graph, e, init)
        got = given.get((e.src, e.dst))
        if got != want:
            return Check("init_variance", False, f"edge {e.name}: rule gain {got}, derivation gives {want}")
    if init != "paper":
        return Check("init_variance", True,
                     f"{len(given)} gain(s) match the {init} formula")
    # App. A on the literal eq. 1 graph: E|z_v|^2 must be the mean of the sources' moments
    lit = all_weighted(graph)
    fm = second_moments(lit, {(i.edge.src, i.edge.dst): i.gain for i in gains_fn(lit)}, "relu")
    for v in range(1, lit.num_nodes):
        ins = lit.in_edges[v]
        if not ins:
            continue
        mean = sum((fm.K[e.src][e.src] for e in ins), Fraction(0)) / len(ins)
        if fm.K[v][v] != mean:
            return Check("init_variance", False,
                         f"App. A: with every edge weighted, node {v} has moment {fm.K[v][v]}, "
                         f"not the mean {mean} of its sources")
    return Check("init_variance", True,
                 f"{len(given)} gain(s) = 2/d_in(target) (App. A eq. 12), and eq. 11 holds on the all-weighted graph")


def check_learning_rate(update: MaxUpdate) -> Check:
    return Check("learning_rate", update.matches, update.detail)


# --------------------------------------------------------------------------- one graph
def verify_graph(
    graph: ArchGraph,
    init: str = "paper",
    context: str = "dag",
    base_lr: float = 1.0,
    activation: str = "relu",
    pool: PoolModel | str | None = None,
) -> GraphVerification:
    """Run every check on ``graph`` and report drift and restorability (module docstring)."""
    checks = [check_path_statistics(graph), check_init(graph, init, context)]
    update = max_update(graph, Init.of(init).preset.name, context, base_lr)
    checks.append(check_learning_rate(update))
    drift = check_rule(graph, init, context, activation, pool)
    moments = path_statistics(graph).output
    return GraphVerification(graph, init, context, tuple(checks), tuple(moments), drift, update)


@dataclass
class Verifier:
    """:func:`verify_graph` with a cache keyed by canonical form (isomorphic graphs are verified once)."""

    init: str = "paper"
    context: str = "dag"
    base_lr: float = 1.0
    activation: str = "relu"
    pool: Any = None
    use_cache: bool = True
    _cache: dict = field(default_factory=dict, repr=False)
    hits: int = 0
    misses: int = 0

    def verify(self, graph: ArchGraph) -> GraphVerification:
        if not self.use_cache:
            self.misses += 1
            return verify_graph(graph, self.init, self.context, self.base_lr, self.activation, self.pool)
        order = canonical_labelling(graph)
        position = [0] * graph.num_nodes
        for i, v in enumerate(order):
            position[v] = i
        key = (graph.num_nodes, tuple(sorted((position[e.src], position[e.dst]) + e.label for e in graph.active_edges)))
        hit = key in self._cache
        if hit:
            self.hits += 1
            result = self._cache[key]
        else:
            self.misses += 1
            n, edges = key
            canon = ArchGraph(n, (Edge(a, b, EdgeKind(k), q) for a, b, k, q in edges))
            result = verify_graph(canon, self.init, self.context, self.base_lr, self.activation, self.pool)
            self._cache[key] = result
        return replace(result, graph=graph, cached=hit, node_map=tuple(position))

    @property
    def classes(self) -> int:
        return len(self._cache)

