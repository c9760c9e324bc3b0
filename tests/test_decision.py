"""The default-change rule: a challenger replaces the incumbent only beyond twice the paired standard error."""

import math

import pytest

from nni_archscale.errors import ArchScaleError
from nni_archscale.experiments.decision import decide


def test_a_tie_keeps_the_incumbent_and_a_clear_win_replaces_it():
    incumbent = [0.30, 0.25, 0.20, 0.28, 0.22, 0.26]
    tie = [e - 0.003 + (0.05 if i % 2 else -0.05) for i, e in enumerate(incumbent)]  # 0.248 vs 0.251 kind of tie
    d = decide(incumbent, tie)
    assert d.replace is False and d.mean_difference == pytest.approx(0.003)
    assert "stays (no clear win" in d.describe("readout-capped-sgd", "readout-limited-sgd")
    better = [e - 0.10 + (0.01 if i % 2 else -0.01) for i, e in enumerate(incumbent)]
    d = decide(incumbent, better)
    diffs = [0.10 - (0.01 if i % 2 else -0.01) for i in range(6)]
    mean = sum(diffs) / 6
    se = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 5) / math.sqrt(6)
    assert d.replace is True and d.standard_error == pytest.approx(se) and d.mean_difference == pytest.approx(mean)
    assert d.describe("a", "b").startswith("b replaces a")


def test_a_worse_challenger_never_replaces_and_unpaired_errors_are_refused():
    assert decide([0.2, 0.3, 0.25], [0.4, 0.5, 0.45]).replace is False
    with pytest.raises(ArchScaleError, match="not paired"):
        decide([0.1, 0.2], [0.1])
    with pytest.raises(ArchScaleError, match="at least 2 cells"):
        decide([0.1], [0.2])


def test_p_value_is_the_one_sided_z_test():
    from nni_archscale.experiments.decision import ALPHA, Decision
    from nni_archscale.stats import normal_sf

    assert ALPHA == pytest.approx(0.02275, abs=1e-5)
    assert Decision(20, 0.151, 0.050, True).p_value == pytest.approx(normal_sf(0.151 / 0.050))
    assert Decision(20, 0.0, 0.0, False).p_value == 1.0  # identical errors: nothing to test
    assert Decision(20, 0.1, 0.0, True).p_value == 0.0


def test_holm_decisions_correct_for_the_number_of_decisions():
    """One decision: the 2-SE rule unchanged. Twenty: a z of 3 no longer passes (Holm needs about 3.05)."""
    from nni_archscale.experiments.decision import Decision, holm_decisions

    alone = holm_decisions({"a": Decision(20, 0.21, 0.1, True)})
    assert alone["a"].replace is True and alone["a"].tests == 1
    assert alone["a"].adjusted_p == pytest.approx(alone["a"].p_value)
    many = {"win": Decision(20, 0.3, 0.1, True), **{f"tie{i}": Decision(20, 0.0, 0.1, False) for i in range(19)}}
    held = holm_decisions(many)
    assert list(held) == list(many)  # keys and order kept
    assert held["win"].replace is False and held["win"].tests == 20
    assert held["win"].adjusted_p == pytest.approx(20 * held["win"].p_value)
    assert "Holm-adjusted over 20 decisions" in held["win"].describe("shared", "segmented")
    many["win"] = Decision(20, 0.35, 0.1, True)
    assert holm_decisions(many)["win"].replace is True


def test_decide_refitted_separates_level_from_shape():
    """A rule whose only merit is its level (the measured rates' offset from the base network's) beats the
    base-network constant but not one shared rate with its constant refitted the same way."""
    import numpy as np

    from nni_archscale.experiments.decision import decide_refitted, refitted_errors

    rng = np.random.default_rng(0)
    meas = rng.normal(-2.0, 0.3, 20)
    base = np.zeros(20)                      # one shared rate at the base network's level, 2 octaves off
    level = np.full(20, -2.0) + rng.normal(0, 0.3, 20)  # the right level, no skill
    assert decide([abs(m) for m in meas], list(np.abs(level - meas))).replace  # against the base level: a "win"
    d = decide_refitted(meas, base, level)
    assert d.replace is False and d.mean_difference < 0
    skill = meas + rng.normal(0, 0.05, 20) + 5.0  # tracks every architecture, up to a constant
    assert decide_refitted(meas, base, skill).replace is True
    assert np.allclose(refitted_errors(meas + 3.0, meas), 0.0)
    assert np.array_equal(refitted_errors(np.full(20, 0.7), meas), refitted_errors(base, meas))  # exact
    with pytest.raises(ArchScaleError, match="unknown constant"):
        refitted_errors(base, meas, "in-sample")
