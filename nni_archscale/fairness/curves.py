"""Reading accuracy-vs-rate curves: the oracle, the arms, the constants, with cross-fitting. Pure numpy.

A candidate's *curve* is its validation accuracy after the search's budget at every rate of a half-octave grid,
once per seed (``acc[seed, rate]``; a diverged run scores chance accuracy, as ``archscale search`` reports it).
Everything here is a function of the curves; nothing trains.

* **Reading a rate off a curve** (:func:`read_at`): linear interpolation in log2(rate) between the two grid
  points around it (accuracy is smooth in log-rate at half-octave spacing; a rate on a grid point reads that
  point exactly). A rate outside the trained range reads the nearest end point and is counted as *off-grid*
  (:func:`off_grid`): for a rate below a curve that still rises that is an optimistic reading, so a win that
  rests on one is not counted (:mod:`.score`).
* **The oracle** (:func:`oracle`): the candidate's best grid rate by mean accuracy over seeds, and its accuracy
  *cross-fitted*: the rate is chosen on all seeds but one and its accuracy read on the left-out seed, rotating
  over seeds and averaging. Choosing and reading on the same seeds would inflate the oracle by the winner's
  curse (the best of several noisy readings overestimates its own mean).
* **Arms** (:func:`read_arm`): a rule's rate for each candidate, read off the curve and averaged over seeds. A
  rate that involved no choice on these candidates' curves needs no cross-fitting.
* **Constants fitted on the candidates** (:func:`crossfit_shift`): a rule's shape (its log-rates up to one
  additive constant, the *level*) with the level chosen to maximise the mean accuracy over the candidates, on a
  1/16-octave grid of shifts; fitted on all seeds but one and read on the left-out seed, rotating. Every arm,
  one shared rate included, is fitted by this one function: no arm gets a different estimator (a quantised
  leave-one-out median once manufactured a win, issue 23).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..torch_layer.sweep import BestAccuracy

#: the shifts a fitted constant may take, in octaves (1/16-octave steps)
#: what a curve's best rate is: the highest (seed-mean) accuracy at the search's budget
OBJECTIVE = BestAccuracy()
SHIFT_STEP = 1.0 / 16.0
SHIFT_RANGE = 8.0


@dataclass(frozen=True)
class Curve:
    """One candidate's accuracy after the budget: ``acc[s, j]`` at seed ``s`` and rate ``2 ** log_rates[j]``
    (ascending)."""

    key: str
    log_rates: np.ndarray
    acc: np.ndarray

    def __post_init__(self):
        lr = np.asarray(self.log_rates, dtype=float)
        acc = np.asarray(self.acc, dtype=float)
        if acc.ndim != 2 or acc.shape[1] != lr.shape[0] or lr.shape[0] < 1:
            raise ValueError(f"curve {self.key}: acc must be (seeds, rates) with one column per rate; got "
                             f"{acc.shape} for {lr.shape[0]} rates")
        if np.any(np.diff(lr) <= 0):
            raise ValueError(f"curve {self.key}: rates must be strictly ascending")
        if not np.all(np.isfinite(acc)):
            raise ValueError(f"curve {self.key}: every accuracy must be finite (score a diverged run at chance)")
        object.__setattr__(self, "log_rates", lr)
        object.__setattr__(self, "acc", acc)

    @property
    def seeds(self) -> int:
        return self.acc.shape[0]

    def mean(self, seeds: Sequence[int] | None = None) -> np.ndarray:
        """Mean accuracy over ``seeds`` (default all) at each grid rate."""
        rows = self.acc if seeds is None else self.acc[list(seeds)]
        return rows.mean(axis=0)


def read_at(log_rates: np.ndarray, values: np.ndarray, x) -> np.ndarray:
    """``values`` (one per grid point of ascending ``log_rates``) read at log2-rate(s) ``x``: linear interpolation
    in log-rate between neighbouring grid points, the end value outside the grid (see :func:`off_grid`)."""
    return np.interp(np.asarray(x, dtype=float), log_rates, values)


def off_grid(curve: Curve, x: float, tolerance: float = 1e-9) -> bool:
    """Whether log2-rate ``x`` lies outside the rates ``curve`` was trained at."""
    return bool(x < curve.log_rates[0] - tolerance or x > curve.log_rates[-1] + tolerance)


def best_index(values: np.ndarray) -> int:
    """The grid index of the highest value; ties go to the lowest rate among them (the most conservative): the
    engine's accuracy objective (:class:`~nni_archscale.torch_layer.sweep.BestAccuracy`)."""
    return OBJECTIVE.index(np.asarray(values).tolist())


def best_rate(curve: Curve) -> float:
    """The grid rate with the best mean accuracy over all seeds (:func:`best_index`'s tie rule)."""
    return float(2.0 ** curve.log_rates[best_index(curve.mean())])


@dataclass(frozen=True)
class Oracle:
    """Per candidate: the best grid log2-rate on all seeds, its accuracy read on the same seeds (``in_sample``,
    inflated by selection) and cross-fitted (``accuracy``: chosen on the other seeds, read on the left-out one),
    and whether the best rate is interior to the grid."""

    log_rate: np.ndarray
    accuracy: np.ndarray
    in_sample: np.ndarray
    interior: np.ndarray


