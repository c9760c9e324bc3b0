"""symbolic.chain_rules: the default rules on a chain in closed form, held to the numeric first-step kernels."""

import math

import pytest
import sympy as sp

from nni_archscale.core.networks import CellNetwork, chain
from nni_archscale.experiments.rule_variants import rule_multiplier
from nni_archscale.rules.first_step import first_step_kernel, cell_init
from symbolic.chain_rules import (L, chain_feature_rate, chain_hidden_kernel, chain_second_step_rate, d, depth_exponent,
                                  n)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("width, inputs", [(64, 196), (256, 64)])
def test_closed_form_matches_the_numeric_kernel_and_rule(optimizer, width, inputs):
    closed = chain_hidden_kernel(optimizer)
    rate = chain_feature_rate(optimizer)
    for depth in range(1, 7):
        k = first_step_kernel(cell_init(CellNetwork(chain(depth), inputs, width, 10), "paper"))
        numeric = k.hidden_centered2 if optimizer == "sgd" else k.hidden_centered1
        assert float(closed.subs({L: depth, n: width, d: inputs})) == pytest.approx(numeric, rel=1e-9)
        assert k.output_second_moment == pytest.approx(1.0)
        assert float(rate.subs({L: depth, n: width, d: inputs})) == pytest.approx(
            rule_multiplier(f"feature-{optimizer}", CellNetwork(chain(depth), inputs, width, 10), "paper", optimizer),
            rel=1e-9)


def test_sgd_kernel_is_the_stem_term_plus_one_relu_variance_term_per_layer():
    assert sp.simplify(chain_hidden_kernel("sgd") - (d / (2 * n) + L * (1 - 1 / sp.pi) / 2)) == 0
    assert sp.simplify(chain_hidden_kernel("adam") - (d / sp.pi + L * n * sp.sqrt(1 - 1 / sp.pi) / sp.pi)) == 0


def test_the_feature_rule_falls_as_one_over_depth_and_eq8_as_depth_to_minus_three_halves():
    for optimizer in ("sgd", "adam"):
        assert depth_exponent(chain_feature_rate(optimizer)) == -1
    assert depth_exponent(L ** sp.Rational(-3, 2)) == sp.Rational(-3, 2)
    # a wider network reaches the 1/L regime at smaller depth (the stem term d/(2n) shrinks)
    r = chain_feature_rate("sgd").subs({L: 4, d: 196})
    assert float(r.subs(n, 512)) < float(r.subs(n, 128)) < float(r.subs(n, 32))
    assert float(r.subs(n, 10**9)) == pytest.approx(0.25, rel=1e-6)
    assert math.isclose(float(chain_feature_rate("adam").subs({L: 4, d: 196, n: 10**9})), 0.25, rel_tol=1e-6)


@pytest.mark.parametrize("width, inputs", [(128, 196), (512, 64)])
def test_second_step_rule_on_a_chain_matches_the_numeric_rule_and_falls_as_one_over_depth(width, inputs):
    rate = chain_second_step_rate()
    for depth in range(1, 7):
        assert float(rate.subs({L: depth, n: width, d: inputs})) == pytest.approx(
            rule_multiplier("second-step-sgd", CellNetwork(chain(depth), inputs, width, 10), "paper", "sgd"), rel=1e-9)
    assert depth_exponent(rate) == -1
