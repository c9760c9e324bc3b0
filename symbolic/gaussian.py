"""Gaussian moment constants of the activations, derived with sympy rather than tabulated.

The forward recursion (paper App. A, eq. 10-11) needs ``V(s) = E[sigma(z)^2]`` for a pre-activation ``z`` of
second moment ``s``:

* **ReLU.** For *any* distribution of ``z`` symmetric about 0, ``E[relu(z)^2] = E[z^2 1{z>0}] = s/2``
  (eq. 10). The constant is obtained here by integrating against the Gaussian density (sympy), and the
  symmetry argument is why it holds for any symmetric input, not only Gaussian ones. ReLU is positively
  homogeneous, so ``V(s) / s`` does not depend on ``s``.
* **GeLU** ``gelu(z) = z Phi(z)``. Not homogeneous: ``V(s)/s`` depends on ``s`` (small inputs see
  ``gelu(z) ~ z/2``, large ones ``~ relu(z)``), so a GeLU network's ratios depend on the input scale, and
  ``z`` has to be Gaussian (true at infinite width for every node fed by a parameterised edge, and assumed
  for the input). Derivation, every integral done by sympy:

  1. Stein's lemma ``E[z h(z)] = s E[h'(z)]`` twice gives
     ``E[z^2 Phi^2] = s E[Phi^2] + 2 s E[z Phi phi]`` and ``E[z Phi phi] = s E[phi^2] / (1 + s)``;
  2. ``E[phi(z)^2]`` is a Gaussian integral;
  3. the heat equation ``d/ds E[h(z)] = E[h''(z)] / 2`` with ``h = Phi^2`` gives
     ``d/ds E[Phi^2] = E[phi^2] / (1 + s)``, integrated from ``E[Phi^2]|_{s=0} = 1/4``.

The covariance of two ReLU features (the arc-cosine kernel of Cho & Saul, 2009) comes from Price's theorem,
``d/dc E[f(u) g(v)] = E[f'(u) g'(v)]`` for a centred Gaussian pair with covariance ``c``: integrating the
bivariate density at the origin gives Sheppard's orthant probability, integrating that gives the kernel.
The single-input forward recursion never needs it (see :mod:`symbolic.moments`: two different
parameterised edges have independent weights, so their outputs are uncorrelated); it is what a two-input
kernel needs, and :func:`symbolic.moments.two_input_kernel` uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
import sympy as sp

from nni_archscale.errors import RuleError

_z = sp.Symbol("z", real=True)
#: The second moment of a pre-activation, as a positive symbol.
s = sp.Symbol("s", positive=True)
_t = sp.Symbol("t", positive=True)


def gaussian_density(x: sp.Expr, variance: sp.Expr) -> sp.Expr:
    return sp.exp(-x**2 / (2 * variance)) / sp.sqrt(2 * sp.pi * variance)


def gaussian_expectation(f: sp.Expr, variance: sp.Expr = s, lower=-sp.oo) -> sp.Expr:
    """``E[f(z)]`` for ``z ~ N(0, variance)`` (``f`` an expression in ``symbolic.gaussian._z``), by sympy."""
    return sp.simplify(sp.integrate(f * gaussian_density(_z, variance), (_z, lower, sp.oo)))


@lru_cache(maxsize=None)
def relu_second_moment() -> sp.Expr:
    """``E[relu(z)^2] = s/2`` (paper eq. 10), integrated over the positive half-line."""
    return gaussian_expectation(_z**2, s, lower=0)


@lru_cache(maxsize=None)
def relu_first_moment() -> sp.Expr:
    """``E[relu(z)] = sqrt(s / (2 pi))``."""
    return gaussian_expectation(_z, s, lower=0)


@lru_cache(maxsize=None)
def gelu_second_moment() -> sp.Expr:
    """``E[gelu(z)^2]`` for ``z ~ N(0, s)``, by Stein's lemma and the heat equation (module docstring)."""
    e_phi2 = gaussian_expectation(sp.exp(-_z**2) / (2 * sp.pi), s)  # E[phi(z)^2]
    e_z_Phi_phi = s * e_phi2 / (1 + s)  # Stein: E[z Phi phi] = s (E[phi^2] - E[z Phi phi])
    e_Phi2 = sp.Rational(1, 4) + sp.integrate(e_phi2.subs(s, _t) / (1 + _t), (_t, 0, s))
    return sp.simplify(s * e_Phi2 + 2 * s * e_z_Phi_phi)


@lru_cache(maxsize=None)
def relu_dual_kernel() -> tuple[sp.Expr, tuple[sp.Symbol, sp.Symbol, sp.Symbol]]:
    """``E[relu(u) relu(v)]`` for a centred Gaussian pair with variances a, b and covariance c.

    Returns ``(expression, (a, b, c))``. Price's theorem twice, starting from independence (c = 0):
    ``P(u>0, v>0) = 1/4 + int_0^c p_(u,v)(0, 0) dc'`` and ``E[relu u relu v] = E[relu u] E[relu v] +
    int_0^c P(u>0, v>0) dc'``. The result is the arc-cosine kernel
    ``(sqrt(ab - c^2) + c (pi - arccos(c / sqrt(ab)))) / (2 pi)``.
    """
    a, b, c = sp.symbols("a b c", positive=True)
    density_at_origin = 1 / (2 * sp.pi * sp.sqrt(a * b - _t**2))
    orthant = sp.Rational(1, 4) + sp.integrate(density_at_origin, (_t, 0, c))
    mean = relu_first_moment()
    independent = mean.subs(s, a) * mean.subs(s, b)
    kernel = independent + sp.integrate(orthant.subs(c, _t), (_t, 0, c))
    return sp.simplify(kernel), (a, b, c)


@dataclass(frozen=True)
class Activation:
    """An activation's Gaussian moment map ``V(s) = E[sigma(z)^2]`` for ``E[z^2] = s``.

    ``homogeneous_factor`` is ``V(s)/s`` when that is a constant (ReLU: 1/2), else ``None``.
    """

    name: str
    second_moment_expr: sp.Expr
    homogeneous_factor: sp.Rational | None
    needs_gaussian_input: bool

    def second_moment(self, value):
        """``V(value)``. Exact: a Fraction/int in gives a Fraction out for ReLU, sympy otherwise."""
        if self.homogeneous_factor is not None and not isinstance(value, sp.Basic):
            from fractions import Fraction

            f = self.homogeneous_factor
            return value * Fraction(int(f.p), int(f.q))
        if self.homogeneous_factor is not None:
            return self.homogeneous_factor * value
        return self.second_moment_expr.subs(s, sp.sympify(value))

    def gain_factor(self, input_moment=1) -> sp.Expr:
        """``V(s0)/s0``: what one parameterised edge multiplies a second moment ``s0`` by, per unit gain."""
        s0 = sp.sympify(input_moment)
        return sp.simplify(self.second_moment_expr.subs(s, s0) / s0)


@lru_cache(maxsize=None)
def activation(name: str) -> Activation:
    """The :class:`Activation` called ``name`` (``relu`` or ``gelu``), its constants derived on first use."""
    if name == "relu":
        v = relu_second_moment()
        factor = sp.simplify(v / s)
        return Activation("relu", v, factor if not factor.has(s) else None, needs_gaussian_input=False)
    if name == "gelu":
        return Activation("gelu", gelu_second_moment(), None, needs_gaussian_input=True)
    raise RuleError(f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}")


ACTIVATIONS = ("relu", "gelu")