def oracle(curves: Sequence[Curve]) -> Oracle:
    """Each candidate's oracle (see the module docstring). Needs at least two seeds per curve."""
    rates, acc, naive, interior = [], [], [], []
    for c in curves:
        if c.seeds < 2:
            raise ValueError(f"curve {c.key}: the cross-fitted oracle needs at least 2 seeds, got {c.seeds}")
        j = best_index(c.mean())
        rates.append(c.log_rates[j])
        naive.append(c.mean()[j])
        interior.append(0 < j < len(c.log_rates) - 1)
        held = []
        for s in range(c.seeds):
            others = [t for t in range(c.seeds) if t != s]
            held.append(c.acc[s, best_index(c.mean(others))])
        acc.append(float(np.mean(held)))
    return Oracle(np.array(rates), np.array(acc), np.array(naive), np.array(interior, dtype=bool))


def read_arm(curves: Sequence[Curve], log_rates: Sequence[float], seeds: Sequence[int] | None = None) -> np.ndarray:
    """Each candidate's mean accuracy over ``seeds`` (default all) at its arm's log2-rate (:func:`read_at`)."""
    if len(log_rates) != len(curves):
        raise ValueError(f"need one rate per candidate ({len(curves)}), got {len(log_rates)}")
    return np.array([float(read_at(c.log_rates, c.mean(seeds), x)) for c, x in zip(curves, log_rates)])


def shifts() -> np.ndarray:
    """The constants a fit may choose, as log2 shifts: -SHIFT_RANGE..SHIFT_RANGE in SHIFT_STEP steps."""
    n = int(round(SHIFT_RANGE / SHIFT_STEP))
    return np.arange(-n, n + 1) * SHIFT_STEP


def fit_shift(curves: Sequence[Curve], log_rates: Sequence[float], seeds: Sequence[int] | None = None,
              members: Sequence[int] | None = None) -> float:
    """The shift ``d`` (octaves) that maximises the mean accuracy of ``members`` (default all candidates) over
    ``seeds`` at log-rates ``log_rates + d``. Among equally good shifts, the middle one (a plateau's centre, so
    that the fit does not lean to one end of a flat optimum)."""
    members = range(len(curves)) if members is None else members
    ds = shifts()
    means = [c.mean(seeds) for c in curves]
    score = np.zeros_like(ds)
    for i in members:
        score += read_at(curves[i].log_rates, means[i], log_rates[i] + ds)
    best = np.flatnonzero(np.isclose(score, score.max(), rtol=0, atol=1e-12))
    return float(ds[best[len(best) // 2]])


def crossfit_shift(curves: Sequence[Curve], log_rates: Sequence[float],
                   members: Sequence[int] | None = None) -> tuple[np.ndarray, list[float]]:
    """``(accuracy per candidate, shift per fold)``: the level fitted (:func:`fit_shift`, on ``members``' curves)
    on all seeds but one and the accuracy read on the left-out seed at ``log_rates + shift``, averaged over the
    left-out seeds. All curves must have the same number of seeds."""
    k = curves[0].seeds
    if any(c.seeds != k for c in curves):
        raise ValueError("cross-fitting needs every candidate trained over the same seeds")
    base = np.asarray(log_rates, dtype=float)
    acc = np.zeros(len(curves))
    folds = []
    for s in range(k):
        d = fit_shift(curves, base, [t for t in range(k) if t != s], members)
        folds.append(d)
        acc += read_arm(curves, base + d, [s])
    return acc / k, folds


def population_shift(curves: Sequence[Curve], log_rates: Sequence[float], size: int, draws: int = 20,
                     seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """The *population* objective for a base rate: the level that maximises the mean accuracy of a small sample
    of ``size`` candidates (what a user can afford to tune on), judged on the candidates outside that sample.
    ``draws`` random samples; for each, the level is fitted on the sample's curves on all seeds but one and read
    on the other candidates' left-out seed (rotating). A candidate's accuracy is its mean over the draws that left
    it out. Returns ``(accuracy per candidate, fitted shifts)``."""
    n = len(curves)
    if not 1 <= size < n:
        raise ValueError(f"the population sample must hold 1..{n - 1} candidates, got {size}")
    rng = np.random.default_rng(seed)
    k = curves[0].seeds
    total, count, fitted = np.zeros(n), np.zeros(n), []
    base = np.asarray(log_rates, dtype=float)
    for _ in range(draws):
        sample = rng.choice(n, size=size, replace=False)
        outside = np.setdiff1d(np.arange(n), sample)
        for s in range(k):
            d = fit_shift(curves, base, [t for t in range(k) if t != s], sample)
            fitted.append(d)
            read = read_arm([curves[i] for i in outside], base[outside] + d, [s])
            total[outside] += read / k
        count[outside] += 1
    if np.any(count == 0):
        raise ValueError("some candidate was in every population sample; raise draws")
    return total / count, fitted


def seed_noise_at_oracle(curves: Sequence[Curve], orc: Oracle) -> list[list[float]]:
    """``per_seed[s][i]``: candidate ``i``'s accuracy at seed ``s`` at its oracle rate (for the seed-vs-seed tau,
    the noise floor of any ranking read off these curves)."""
    k = min(c.seeds for c in curves)
    idx = [int(np.flatnonzero(np.isclose(c.log_rates, x))[0]) for c, x in zip(curves, orc.log_rate)]
    return [[float(c.acc[s, j]) for c, j in zip(curves, idx)] for s in range(k)]
