"""The project's default rules on a chain, in closed form: how they scale with depth, width and input size.

:mod:`nni_archscale.rules.first_step` states the feature rule (``feature-sgd`` / ``feature-adam``): the features the
readout reads must move by a fixed fraction of their own scale after one step, which gives

    eta* = c * sqrt(E[z_out^2]) / Theta_h,

``Theta_h`` the stem-and-cell part of the first-step kernel with centred layer inputs (SGD: ``sum (df/dtheta)^2``;
Adam: ``sum |df/dtheta|``). Here it is derived with sympy for the network App. D varies: a stem
``relu(W_0 x)`` (``x`` of ``d`` inputs with ``E[x_i^2] = 1``) followed by a chain of ``L`` Linear-then-ReLU layers
of width ``n``, every hidden layer He-initialised (``Var W = 2 / fan_in``) and the readout mean-field
(``Var = 1/n^2``), at infinite width except for the explicit powers of ``n``.

Every quantity comes from :mod:`symbolic.gaussian` (ReLU moments of a pre-activation of second moment ``s``):

* forward: each layer's pre-activation has second moment ``s = 2 E[z^2]``; ``E[relu^2] = s/2`` keeps
  ``E[z^2] = 1`` at every layer, and the feature's mean is ``E[relu] = sqrt(s / (2 pi))``, so its variance is
  ``1 - 1/pi``;
* backward: a layer passes ``2 * E[relu'^2] * E[delta^2] = E[delta^2]`` back (``E[relu'^2] = P(z > 0) = 1/2``),
  so every layer's output gradient keeps the readout's ``1/n^2``;
* per layer, ``||df/dW||^2 = (n Var z) (n E[relu'^2] / n^2)`` (SGD) and
  ``||df/dW||_1 = (n E|z - E z|) (n E[relu'] E|delta|)`` with Gaussian absolute moments (Adam);
  the stem's input is ``x`` itself (not centred: the data are standardised).

Results (checked against the numeric code in ``tests/test_symbolic_chain_rules.py``):

    SGD:  Theta_h = d / (2 n) + L (1 - 1/pi) / 2
    Adam: Theta_1,h = d / pi + L n sqrt(1 - 1/pi) / pi

so along a chain the feature rule's rate falls as ``1 / L`` for large ``L`` (eq. 8 with one path: ``L^(-3/2)``),
and the stem term sets how early that starts: with SGD it weighs ``d / n`` against one layer's
``1 - 1/pi``, so a wider network (or a smaller input) reaches the ``1 / L`` regime at smaller depth.

The SGD default, ``second-step-sgd`` = ``(Theta_h * mean over paths of (k_p + 3))^(-1/2)``, has one path of
``k = L`` on a chain, so its rate is ``((d/(2n) + L (1 - 1/pi)/2) (L + 3))^(-1/2)``: also ``1 / L`` for large
``L``, by construction of its path factor (:func:`chain_second_step_rate`).
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp

from .gaussian import _z, gaussian_expectation, relu_first_moment, relu_second_moment, s

L, n, d = sp.symbols("L n d", positive=True)


def _gaussian_abs_mean(second_moment: sp.Expr) -> sp.Expr:
    """``E|X|`` of a centred Gaussian with the given second moment (integrated, not quoted)."""
    return sp.simplify(2 * gaussian_expectation(_z, s, lower=0).subs(s, second_moment))


@lru_cache(maxsize=None)
def chain_feature_moments() -> dict[str, sp.Expr]:
    """Per-unit constants of one He-initialised Linear-then-ReLU layer fed a unit-second-moment input."""
    pre = sp.Integer(2)  # s = gain * E[z^2] = 2 * 1
    second = relu_second_moment().subs(s, pre)
    mean = relu_first_moment().subs(s, pre)
    derivative_second = gaussian_expectation(sp.Integer(1), s, lower=0)  # E[relu'^2] = P(z > 0)
    return {"second": sp.simplify(second), "mean": sp.simplify(mean),
            "variance": sp.simplify(second - mean**2), "derivative": sp.simplify(derivative_second)}


@lru_cache(maxsize=None)
def chain_hidden_kernel(optimizer: str = "sgd") -> sp.Expr:
    """``Theta_h`` (SGD) or ``Theta_1,h`` (Adam) of the stem plus an ``L``-layer chain, in ``L``, ``n``, ``d``."""
    m = chain_feature_moments()
    assert m["second"] == 1, "He init keeps E[z^2] = 1 through a ReLU layer (eq. 10)"
    delta2 = 1 / n**2  # every layer's output gradient: the readout's variance, passed back unchanged
    back_gain = 2 * m["derivative"]
    assert back_gain == 1
    if optimizer == "sgd":
        layer = (n * m["variance"]) * (n * m["derivative"] * delta2)
        stem = (d * 1) * (n * m["derivative"] * delta2)
    elif optimizer == "adam":
        e_relu_prime = m["derivative"]  # E[relu'] = P(z > 0), the same 1/2
        layer = (n * _gaussian_abs_mean(m["variance"])) * (n * e_relu_prime * _gaussian_abs_mean(delta2))
        stem = (d * _gaussian_abs_mean(sp.Integer(1))) * (n * e_relu_prime * _gaussian_abs_mean(delta2))
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use sgd or adam")
    return sp.simplify(stem + L * layer)


def chain_feature_rate(optimizer: str = "sgd") -> sp.Expr:
    """The feature rule's rate for the ``L``-layer chain relative to the one-layer base (``L = 1``):
    ``E[z_out^2] = 1`` for every ``L``, so the ratio of hidden kernels."""
    k = chain_hidden_kernel(optimizer)
    return sp.simplify(k.subs(L, 1) / k)


def chain_second_step_rate() -> sp.Expr:
    """``second-step-sgd``'s rate for the ``L``-layer chain relative to the one-layer base."""
    k = chain_hidden_kernel("sgd")
    return sp.simplify(sp.sqrt(k.subs(L, 1) * 4 / (k * (L + 3))))


def depth_exponent(rate: sp.Expr) -> sp.Expr:
    """``lim_{L -> oo} log(rate) / log(L)``: -1 for the feature rule, -3/2 for eq. 8 on one path."""
    return sp.limit(sp.log(rate) / sp.log(L), L, sp.oo)
