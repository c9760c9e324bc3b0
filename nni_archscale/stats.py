"""The project's statistics, one implementation each: comparing two training recipes (or a predictor and a
measurement) over candidates and seeds. Pure Python where it can be; numpy for correlations, scipy only for
Student's t quantile (both imported where used, so that importing this module stays light).

* :func:`kendall_tau`: Kendall's tau-b between two rankings (exact ties; O(n^2), fine for searches of
  hundreds of candidates).
* :func:`pearson`: Pearson's r (None for fewer than 3 pairs or a constant variable); :func:`spearman`: Pearson's
  r of the average ranks.
* :func:`sample_sd`, :func:`mean_interval`: the mean of paired differences with its two-sided Student-t
  confidence interval.
* :func:`seed_tau`: the noise floor of a ranking: the mean tau between the rankings two seeds of one recipe give.
* Rankings among the best candidates (NAS-Bench-201, paper Fig. 4): :func:`mean_gain`, :func:`top_k_indices`,
  :func:`tau_top_k`, :func:`seed_tau_top_k` (the noise floor among the top-K%), :func:`pairwise_gaps`.
* Deciding several comparisons at once: :func:`normal_sf` (the one-sided p of a z statistic), :func:`holm_adjust`
  and :func:`holm` (Holm's step-down correction, Holm 1979).
* Fitting a predictor's constant without seeing the sample it is scored on: :func:`loo_centres` (each value's
  mean or median of the *other* values).
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b; None when fewer than 2 pairs or a constant variable. Vectorised over the n(n-1)/2 pairs
    (numpy sign matrices), so a bootstrap can call it thousands of times."""
    import numpy as np

    n = len(x)
    if n != len(y) or n < 2:
        return None
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    dx = np.sign(a[None, :] - a[:, None])[upper]
    dy = np.sign(b[None, :] - b[:, None])[upper]
    prod = dx * dy
    concordant, discordant = int(np.sum(prod > 0)), int(np.sum(prod < 0))
    ties_x = int(np.sum((dx == 0) & (dy != 0)))
    ties_y = int(np.sum((dy == 0) & (dx != 0)))
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


def pearson(x: Sequence[float], y: Sequence[float], constant: str = "ptp") -> float | None:
    """Pearson's r (``np.corrcoef``); None for fewer than 3 pairs or a constant variable.

    ``constant`` is how a constant variable is recognised: ``"ptp"`` (every value equal; the default) or
    ``"std"`` (``np.std == 0``). They differ only on a constant whose mean rounds off its value: its std is then
    about 1e-17, not 0, and r comes out as rounding noise (about 1e-16) instead of None. The ``nb201-lr`` and
    ``space-lr`` experiments were scored with ``"std"`` (their committed reports show such an r for the constant
    predictor), so they keep it.
    """
    import numpy as np

    a, b = np.asarray(x, float), np.asarray(y, float)
    if len(a) != len(b) or len(a) < 3:
        return None
    if constant == "ptp":
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            return None
    elif constant == "std":
        if not (np.std(a) > 0 and np.std(b) > 0):
            return None
    else:
        raise ValueError(f"constant must be 'ptp' or 'std', got {constant!r}")
    return float(np.corrcoef(a, b)[0, 1])


