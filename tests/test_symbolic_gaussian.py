"""The Gaussian constants of symbolic.gaussian, held to independent numerical integration (mpmath)."""

from __future__ import annotations

import mpmath
import pytest
import sympy as sp

from symbolic.gaussian import activation, gelu_second_moment, relu_dual_kernel, relu_second_moment, s


def test_relu_second_moment_is_half():
    assert relu_second_moment() == s / 2  # eq. 10
    assert activation("relu").homogeneous_factor == sp.Rational(1, 2)


@pytest.mark.parametrize("var", ["1/10", "1", "3", "25"])
def test_gelu_second_moment_matches_quadrature(var):
    v = sp.Rational(var)
    closed = sp.N(gelu_second_moment().subs(s, v), 30)
    sd = mpmath.sqrt(mpmath.mpf(v.p) / v.q)
    with mpmath.workdps(30):
        numeric = mpmath.quad(lambda z: (z * mpmath.ncdf(z)) ** 2 * mpmath.npdf(z, 0, sd), [-mpmath.inf, 0, mpmath.inf])
    assert abs(closed - sp.Float(str(numeric), 30)) < sp.Float("1e-12")


def test_gelu_limits_are_quarter_and_half():
    V = gelu_second_moment()
    assert sp.limit(V / s, s, 0) == sp.Rational(1, 4)  # gelu(z) ~ z/2 near 0
    assert sp.limit(V / s, s, sp.oo) == sp.Rational(1, 2)  # gelu ~ relu far out


def test_relu_dual_kernel_is_the_arc_cosine_kernel():
    kernel, (a, b, c) = relu_dual_kernel()
    rho = c / sp.sqrt(a * b)
    arc_cosine = sp.sqrt(a * b) * (sp.sqrt(1 - rho**2) + rho * (sp.pi - sp.acos(rho))) / (2 * sp.pi)
    for values in ({a: 1, b: 1, c: sp.Rational(1, 3)}, {a: 2, b: 5, c: -1}, {a: 3, b: 3, c: 3}):
        assert abs(sp.N((kernel - arc_cosine).subs(values), 30)) < 1e-25
    # diagonal: c = a = b gives E[relu(z)^2] = a/2
    assert sp.simplify(kernel.subs({b: a, c: a})) == a / 2


def test_relu_dual_kernel_against_quadrature():
    kernel, (a, b, c) = relu_dual_kernel()
    closed = float(kernel.subs({a: 1, b: 2, c: sp.Rational(1, 2)}))
    # u = z1, v = z1/2 + r z2 (a = 1, b = 2, c = 1/2); the inner expectation over z2 is the mean of a
    # shifted ReLU, E[relu(m + r Z)] = m Phi(m/r) + r phi(m/r), leaving a 1-D quadrature
    r = mpmath.sqrt(2 - mpmath.mpf(1) / 4)

    def inner(z1):
        m = z1 / 2
        return m * mpmath.ncdf(m / r) + r * mpmath.npdf(m / r)

    numeric = mpmath.quad(lambda z1: z1 * inner(z1) * mpmath.npdf(z1), [0, mpmath.inf])
    assert closed == pytest.approx(float(numeric), rel=1e-10)
