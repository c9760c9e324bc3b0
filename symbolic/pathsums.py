"""Sums over paths of L_p^k in closed form, through path-counting polynomials.

For a graph and a node ``v`` let ``G_v(t) = sum over input-to-v paths p of t^(k_p)``, ``k_p`` the number of
parameterised edges on ``p``. It satisfies ``G_0 = 1`` and ``G_v = sum_{e=(u,v)} t^[e is PARAM] G_u``
(equivalently ``G = [(I - M(t))^-1]_{0,v}`` with ``M_uv = t`` for a parameterised edge and ``1`` for a skip or
pool, a nilpotent matrix). Its coefficients are the exact depth distribution of the paths, and

    sum_p (k_p + a)^j = [(t d/dt)^j (t^a G(t))]_{t=1}.

This is a different computation from the binomial moment recursion of :mod:`nni_archscale.core.paths` (it
carries the whole distribution, not four moments), which is what makes it a check.

Blocks in series multiply their polynomials (a path through the chain picks one path in every block),
so families come out in closed form by differentiating symbolically:

* a chain of ``L`` parameterised layers: ``G = t^L``, so ``sum_p L_p^j = L^j`` (App. D);
* ``N`` stacked copies of a cell with polynomial ``g``: ``G = g(t)^N``; the moments are
  ``P^N`` times a polynomial of degree ``j`` in ``N`` (``P = g(1)`` the cell's path count);
* the NAS-Bench-201 macro network (stem, 3 stages of ``N`` cells, 2 reductions, classifier):
  ``G = t * g^N * r * g^N * r * g^N * t`` with ``r(t) = t + t^2`` the ResNet reduction block.

Equivalently the moment vector ``(S_0..S_3)`` passes through a cell by the fixed lower-triangular map
``T[j][i] = C(j, i) S_(j-i)(cell)`` (:func:`nni_archscale.core.paths.compose_moments`), so ``N`` copies apply
``T^N = sum_i C(N, i) P^(N-i) D^i`` with ``D = T - P I`` nilpotent; :func:`stacked_moments_by_matrix` uses this
route, and the tests hold the two routes to each other.
"""

from __future__ import annotations

from math import comb
from typing import Sequence

import sympy as sp

from nni_archscale.core.graph import ArchGraph, EdgeKind
from nni_archscale.core.networks import nb201_network

t = sp.Symbol("t", positive=True)
N = sp.Symbol("N", positive=True, integer=True)
L = sp.Symbol("L", positive=True, integer=True)

Coefficients = tuple[int, ...]


def path_polynomial(graph: ArchGraph) -> tuple[Coefficients, ...]:
    """``G_v(t)`` for every node, as integer coefficient tuples (index k = paths with k parameterised edges)."""
    polys: list[list[int]] = [[] for _ in range(graph.num_nodes)]
    polys[0] = [1]
    for v in range(1, graph.num_nodes):
        acc: list[int] = []
        for e in graph.in_edges[v]:
            src = polys[e.src]
            if not src:
                continue
            shift = 1 if e.kind is EdgeKind.PARAM else 0
            need = len(src) + shift
            if len(acc) < need:
                acc.extend([0] * (need - len(acc)))
            for k, c in enumerate(src):
                acc[k + shift] += c
        polys[v] = acc
    return tuple(tuple(p) for p in polys)


def as_expr(coefficients: Sequence[int]) -> sp.Expr:
    """The polynomial ``sum_k c_k t^k`` as a sympy expression."""
    return sp.Add(*(c * t**k for k, c in enumerate(coefficients)))


def polynomial_power_sums(coefficients: Sequence[int], powers: int = 3, offset: int = 0) -> tuple[int, ...]:
    """``(sum_p (k_p+a)^0, ..., sum_p (k_p+a)^powers)`` from a path polynomial's coefficients."""
    return tuple(sum(c * (k + offset) ** j for k, c in enumerate(coefficients)) for j in range(powers + 1))


