"""An init's variances substituted into the forward moments: which nodes drift, and by what exact factor.

:func:`check_rule` takes the gains a rule of :mod:`nni_archscale.rules.paper` gives a graph (``edge_init``:
``Var W = gain / fan``, so the gain is the ``C_e`` of eq. 2), computes every node's ratio
``E|z_v|^2 / E|z_0|^2`` with :func:`symbolic.moments.second_moments`, and sets it beside what
:func:`symbolic.restore.restoring_gains` says is possible. The paper's goal (eq. 3) is ratio 1 at every node.

Why a rule can drift: eq. 4 divides by the in-degree as if every incoming edge were a weighted edge whose
output is independent of the others (App. A, eq. 11). A skip edge instead passes its source on with gain 1
and with its covariances, so a node with skips gets more than its share (a ResNet block ``z + W relu(z)``
under eq. 4 gets ``1 + (2/2)/2 = 3/2``), and an edge from a node that no path from the input reaches
counts in the in-degree but carries nothing (a shortfall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Mapping

import sympy as sp

from nni_archscale.errors import RuleError
from nni_archscale.core.graph import ArchGraph
from nni_archscale.rules.paper import edge_init

from .gaussian import Activation
from .moments import ForwardMoments, PoolModel, is_zero, second_moments
from .restore import Restoration, live_nodes, restoring_gains

#: A rule: graph -> gains per parameterised edge (anything :func:`symbolic.moments.gain_map` accepts).
GainRule = Callable[[ArchGraph], Any]


@dataclass(frozen=True)
class NodeDrift:
    node: int
    ratio: Any  # exact Fraction or sympy expression
    status: str  # "preserved", "drifts" or "dead"


@dataclass(frozen=True)
class RuleCheck:
    graph: ArchGraph
    rule: str
    moments: ForwardMoments
    nodes: tuple[NodeDrift, ...]
    restoration: Restoration | None  # None when restorability cannot be decided (see ``undecided``)
    undecided: str | None = None

    @property
    def preserved(self) -> bool:
        """True when every node some input path reaches keeps the input's second moment."""
        return all(n.status != "drifts" for n in self.nodes)

    @property
    def drifting(self) -> tuple[NodeDrift, ...]:
        return tuple(n for n in self.nodes if n.status == "drifts")

    @property
    def dead(self) -> tuple[int, ...]:
        return tuple(n.node for n in self.nodes if n.status == "dead")

    def max_drift(self) -> Any:
        """The drifting ratio farthest from 1 in log scale (None when nothing drifts)."""
        best, score = None, -1.0
        for n in self.drifting:
            if isinstance(n.ratio, sp.Basic) and n.ratio.free_symbols:
                best = n.ratio if best is None else best  # symbolic: reported when nothing numeric drifts
                continue
            r = float(n.ratio)
            value = abs(math.log(r)) if r > 0 else float("inf")
            if value > score:
                best, score = n.ratio, value
        return best


def init_gains(init: str, context: str = "dag") -> GainRule:
    """The gains of a named init (``paper``, ``release``, ``standard``) as a :data:`GainRule`."""
    return lambda graph: edge_init(graph, init, context)


def check_rule(
    graph: ArchGraph,
    rule: str | GainRule = "paper",
    context: str = "dag",
    activation: str | Activation = "relu",
    pool: PoolModel | str | Mapping[int, Any] | None = None,
    input_moment: Any = 1,
) -> RuleCheck:
    """Per-node exact drift of a rule (an init's name, or a function graph -> gains) on ``graph``."""
    name = rule if isinstance(rule, str) else getattr(rule, "__name__", "custom")
    gains = (init_gains(rule, context) if isinstance(rule, str) else rule)(graph)
    fm = second_moments(graph, gains, activation, pool, input_moment)
    live = live_nodes(graph)
    nodes = []
    for v, r in enumerate(fm.ratios):
        if not live[v]:
            status = "dead"
        elif _is_one(r):
            status = "preserved"
        else:
            status = "drifts"
        nodes.append(NodeDrift(v, r, status))
    try:
        restoration = restoring_gains(graph, activation, pool, input_moment)
        undecided = None
    except RuleError as exc:  # e.g. a symbolic pool factor leaves a sign open
        restoration, undecided = None, str(exc)
    return RuleCheck(graph, name, fm, tuple(nodes), restoration, undecided)


def _is_one(r: Any) -> bool:
    if isinstance(r, (int, Fraction)):
        return r == 1
    return is_zero(r - 1)
