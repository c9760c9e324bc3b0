"""Forward second moments and covariances of every node, at infinite width (paper eq. 1, App. A).

Semantics (eq. 1): ``z_0 = x`` and, for ``v >= 1``, ``z_v = sum over incoming edges e = (u, v) of T_e(z_u)``:

* PARAM: ``T_e(z) = W_e sigma(z)``, entries of ``W_e`` i.i.d. ``N(0, C_e / fan_in)``, independent across edges
  (``C_e`` is the *gain*: ``Var W = C_e / fan``; for a width-preserving Linear or q x q conv, fan_in = fan_out);
* SKIP: ``T_e(z) = z``;
* POOL: ``T_e(z) = P_q z``, a spatial average over a ``q x q`` window (see :class:`PoolModel`);
* ZERO: nothing.

Write ``K[v][w] = E<z_v, z_w> / n`` (per-coordinate second moments and covariances, input of second moment
``s0 = K[0][0]``, symmetric about 0). Processing nodes in topological order:

1. **PARAM outputs are uncorrelated with everything computed before them.** For ``w < v``,
   ``E[(W_e sigma(z_u))_i z_w,i] = sum_j E[W_e,ij] E[sigma(z_u,j) z_w,i] = 0``, because ``W_e`` has mean zero and
   is independent of ``z_u`` and ``z_w`` (both depend only on edges into ancestors of ``v``'s predecessors).
   So only skip and pool edges carry covariance forward: ``K[v][w] = sum_{skip/pool e=(u,v)} a_e K[u][w]``.
2. **Two different PARAM edges into the same node are uncorrelated** (independent zero-mean weights), and
   a PARAM output is uncorrelated with a skip/pool term (same argument as 1). What remains of
   ``E|z_v|^2`` is each PARAM edge's own second moment, ``C_e E[sigma(z_u)^2] = C_e V(K[u][u])`` (eq. 10-11),
   plus the full covariance of the skip/pool part:
   ``K[v][v] = sum_PARAM C_e V(K[u][u]) + sum_{skip/pool e, e'} a_e a_e' K[u][u']``.
   The second sum is where skips correlate features: two skips from correlated nodes add their covariance
   twice, which the paper's eq. 11 (written for weighted edges only) does not have.

``V`` comes from :mod:`symbolic.gaussian`. With ReLU and rational gains every quantity is a rational number,
computed exactly with :class:`fractions.Fraction`; with symbols (gains ``C_u_v`` when no values are given,
pool factors ``rho_q``, the input moment) they are sympy expressions; GeLU with numeric gains evaluates its
derived closed form with mpmath at :data:`NUMERIC_DPS` digits (see :func:`domain_of`).

Validity: the mean recursion is exact at infinite width. At finite width, the cross terms of 1-2 vanish in
expectation exactly; ``E[relu(z)^2] = E[z^2]/2`` needs ``z`` symmetric, which holds exactly for a coordinate
fed only by parameterised edges and up to O(1/n) where a skip adds a feature to a parameterised output.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property, lru_cache
from typing import Any, Iterable, Mapping

import mpmath
import sympy as sp

from nni_archscale.errors import RuleError
from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind

from .gaussian import Activation, activation as get_activation, relu_dual_kernel, s as gaussian_s


@dataclass(frozen=True)
class PoolModel:
    """How a POOL edge acts on second moments.

    An average pool is a linear, spatially local operator, so its effect on a feature's second moment
    depends on the feature's spatial correlation, which a per-channel moment does not record. We model it as
    a scalar *amplitude* ``a_q`` (covariances scale by ``a_q``, second moments by ``a_q^2 = rho_q``):

    * ``"identity"`` (default): ``rho_q = 1``. Exact when features are constant over each ``q x q`` window
      (perfectly spatially correlated); it is also the authors' convention of counting pooling as a skip.
      An upper bound in general: averaging never increases a second moment (Jensen).
    * ``"symbolic"``: ``rho_q`` is a positive symbol ``rho_q`` per window size (results are expressions in it).
    * ``factors={q: rho}``: a given second-moment factor per window size, e.g. ``{3: Fraction(1, 9)}`` for
      white (spatially independent) features. Note: for white features the scalar model is only a bound on the
      cross terms (a white map's pooled copy has covariance ``1/q^2`` with the map, not ``1/q``).
    """

    mode: str = "identity"
    factors: Mapping[int, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("identity", "symbolic", "factors"):
            raise RuleError(
                f"unknown pool model {self.mode!r}; use 'identity', 'symbolic' or 'factors' (with factors={{q: rho}})"
            )

    def amplitude(self, q: int):
        if self.mode == "identity":
            return Fraction(1)
        if self.mode == "symbolic":
            return sp.sqrt(sp.Symbol(f"rho_{q}", positive=True))
        if q not in self.factors:
            raise RuleError(
                f"pool model has no second-moment factor for a {q}x{q} window; add factors={{{q}: ...}}"
            )
        rho = sp.nsimplify(self.factors[q])
        if not (rho.is_positive and rho <= 1):
            raise RuleError(f"pool factor for q={q} must be in (0, 1] (averaging cannot amplify), got {rho}")
        amp = sp.sqrt(rho)
        return Fraction(int(amp.p), int(amp.q)) if amp.is_Rational else amp

    @classmethod
    def parse(cls, spec: "PoolModel | str | Mapping[int, Any] | None") -> "PoolModel":
        if spec is None:
            return cls()
        if isinstance(spec, PoolModel):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        return cls("factors", dict(spec))


def edge_symbol(e: Edge) -> sp.Symbol:
    """The gain symbol ``C_u_v`` of edge ``u -> v``."""
    return sp.Symbol(f"C_{e.src}_{e.dst}", positive=True)


def gain_map(graph: ArchGraph, gains: Any = None) -> dict[tuple[int, int], Any]:
    """Gains of every parameterised edge, keyed by ``(src, dst)``.

    ``gains`` may be ``None`` (symbols ``C_u_v``), a mapping keyed by :class:`Edge` or ``(src, dst)``, or
    the output of :func:`nni_archscale.rules.paper.edge_init` (objects with ``.edge`` and ``.gain``).
    """
    out: dict[tuple[int, int], Any] = {}
    if gains is None:
        return {(e.src, e.dst): edge_symbol(e) for e in graph.parameterised_edges}
    if isinstance(gains, Mapping):
        items: Iterable = gains.items()
    else:
        items = ((g.edge, g.gain) for g in gains)
    for key, value in items:
        src, dst = (key.src, key.dst) if isinstance(key, Edge) else key
        out[(src, dst)] = value
    missing = [e.name for e in graph.parameterised_edges if (e.src, e.dst) not in out]
    if missing:
        raise RuleError(
            f"no gain given for parameterised edge(s) {', '.join(missing)}; give one per parameterised edge "
            "(or pass gains=None for symbols)"
        )
    return out


def tidy(x: sp.Expr) -> sp.Expr:
    """Cheap normal form: rational functions of the symbols are cancelled; a closed number (e.g. GeLU's
    nested arcsines) is left as it is, since ``simplify`` on it is slow and gains nothing exact."""
    x = sp.sympify(x)
    if x.free_symbols:
        return sp.cancel(sp.expand(x))
    return x


def _is_exact_number(x: Any) -> bool:
    return isinstance(x, (int, Fraction)) and not isinstance(x, bool)


def _to_sympy(x: Any) -> sp.Expr:
    if isinstance(x, Fraction):
        return sp.Rational(x.numerator, x.denominator)
    return sp.sympify(x)


def _to_exact(x: Any) -> Fraction | None:
    """A Fraction for an int, Fraction or sympy Rational; None otherwise."""
    if _is_exact_number(x):
        return Fraction(x)
    if isinstance(x, sp.Basic) and x.is_Rational:
        return Fraction(int(x.p), int(x.q))
    return None


#: Decimal digits of the ``numeric`` domain (closed-form GeLU moments evaluated with mpmath).
NUMERIC_DPS = 50


def domain_of(act: Activation, values: Iterable[Any]) -> str:
    """``exact`` (Fractions), ``numeric`` (mpmath, NUMERIC_DPS digits) or ``symbolic`` (sympy).

    Exact when the activation is homogeneous (ReLU) and every number is rational; numeric when every
    input is a number but some is irrational or the activation is GeLU (its nested closed forms grow without
    bound and sympy's expansion of them is very slow); symbolic when a symbol appears.
    """
    vals = list(values)
    if any(isinstance(v, sp.Basic) and v.free_symbols for v in vals):
        return "symbolic"
    if act.homogeneous_factor is not None and all(_to_exact(v) is not None for v in vals):
        return "exact"
    return "numeric"


def convert(x: Any, domain: str) -> Any:
    """``x`` as a value of ``domain``."""
    if domain == "exact":
        value = _to_exact(x)
        if value is None:
            raise RuleError(f"{x!r} is not a rational number")
        return value
    if domain == "numeric":
        with mpmath.workdps(NUMERIC_DPS):
            if isinstance(x, Fraction):
                return mpmath.mpf(x.numerator) / x.denominator
            if isinstance(x, mpmath.mpf):
                return x
            return mpmath.mpf(sp.N(sp.sympify(x), NUMERIC_DPS + 10))
    return _to_sympy(x)


@lru_cache(maxsize=None)
def _numeric_V(act_name: str):
    return sp.lambdify(gaussian_s, get_activation(act_name).second_moment_expr, "mpmath")


def moment_map(act: Activation, domain: str):
    """``V`` on values of ``domain``."""
    if domain == "exact":
        return act.second_moment
    if domain == "numeric":
        f = _numeric_V(act.name)

        def V(x):
            with mpmath.workdps(NUMERIC_DPS):
                return f(x) if x != 0 else mpmath.mpf(0)

        return V
    return lambda x: act.second_moment(sp.sympify(x))


def is_zero(x: Any) -> bool:
    """Exact zero test for the exact and symbolic domains; |x| < 10^-(NUMERIC_DPS - 10) for numeric."""
    if isinstance(x, mpmath.mpf):
        return abs(x) < mpmath.mpf(10) ** -(NUMERIC_DPS - 10)
    if isinstance(x, sp.Basic):
        return tidy(x).is_zero is True
    return x == 0


@dataclass(frozen=True)
class ForwardMoments:
    """``K[v][w]``: per-coordinate covariances of nodes ``v`` and ``w`` (``K[v][v]`` the second moments)."""

    graph: ArchGraph
    activation: str
    pool: PoolModel
    input_moment: Any
    gains: dict
    K: tuple[tuple[Any, ...], ...]
    domain: str  # "exact" (Fractions), "numeric" (mpmath) or "symbolic" (sympy)

    @property
    def exact(self) -> bool:
        return self.domain == "exact"

    @property
    def second_moments(self) -> tuple[Any, ...]:
        return tuple(self.K[v][v] for v in range(self.graph.num_nodes))

    @cached_property
    def ratios(self) -> tuple[Any, ...]:
        """``E|z_v|^2 / E|z_0|^2`` for every node, in the domain of the computation."""
        s0 = self.K[0][0]
        if self.domain == "symbolic":
            return tuple(tidy(sp.sympify(k) / s0) for k in self.second_moments)
        if self.domain == "numeric":
            with mpmath.workdps(NUMERIC_DPS):
                return tuple(k / s0 for k in self.second_moments)
        return tuple(k / s0 for k in self.second_moments)

    def correlation(self, v: int, w: int) -> float | None:
        """Correlation coefficient of nodes ``v`` and ``w`` (None if either is identically zero)."""
        a, b, c = self.K[v][v], self.K[w][w], self.K[v][w]
        if is_zero(a) or is_zero(b):
            return None
        return float(c) / (float(a) * float(b)) ** 0.5


def second_moments(
    graph: ArchGraph,
    gains: Any = None,
    activation: str | Activation = "relu",
    pool: PoolModel | str | Mapping[int, Any] | None = None,
    input_moment: Any = 1,
) -> ForwardMoments:
    """Second moments and covariances of every node of ``graph`` (module docstring for the derivation)."""
    act = activation if isinstance(activation, Activation) else get_activation(activation)
    pool = PoolModel.parse(pool)
    gmap = gain_map(graph, gains)
    n = graph.num_nodes
    amps = {q: pool.amplitude(q) for q in {e.kernel_size for e in graph.active_edges if e.kind is EdgeKind.POOL}}
    domain = domain_of(act, [input_moment, *gmap.values(), *amps.values()])
    gm = {k: convert(v, domain) for k, v in gmap.items()}
    amps = {q: convert(a, domain) for q, a in amps.items()}
    s0: Any = convert(input_moment, domain)
    zero: Any = convert(0, domain)
    one: Any = convert(1, domain)
    V = moment_map(act, domain)
    if domain != "symbolic" and not s0 > 0:
        raise RuleError(f"the input's second moment must be positive, got {input_moment}")

    with mpmath.workdps(NUMERIC_DPS) if domain == "numeric" else nullcontext():
        K = _recurse(graph, gm, amps, s0, zero, one, V, domain)
    return ForwardMoments(graph, act.name, pool, input_moment, gmap, tuple(tuple(r) for r in K), domain)


def _recurse(graph: ArchGraph, gm: dict, amps: dict, s0: Any, zero: Any, one: Any, V, domain: str) -> list:
    n = graph.num_nodes
    K = [[zero] * n for _ in range(n)]
    K[0][0] = s0
    for v in range(1, n):
        linear = []  # (amplitude, source) of skip and pool edges
        param = []  # (gain, source)
        for e in graph.in_edges[v]:
            if e.kind is EdgeKind.PARAM:
                param.append((gm[(e.src, e.dst)], e.src))
            elif e.kind is EdgeKind.SKIP:
                linear.append((one, e.src))
            else:  # POOL
                linear.append((amps[e.kernel_size], e.src))
        for w in range(v):
            c = zero
            for a, u in linear:
                c = c + a * K[u][w]
            if domain == "symbolic":
                c = sp.expand(c)
            K[v][w] = K[w][v] = c
        total = zero
        for g, u in param:
            total = total + g * V(K[u][u])
        for a, u in linear:
            for b, u2 in linear:
                total = total + a * b * K[u][u2]
        K[v][v] = sp.expand(total) if domain == "symbolic" else total
    return K


def two_input_kernel(
    graph: ArchGraph,
    gains: Any = None,
    input_moments: tuple[Any, Any] = (1, 1),
    input_covariance: Any = sp.Rational(1, 2),
    pool: PoolModel | str | Mapping[int, Any] | None = None,
) -> tuple[tuple[Any, ...], ...]:
    """Covariance ``E<z_v(x), z_v(x')>/n`` of every node between two inputs ``x, x'`` (ReLU, infinite width).

    The same edge applies the *same* weights to both inputs, so a PARAM edge contributes
    ``C_e E[relu(z_u(x)) relu(z_u(x'))]``, the arc-cosine kernel (:func:`symbolic.gaussian.relu_dual_kernel`)
    evaluated at the source's two second moments and cross-covariance. Skip and pool edges pass cross-input,
    cross-node covariances on linearly, as in :func:`second_moments`. Returns the per-node diagonal
    ``(k(x, x), k(x', x'), k(x, x'))`` triples.
    """
    kernel, (a, b, c) = relu_dual_kernel()
    pool = PoolModel.parse(pool)
    gm = {k: _to_sympy(v) for k, v in gain_map(graph, gains).items()}
    n = graph.num_nodes
    s1, s2 = (_to_sympy(m) for m in input_moments)
    rho = _to_sympy(input_covariance)
    if rho**2 > s1 * s2:
        raise RuleError(
            f"input covariance {rho} is impossible for second moments {s1}, {s2}: need cov^2 <= product"
        )
    K1 = second_moments(graph, gm, "relu", pool, s1).K
    K2 = second_moments(graph, gm, "relu", pool, s2).K
    X = [[sp.Integer(0)] * n for _ in range(n)]  # X[v][w] = E<z_v(x), z_w(x')>/n
    X[0][0] = rho
    for v in range(1, n):
        linear = []
        param = []
        for e in graph.in_edges[v]:
            if e.kind is EdgeKind.PARAM:
                param.append((gm[(e.src, e.dst)], e.src))
            elif e.kind is EdgeKind.SKIP:
                linear.append((sp.Integer(1), e.src))
            else:
                linear.append((_to_sympy(pool.amplitude(e.kernel_size)), e.src))
        for w in range(v):
            X[v][w] = sp.expand(sum((amp * X[u][w] for amp, u in linear), sp.Integer(0)))
            X[w][v] = sp.expand(sum((amp * X[w][u] for amp, u in linear), sp.Integer(0)))
        total = sp.Integer(0)
        for g, u in param:
            ka, kb, kc = (sp.sympify(K1[u][u]), sp.sympify(K2[u][u]), X[u][u])
            if ka == 0 or kb == 0:
                continue  # relu(0) = 0 on one side: no covariance
            total += g * kernel.subs({a: ka, b: kb, c: kc}, simultaneous=True)
        for amp, u in linear:
            for amp2, u2 in linear:
                total += amp * amp2 * X[u][u2]
        X[v][v] = total
    return tuple((sp.sympify(K1[v][v]), sp.sympify(K2[v][v]), X[v][v]) for v in range(n))