def expr_power_sums(G: sp.Expr, powers: int = 3, offset: int = 0) -> tuple[sp.Expr, ...]:
    """``[(t d/dt)^j (t^a G)]_{t=1}`` for j = 0..powers: the path sums of a (symbolic) path polynomial."""
    f = t**offset * G
    out = []
    for _ in range(powers + 1):
        out.append(_tidy_powers(sp.factor(sp.simplify(f.subs(t, 1)))))
        f = t * sp.diff(f, t)
    return tuple(out)


def _tidy_powers(x: sp.Expr) -> sp.Expr:
    """Write integer powers with a constant factor in the exponent one way: ``3**(3*N)`` as ``27**N``."""
    def is_scaled_power(e):
        return (e.is_Pow and e.base.is_Integer and e.exp.is_Mul and e.exp.args[0].is_Integer
                and e.exp.args[0] > 1)

    def rewrite(e):
        k = e.exp.args[0]
        return sp.Pow(e.base**k, e.exp / k)

    return sp.factor(x.replace(is_scaled_power, rewrite))


def chain_power_sums(depth: sp.Expr = L, powers: int = 3, offset: int = 0) -> tuple[sp.Expr, ...]:
    """A chain of ``depth`` parameterised layers (symbolic by default): ``sum_p L_p^j = (depth + a)^j``."""
    return expr_power_sums(t**depth, powers, offset)


def stacked_power_sums(cell: ArchGraph, copies: sp.Expr = N, powers: int = 3) -> tuple[sp.Expr, ...]:
    """Path sums of ``copies`` cells in series, in closed form in ``copies`` (symbolic ``N`` by default)."""
    g = as_expr(path_polynomial(cell)[cell.output_node])
    return expr_power_sums(g**copies, powers)


def stacked_moments_by_matrix(cell: ArchGraph, copies: sp.Expr = N, powers: int = 3) -> tuple[sp.Expr, ...]:
    """The same as :func:`stacked_power_sums` through the moment-transfer matrix ``T^N`` (module docstring)."""
    m = polynomial_power_sums(path_polynomial(cell)[cell.output_node], powers)
    P = m[0]
    size = powers + 1
    D = sp.zeros(size, size)
    for j in range(size):
        for i in range(j):  # strictly lower part: T - P I
            D[j, i] = comb(j, i) * m[j - i]
    start = sp.Matrix([1] + [0] * powers)
    total = sp.zeros(size, 1)
    Dk = sp.eye(size)
    for k in range(size):  # D is nilpotent: D^size = 0
        coeff = sp.binomial(copies, k) * (sp.Integer(P) ** (copies - k) if P else sp.Integer(0))
        if P == 0:
            # T = D nilpotent; T^N = D^N, which vanishes for N >= size and is D^N otherwise
            coeff = sp.Piecewise((1, sp.Eq(copies, k)), (0, True))
        total += coeff * (Dk * start)
        Dk = Dk * D
    return tuple(sp.factor(sp.simplify(sp.expand_func(x))) for x in total)


def nb201_polynomial(cell: ArchGraph, cells_per_stage: sp.Expr = N) -> sp.Expr:
    """Path polynomial of :func:`nni_archscale.core.networks.nb201_network` with a symbolic cells-per-stage.

    Built from that function's own block list (with one cell per stage), every cell block raised to the
    power ``cells_per_stage``.
    """
    net = nb201_network(cell, cells_per_stage=1)
    G = sp.Integer(1)
    for block in net.blocks:
        g = as_expr(path_polynomial(block.graph)[block.graph.output_node])
        G = G * (g**cells_per_stage if block.role == "cell" else g)
    return G


def nb201_power_sums(cell: ArchGraph, cells_per_stage: sp.Expr = N, powers: int = 3) -> tuple[sp.Expr, ...]:
    """Whole NAS-Bench-201 network path sums ``sum_p k_p^j`` as closed forms in the cells per stage."""
    return expr_power_sums(nb201_polynomial(cell, cells_per_stage), powers)