def average_ranks(x: Sequence[float]):
    """Ranks 1..n of ``x`` (a numpy array), ties given the mean of the ranks they span."""
    import numpy as np

    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho: :func:`pearson` of the average ranks; None for fewer than 3 values or a constant variable."""
    if len(a) != len(b) or len(a) < 3:
        return None
    return pearson(average_ranks(a), average_ranks(b))


def mean_gain(ours: Sequence[float], reference: Sequence[float]) -> float | None:
    """Mean of ``ours - reference`` over candidates (e.g. accuracy points); None for no candidates."""
    import numpy as np

    if len(ours) != len(reference):
        raise ValueError("gain needs two accuracy lists of the same length")
    if not ours:
        return None
    return float(np.mean(np.asarray(ours, float) - np.asarray(reference, float)))


def top_k_indices(reference: Sequence[float], k_percent: float) -> list[int]:
    """Indices of the top ``k_percent`` % candidates by ``reference`` (at least one; ties keep the earlier)."""
    n = len(reference)
    m = max(1, math.ceil(n * k_percent / 100.0 - 1e-9))
    order = sorted(range(n), key=lambda i: (-reference[i], i))
    return sorted(order[:m])


def tau_top_k(reference: Sequence[float], other: Sequence[float], ks: Sequence[float],
              min_cells: int = 3) -> dict[float, dict]:
    """Kendall tau-b between ``reference`` and ``other`` among the top-K% candidates by ``reference``, for each K
    in ``ks`` (paper Fig. 4 middle); ``tau`` is None when fewer than ``min_cells`` remain (two give only +-1)."""
    out = {}
    for k in ks:
        idx = top_k_indices(reference, k)
        tau = None
        if len(idx) >= min_cells:
            tau = kendall_tau([reference[i] for i in idx], [other[i] for i in idx])
        out[k] = {"cells": len(idx), "tau": tau}
    return out


def seed_tau_top_k(per_seed: Sequence[Sequence[float]], ks: Sequence[float],
                   min_cells: int = 3) -> dict[float, dict]:
    """Seed-vs-seed Kendall tau among the top-K% candidates (by the seeds' mean), averaged over seed pairs: the
    noise floor of :func:`tau_top_k` (paper App. E.4)."""
    import numpy as np

    seeds = [list(s) for s in per_seed]
    if len(seeds) < 2:
        return {k: {"cells": None, "tau": None, "pairs": 0} for k in ks}
    mean = list(np.mean(np.asarray(seeds, float), axis=0))
    out = {}
    for k in ks:
        idx = top_k_indices(mean, k)
        taus = []
        if len(idx) >= min_cells:
            for a, b in itertools.combinations(range(len(seeds)), 2):
                t = kendall_tau([seeds[a][i] for i in idx], [seeds[b][i] for i in idx])
                if t is not None:
                    taus.append(t)
        out[k] = {"cells": len(idx), "tau": float(np.mean(taus)) if taus else None, "pairs": len(taus)}
    return out


def pairwise_gaps(values: Sequence[float]) -> list[float]:
    """|v_i - v_j| over every pair of candidates (paper Fig. 4 right)."""
    return [abs(a - b) for a, b in itertools.combinations(values, 2)]


def normal_sf(z: float) -> float:
    """``1 - Phi(z)``, the standard normal upper tail: the one-sided p of a z statistic, ``erfc(z / sqrt 2) / 2``
    (exact in the tails, where ``1 - cdf`` would round to 0). ``normal_sf(2) = 0.02275``: "more than twice the
    standard error" read as a one-sided z test."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given (S. Holm, "A simple sequentially rejective multiple test
    procedure", Scandinavian Journal of Statistics 6(2):65-70, 1979).

    With the ``m`` p-values sorted, ``p_(1) <= ... <= p_(m)``, the adjusted value of the ``i``-th smallest is

        p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j)),

    so that ``p~_(i) <= alpha`` exactly when Holm's step-down test rejects ``H_(i)``: it rejects ``H_(1)``,
    ``H_(2)``, ... while ``p_(j) <= alpha / (m - j + 1)`` and stops at the first ``j`` where that fails. The
    family-wise error rate is at most ``alpha`` whatever the dependence between the tests. One p-value is left
    as it is (``m = 1``); no p-values give an empty list."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down decisions at family-wise level ``alpha`` (:func:`holm_adjust`), in the order given: True
    where the hypothesis is rejected. Strict (adjusted p below ``alpha``), so that one test at
    ``alpha = normal_sf(k)`` is exactly the rule "the z statistic exceeds k"."""
    return [p < alpha for p in holm_adjust(p_values)]


def loo_centres(values: Sequence[float], centre: str = "mean"):
    """For each ``i``, the mean (``centre="mean"``) or the median (``"median"``) of the values other than
    ``values[i]`` (a numpy array): a leave-one-out constant, fitted without the sample it is then scored on.

    The leave-one-out mean is ``(sum - x_i) / (n - 1)``: it moves by ``(mean - x_i) / (n - 1)``, smoothly and
    the same way for any predictor. The leave-one-out median of values on a coarse grid (quarter octaves) can jump
    by a whole grid step depending on which side of the median ``x_i`` lies, and whether it jumps depends on how
    many values tie at the median, i.e. on the predictor: it can manufacture a difference between two predictors
    that does not exist (issue 23.5)."""
    import numpy as np

    x = np.asarray(values, float)
    n = len(x)
    if n < 2:
        raise ValueError(f"a leave-one-out centre needs at least 2 values, got {n}")
    if centre == "mean":
        return (x.sum() - x) / (n - 1)
    if centre == "median":
        return np.array([np.median(np.delete(x, i)) for i in range(n)])
    raise ValueError(f"centre must be 'mean' or 'median', got {centre!r}")
