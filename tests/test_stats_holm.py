"""Holm's step-down correction, the one-sided normal p and the leave-one-out centres (nni_archscale.stats)."""

import math

import numpy as np
import pytest

from nni_archscale.stats import holm, holm_adjust, loo_centres, normal_sf


def test_normal_sf_is_the_upper_tail():
    from scipy.stats import norm

    assert normal_sf(0.0) == 0.5
    assert normal_sf(2.0) == pytest.approx(0.022750131948179, rel=1e-12)  # 1 - Phi(2): the 2-SE rule's level
    for z in (-3.0, -0.5, 1.0, 2.5, 8.0):
        assert normal_sf(z) == pytest.approx(float(norm.sf(z)), rel=1e-12)
    assert normal_sf(20.0) == pytest.approx(2.753624e-89, rel=1e-6)  # erfc keeps the tail 1 - cdf rounds to 0


def test_holm_adjusted_p_values_by_hand():
    # sorted: 0.005, 0.01, 0.03, 0.04 -> 4 x 0.005, 3 x 0.01, 2 x 0.03, max(previous, 1 x 0.04)
    p = [0.01, 0.04, 0.03, 0.005]
    assert holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(p, 0.05) == [True, False, False, True]  # steps down: 0.005 <= 0.05/4, 0.01 <= 0.05/3, 0.03 > 0.05/2
    assert holm_adjust([0.3, 0.9]) == pytest.approx([0.6, 0.9])  # monotone and capped at 1
    assert holm_adjust([0.6, 0.7]) == [1.0, 1.0]
    assert holm_adjust([]) == [] and holm([], 0.05) == []


def test_holm_is_the_step_down_procedure():
    """The adjusted p agrees with Holm's sequential definition on random p-values (ties included)."""
    rng = np.random.default_rng(3)
    for _ in range(200):
        m = int(rng.integers(1, 9))
        p = list(np.round(rng.uniform(0, 0.1, m), 3))
        alpha = 0.05
        order = sorted(range(m), key=lambda i: p[i])
        rejected = [False] * m
        for rank, i in enumerate(order):
            if p[i] <= alpha / (m - rank):
                rejected[i] = True
            else:
                break
        adjusted = holm_adjust(p)
        assert [a <= alpha + 1e-12 for a in adjusted] == rejected
        assert all(a >= q for a, q in zip(adjusted, p))  # never smaller than the raw p


def test_one_test_at_the_2se_level_is_the_2se_rule():
    """With one decision, Holm at alpha = 1 - Phi(2) says "z above 2", the rule of issue 17."""
    alpha = normal_sf(2.0)
    assert holm([normal_sf(2.01)], alpha) == [True]
    assert holm([normal_sf(2.0)], alpha) == [False]  # strict, as "more than twice the standard error"
    assert holm([normal_sf(1.99)], alpha) == [False]
    # with 20 decisions the smallest p needs z above Phi^-1(1 - alpha / 20), about 3.05
    assert holm([normal_sf(3.0)] + [0.9] * 19, alpha)[0] is False
    assert holm([normal_sf(3.1)] + [0.9] * 19, alpha)[0] is True


def test_loo_centres():
    x = [1.0, 2.0, 4.0, 7.0]
    assert loo_centres(x, "mean") == pytest.approx([13 / 3, 12 / 3, 10 / 3, 7 / 3])
    assert loo_centres(x, "median") == pytest.approx([4.0, 4.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="centre"):
        loo_centres(x, "mode")
    with pytest.raises(ValueError, match="at least 2"):
        loo_centres([1.0], "mean")
    assert math.isclose(float(np.mean(loo_centres(x, "mean"))), float(np.mean(x)))
