"""When a default may change: the decision rule of issue 17 ("fewer, firmer defaults"), as one function.

A challenger rule replaces the incumbent default only when, on cells drawn after the test was stated (see
:func:`nni_archscale.experiments.provenance.held_out`), its error is lower by **more than twice the standard error
of the paired difference**: with ``d_i = error_incumbent(cell i) - error_challenger(cell i)`` over ``n`` cells,

    mean(d) > 2 * sd(d) / sqrt(n).

Anything less (a tie such as 0.248 against 0.251, which twice changed a default before this rule) keeps the
incumbent. Errors are per-cell absolute log2 errors of the predicted maximal rate (octaves), paired by cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..errors import ArchScaleError
from ..stats import sample_sd


@dataclass(frozen=True)
class Decision:
    """The paired comparison and its verdict: ``replace`` is True only on a clear win of the challenger."""

    cells: int
    mean_difference: float   # incumbent error - challenger error, averaged over cells (positive: challenger better)
    standard_error: float
    replace: bool

    def describe(self, incumbent: str, challenger: str) -> str:
        verdict = (f"{challenger} replaces {incumbent}" if self.replace
                   else f"{incumbent} stays (no clear win for {challenger})")
        return (f"{verdict}: paired difference {self.mean_difference:+.3f} octaves, standard error "
                f"{self.standard_error:.3f} over {self.cells} cells (a change needs more than twice the standard error)")


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
    return Decision(n, mean, se, mean > margin * se)
