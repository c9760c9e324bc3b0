"""When a default may change: the decision rule of issue 17 ("fewer, firmer defaults"), as one function.

A challenger rule replaces the incumbent default only when, on cells drawn after the test was stated (see
:func:`nni_archscale.experiments.held_out.held_out`), its error is lower by **more than twice the standard error
of the paired difference**: with ``d_i = error_incumbent(cell i) - error_challenger(cell i)`` over ``n`` cells,

    mean(d) > 2 * sd(d) / sqrt(n).

Anything less (a tie such as 0.248 against 0.251, which twice changed a default before this rule) keeps the
incumbent. Errors are per-cell absolute log2 errors of the predicted maximal rate (octaves), paired by cell.

**Several decisions at once** (issue 23.5). A test that states several decisions (every space, optimizer and
challenger of ``reports/spaces-maxlr``) reads the rule as a one-sided z test, ``z = mean(d) / se``, ``p = 1 -
Phi(z)``, at level :data:`ALPHA` ``= 1 - Phi(2) = 0.02275`` (for one decision exactly the rule above), and
corrects for their number by Holm's step-down procedure (:func:`holm_decisions`, :func:`nni_archscale.stats.holm`;
Holm 1979): a challenger replaces the incumbent only if its Holm-adjusted p is below :data:`ALPHA`.

**Level against shape.** A rule's prediction is a rate up to a constant. Scored with the constant the product
uses (the base network's measured rate), a rule can beat one shared rate only because the base network's rate is
off the population's level, which one better-tuned shared rate would fix as well. :func:`decide_refitted` fits
each arm's constant the same way (the leave-one-out mean of its log residuals, by default) before comparing, so
that what is left is per-architecture skill.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence, TypeVar

from ..errors import ArchScaleError
from ..stats import holm_adjust, loo_centres, normal_sf, sample_sd

#: the level of the rule "more than twice the paired standard error", read as a one-sided z test: ``1 - Phi(2)``
ALPHA = normal_sf(2.0)

#: how a predictor's constant is fitted on the other cells: their mean or their median log2 residual
CONSTANTS = {"loo-mean": "mean", "loo-median": "median"}

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Decision:
    """The paired comparison and its verdict: ``replace`` is True only on a clear win of the challenger.
    ``adjusted_p`` and ``tests`` are set when the decision was taken together with others (Holm)."""

    cells: int
    mean_difference: float   # incumbent error - challenger error, averaged over cells (positive: challenger better)
    standard_error: float
    replace: bool
    adjusted_p: float | None = None
    tests: int = 1

    @property
    def p_value(self) -> float:
        """One-sided p of ``z = mean_difference / standard_error`` (:func:`nni_archscale.stats.normal_sf`); with
        no spread (every difference equal) 0 for a positive difference, else 1 (nothing to test)."""
        if self.standard_error > 0:
            return normal_sf(self.mean_difference / self.standard_error)
        return 0.0 if self.mean_difference > 0 else 1.0

    def describe(self, incumbent: str, challenger: str) -> str:
        verdict = (f"{challenger} replaces {incumbent}" if self.replace
                   else f"{incumbent} stays (no clear win for {challenger})")
        text = (f"{verdict}: paired difference {self.mean_difference:+.3f} octaves, standard error "
                f"{self.standard_error:.3f} over {self.cells} cells")
        if self.adjusted_p is None:
            return text + " (a change needs more than twice the standard error)"
        return (text + f", one-sided p {self.p_value:.4f}, Holm-adjusted over {self.tests} decisions "
                f"{self.adjusted_p:.4f} (a change needs it below {ALPHA:.5f}, the 2-SE rule's level)")


def decide(incumbent_errors: Sequence[float], challenger_errors: Sequence[float], margin: float = 2.0) -> Decision:
    """Apply the rule to per-cell errors paired by position (the same cells, in the same order)."""
    if len(incumbent_errors) != len(challenger_errors):
        raise ArchScaleError(f"the errors are not paired: {len(incumbent_errors)} cells for the incumbent, "
                             f"{len(challenger_errors)} for the challenger; score both rules on the same cells")
    n = len(incumbent_errors)
    if n < 2:
        raise ArchScaleError(f"a paired decision needs at least 2 cells, got {n}; score more cells")
    d = [a - b for a, b in zip(incumbent_errors, challenger_errors)]
    mean = sum(d) / n
    se = sample_sd(d) / math.sqrt(n)
    return Decision(n, float(mean), float(se), bool(mean > margin * se))


def holm_decisions(decisions: Mapping[K, Decision], alpha: float = ALPHA) -> dict[K, Decision]:
    """The same comparisons decided together: each one's one-sided p (:attr:`Decision.p_value`) is Holm-adjusted
    over all of them (:func:`nni_archscale.stats.holm_adjust`), and a challenger replaces its incumbent only if its
    adjusted p is below ``alpha`` (default :data:`ALPHA`, the 2-SE rule). Keys and order are kept."""
    keys = list(decisions)
    adjusted = holm_adjust([decisions[k].p_value for k in keys])
    return {k: dataclasses.replace(decisions[k], replace=a < alpha, adjusted_p=a, tests=len(keys))
            for k, a in zip(keys, adjusted)}


def refitted_errors(log_pred: Sequence[float], log_meas: Sequence[float], constant: str = "loo-mean"):
    """Per-cell ``|log2 c_-i + log2 prediction_i - log2 measured_i|`` (octaves, a numpy array), the constant
    ``c_-i`` fitted on the *other* cells: the mean (``"loo-mean"``) or the median (``"loo-median"``) of their log2
    residuals (:func:`nni_archscale.stats.loo_centres`).

    The predictions are first shifted by the first one, which the fitted constant absorbs exactly: it changes
    nothing but rounding, and makes a constant predictor score exactly as one shared rate."""
    import numpy as np

    if constant not in CONSTANTS:
        raise ArchScaleError(f"unknown constant fit {constant!r}; use one of {', '.join(CONSTANTS)}")
    pred = np.asarray(log_pred, float)
    meas = np.asarray(log_meas, float)
    pred = pred - pred[0]
    return np.abs(pred + loo_centres(meas - pred, CONSTANTS[constant]) - meas)


def decide_refitted(log_meas: Sequence[float], incumbent_log_pred: Sequence[float],
                    challenger_log_pred: Sequence[float], constant: str = "loo-mean",
                    margin: float = 2.0) -> Decision:
    """:func:`decide` on errors with each arm's constant fitted the same way (:func:`refitted_errors`): what is
    left of a challenger's win once neither arm gains from the level of its constant (per-architecture skill)."""
    return decide(list(refitted_errors(incumbent_log_pred, log_meas, constant)),
                  list(refitted_errors(challenger_log_pred, log_meas, constant)), margin)
