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
