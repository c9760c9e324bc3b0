"""Small statistics for comparing two training recipes over candidates and seeds (pure Python; scipy only for
Student's t quantile).

* :func:`kendall_tau`: Kendall's tau-b between two rankings (exact ties; O(n^2), fine for searches of
  hundreds of candidates).
* :func:`mean_interval`: the mean of paired differences with its two-sided Student-t confidence interval.
* :func:`seed_tau`: the noise floor of a ranking: the mean tau between the rankings two seeds of one recipe give.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b; None when fewer than 2 pairs or a constant variable."""
    n = len(x)
    if n != len(y) or n < 2:
        return None
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denom == 0 else (concordant - discordant) / denom


def sample_sd(values: Sequence[float]) -> float | None:
    """The sample standard deviation (``n - 1`` in the denominator); None for fewer than two values."""
    n = len(values)
    if n < 2:
        return None
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float | None, list[float] | None]:
    """``(mean, [low, high])``: the mean and its two-sided Student-t interval, ``mean +- t_{n-1} s / sqrt(n)``.
    ``(None, None)`` for no values; the interval is None for a single value (no spread to estimate)."""
    n = len(values)
    if n == 0:
        return None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None
    from scipy.stats import t

    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sample_sd(values) / math.sqrt(n)
    return mean, [mean - half, mean + half]


def seed_tau(per_seed: Sequence[Sequence[float]]) -> float | None:
    """Mean Kendall tau over every pair of seeds, ``per_seed[s][i]`` being candidate ``i``'s score at seed ``s``:
    how much one recipe's ranking changes when only the seed does. None with fewer than two seeds."""
    taus = [kendall_tau(a, b) for a, b in itertools.combinations(per_seed, 2)]
    taus = [t for t in taus if t is not None]
    return sum(taus) / len(taus) if taus else None
