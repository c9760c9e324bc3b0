"""The first-step maximal-update condition (paper eqs. 5-9, App. B and C), solved for the learning rate.

Setting (paper §3.3): one training point ``(x, y)`` with ``E|x|^2/n = 1``, ``E y = 0``, ``Var y = 1``; MSE loss
(eq. 6); one gradient step with one learning rate ``eta`` for all hidden weights; hidden weights initialised by
eq. 2/4 and the readout with mean-field variance ``1/n^2``. The readout is the linear layer after the graph's
output node; its own update is not part of ``B`` (the rule is for hidden-layer weights).

App. B: ``E[(Delta z)^2] = A + B`` with ``A = O(1/n)`` (so ``A -> 0`` at infinite width, leading order), and
the change at the output is a sum over the edges into it (eq. 25). With the in-degree initialisation every
input-output path behaves as the sequential MLP of Jelassi et al. (2023, Thm 1.1), whose leading term is
``B_p = kappa eta^2 L_p^3`` (eq. 26). App. C (convolutions with patch size ``q``) multiplies this by
``q^2``. Summed over paths:

    B(eta) = kappa q^2 eta^2 sum_p L_p^3.

Maximal update (eq. 7): ``B(eta) = beta`` with ``beta = Theta(1)``; the positive root is

    eta* = sqrt(beta / kappa) * (sum_p L_p^3)^(-1/2) * q^(-1)                     (eqs. 8, 9)

so ``c = sqrt(beta / kappa)``. ``kappa`` is the per-path constant of App. B: it depends on the activation and
the data normalisation (``E|x|^2/n = 1``, ``Var y = 1``, via ``E_y (z - y)^2 = z^2 + 1``, eq. 21) and on nothing
in the graph; ``beta`` is the chosen ``Theta(1)`` target. Neither is known in closed form, which is why the
paper calibrates ``c`` once: ``eta_base = c (S_base)^(-1/2) q_base^(-1)`` on the base network, i.e.
``c = eta_base sqrt(S_base) q_base``. The rule's rate transfers ``eta_base`` to a graph by the ratio of the two
roots, so ``eta_rule sqrt(S) q = eta_base sqrt(S_base) q_base`` for every graph: that identity, with ``S`` and ``q``
computed here independently (path polynomials), is what :func:`max_update` checks.

Which ``L_p`` and ``q``: the network the rule sees (see :mod:`nni_archscale.rules.paper`): a bare DAG is the network
(``L_p = k_p``); a NAS-Bench-201 cell is preceded by its 3x3 stem (``L_p = 1 + k_p``, path polynomial
``t * g(t)``); the ``release`` preset counts ``k_p + 3`` on DAG cells (the authors' code). ``q`` is the largest
kernel over the network's parameterised layers: App. C treats one kernel size; with several, the largest
bounds every path's ``B`` from above, and a single global rate must satisfy the most demanding path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Callable

import sympy as sp

from nni_archscale.errors import NoPathError, RateUnderflowError, RuleError
from nni_archscale.core.graph import ArchGraph
from nni_archscale.core.networks import single_layer
from nni_archscale.rules.paper import (
    big_int_text,
    base_depth_power_sum,
    default_base_kernel_size,
    learning_rate,
)

from .pathsums import path_polynomial, polynomial_power_sums

eta = sp.Symbol("eta", positive=True)
kappa = sp.Symbol("kappa", positive=True)
beta = sp.Symbol("beta", positive=True)
q_sym = sp.Symbol("q", positive=True)
S_sym = sp.Symbol("S", positive=True)

#: The relative tolerance on float learning rates (everything else is compared exactly).
RTOL = 1e-12


@lru_cache(maxsize=None)
def solved_rate() -> sp.Expr:
    """Solve ``kappa q^2 eta^2 S = beta`` for ``eta > 0`` (done once; a graph substitutes its S and q)."""
    roots = sp.solve(sp.Eq(kappa * q_sym**2 * eta**2 * S_sym, beta), eta)
    (root,) = [r for r in roots if r.is_positive is not False]
    return sp.simplify(root)


def network_polynomial(graph: ArchGraph, preset: str, context: str) -> tuple[tuple[int, ...], int]:
    """Path polynomial (coefficients) of the network the rule sees, and the convention's extra depth offset.

    A NAS-Bench-201 cell, and the cell of the paper's DAG-cell MLP/CNN, is preceded by its stem (a Conv/Linear +
    ReLU layer; the linear readout has no ReLU and is not counted): the polynomials multiply (series composition)."""
    g = path_polynomial(graph)[graph.output_node]
    if preset == "release" and context != "nb201-cell":
        return g, 3  # the release's k_p + 3 (paper-notes §4): a convention, not a layer count
    if context in ("nb201-cell", "mlp-cell", "cnn-cell"):
        stem = path_polynomial(single_layer(3 if context != "mlp-cell" else 1))[1]
        return _multiply(stem, g), 0
    return g, 0


def _multiply(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    if not a or not b:
        return ()
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] += x * y
    return tuple(out)


def network_kernel(graph: ArchGraph, context: str) -> int:
    """Largest kernel over the parameterised layers of the network the rule sees (App. C's ``q``)."""
    qs = [e.kernel_size for e in graph.parameterised_edges]
    if context == "nb201-cell" or (context == "cnn-cell" and not qs):
        qs.append(3)  # the 3x3 stem
    return max(qs, default=1)


@dataclass(frozen=True)
class MaxUpdate:
    """The maximal-update derivation for one graph and its comparison with a learning-rate rule."""

    graph: ArchGraph
    preset: str
    context: str
    power_sum: int  # S = sum_p L_p^3 of the network the rule sees
    depth_histogram: tuple[int, ...]  # paths by L_p (index = L_p)
    kernel_size: int  # q
    update: sp.Expr  # B(eta)
    eta: sp.Expr | None  # eta* in terms of beta, kappa (None: B == 0, no constraint)
    rule_value: float | None
    implied_constant: float | None  # eta_rule * sqrt(S) * q / q_base
    expected_constant: float | None  # base_lr * sqrt(S_base)
    constant_formula: str
    matches: bool
    detail: str


def max_update(
    graph: ArchGraph,
    preset: str = "paper",
    context: str = "dag",
    base_lr: float = 1.0,
    rate: Callable[[ArchGraph], float] | None = None,
) -> MaxUpdate:
    """Derive eta* for ``graph`` and check the graph rule's learning rate, paths counted as the published
    convention ``preset`` counts them (``paper`` or ``release``), or the rate ``rate`` gives, against it.

    ``rate`` replaces :func:`nni_archscale.rules.paper.learning_rate` (used by the tests to show that a wrong rule
    is caught); it receives the graph and returns the learning rate.
    """
    coeffs, extra = network_polynomial(graph, preset, context)
    sums = polynomial_power_sums(coeffs, 3, extra)
    P, S = sums[0], sums[3]
    q = network_kernel(graph, context)
    fallback = ""
    if preset == "release" and context != "nb201-cell" and sums[1] - extra * sums[0] == 0:
        # release: when no path has a parameterised cell edge (or there is no path) it uses depth list [3]
        S, fallback = 27, "release fallback: no parameterised edge on any path, depth list [3] (base rate)"
    hist = tuple([0] * extra + list(coeffs)) if coeffs else ()
    B = sp.expand(kappa * q**2 * eta**2 * sum(c * (k + extra) ** 3 for k, c in enumerate(coeffs)))
    if fallback:
        B = kappa * q**2 * eta**2 * S
    eta_star = solved_rate().subs({S_sym: S, q_sym: q}) if S > 0 else None

    q0 = default_base_kernel_size(graph, context) if preset == "paper" else 3
    kernel_factor_applies = preset == "paper" or context == "cnn-cell" or (
        context == "dag" and any(k > 1 for k in graph.kernel_sizes))
    qk, q0k = (q, q0) if kernel_factor_applies else (1, 1)
    s_base = base_depth_power_sum(preset, context)
    c_formula = (
        f"c = sqrt(beta/kappa) = eta * sqrt(S) * q = base_lr * sqrt(S_base) * q_base "
        f"= {base_lr:g} * sqrt({s_base}) * {q0k}"
    )
    expected = base_lr * math.sqrt(s_base)
    try:
        value = (rate or (lambda g: learning_rate(g, base_lr, preset, context).value))(graph)
    except RateUnderflowError as exc:
        # eta* = c / (q sqrt(S)) is below float64's range: the rule must refuse, and it does (that is the check)
        return MaxUpdate(graph, preset, context, S, hist, q, B, eta_star, None, None, expected, c_formula, S > 0,
                         f"B(eta) = kappa*{qk}^2*eta^2*S with S = 10^{math.log10(S):.1f} -> eta* below float64's "
                         f"range; the rule refuses the graph ({exc})")
    except (NoPathError, RuleError) as exc:
        ok = S == 0
        detail = (
            f"no parameterised layer on any input-output path (sum_p L_p^3 = 0): B(eta) = 0 for every eta, "
            f"so eta* is undefined; the rule refuses too ({type(exc).__name__})"
            if ok else f"the rule refused a graph with sum_p L_p^3 = {S} > 0: {exc}"
        )
        return MaxUpdate(graph, preset, context, S, hist, q, B, eta_star, None, None, expected, c_formula, ok,
                         detail)
    if S == 0:
        return MaxUpdate(graph, preset, context, S, hist, q, B, None, value, None, expected, c_formula, False,
                         f"sum_p L_p^3 = 0 (P = {P}) leaves eta unconstrained, but the rule returned {value:g}")
    implied = (value * math.sqrt(S) * float(Fraction(qk, q0k)) if S < 10**300 else  # in logs past float64's range
               math.exp(math.log(value) + 0.5 * math.log(S) + math.log(Fraction(qk, q0k))))
    ok = math.isclose(implied, expected, rel_tol=RTOL)
    detail = (
        f"B(eta) = kappa*{qk}^2*eta^2*{big_int_text(S)} -> eta* = sqrt(beta/kappa)/({qk}*sqrt({big_int_text(S)}));"
        f" rule eta = {value:.12g}; "
        f"eta*sqrt(S)*q/q_base = {implied:.12g} {'==' if ok else '!='} base_lr*sqrt(S_base) = {expected:.12g}"
        + (f"; {fallback}" if fallback else "")
    )
    return MaxUpdate(graph, preset, context, S, hist, q, B, eta_star, value, implied, expected, c_formula, ok,
                     detail)
