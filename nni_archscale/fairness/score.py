"""Scoring arms against the oracle: regret, headroom, share recovered, rate distance, rankings, intervals, decisions.

Definitions (issue 23), per candidate ``i`` and arm ``a``:

* regret ``r_a(i)`` = oracle accuracy (cross-fitted, :func:`.curves.oracle`) minus the arm's accuracy;
* **headroom** = the mean regret of one shared rate; an arm's **share of the headroom** =
  ``1 - mean r_a / mean r_shared`` (1: as good as every candidate's own best rate; 0: no better than one rate);
* rate distance = ``|log2 rate_a(i) - log2 oracle rate(i)|`` (octaves; median and mean);
* Kendall tau between the arm's accuracies and the oracle's, over all candidates and over the oracle's top
  quarter; whether the arm's best candidate is among the oracle's top 3; tau with each published table;
* each with a 95% percentile-bootstrap interval over candidates (resampled with replacement, paired across arms).

The noise floor printed beside every tau is the seed-vs-seed tau at the oracle rate
(:func:`.curves.seed_noise_at_oracle`, :func:`nni_archscale.stats.seed_tau`).

**Decision rule** (:func:`decide_all`): a rule replaces one shared rate only if its mean regret is lower than the
shared arm's by more than twice the paired standard error over candidates, Holm-corrected across every decision
listed: each decision is the one-sided z test ``z = (mean r_shared - mean r_rule) / SE`` at level
``alpha = 1 - Phi(2)`` (the 2-SE rule), Holm's step-down over the m decisions (Holm 1979: sort the p-values,
reject the j-th smallest while ``p_(j) <= alpha / (m - j + 1)``). A rule whose reading needed a rate outside
some candidate's trained grid cannot win (that reading may be optimistic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..stats import holm, kendall_tau, normal_sf, seed_tau

#: the bootstrap's resamples and its seed (fixed: a report regenerates identically)
BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
#: one-sided level of the 2-SE rule: 1 - Phi(2)
ALPHA_2SE = normal_sf(2.0)


@dataclass
class Arm:
    """One way of setting each candidate's rate: its per-candidate log2 rates and accuracies, how its level was
    set (``level``: ``product`` (from the base network at this budget), ``maxlr`` (the paper's one-epoch
    calibration), ``population``, ``hindsight``, ``fixed``), and how many readings fell off a trained grid."""

    name: str
    rule: str
    level: str
    log_rates: np.ndarray
    accuracy: np.ndarray
    off_grid: int = 0
    trained: bool = False      # its own training (another init), not read off the grid
    notes: list[str] = field(default_factory=list)


def bootstrap_interval(stat: Callable[[np.ndarray], float | None], n: int, resamples: int = BOOTSTRAP,
                       seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> list[float] | None:
    """The percentile interval of ``stat(indices)`` over ``resamples`` resamples of ``range(n)`` with
    replacement (None where the statistic is undefined on more than half of them)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        v = stat(rng.integers(0, n, n))
        if v is not None and math.isfinite(v):
            values.append(v)
    if len(values) < resamples / 2:
        return None
    lo, hi = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(lo), float(hi)]


def top_quarter(values: np.ndarray) -> np.ndarray:
    """Indices of the top quarter (at least 2) of ``values``."""
    k = max(2, int(math.ceil(len(values) / 4)))
    return np.argsort(-values, kind="stable")[:k]


def _tau_on(idx: np.ndarray, a: np.ndarray, b: np.ndarray) -> float | None:
    return kendall_tau(a[idx].tolist(), b[idx].tolist())


def _with_interval(stat: Callable[[np.ndarray], float | None], n: int) -> dict:
    full = stat(np.arange(n))
    return {"value": None if full is None else float(full), "ci95": bootstrap_interval(stat, n)}


def paired_difference(diff: np.ndarray) -> tuple[float, float]:
    """The mean of per-candidate paired differences and its standard error (sample sd / sqrt n)."""
    n = len(diff)
    return float(np.mean(diff)), float(np.std(diff, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def arm_metrics(arm: Arm, oracle_acc: np.ndarray, oracle_log_rate: np.ndarray, shared: Arm | None = None,
                published: dict[str, np.ndarray] | None = None) -> dict:
    """Every metric of the module docstring for one arm, each ``{"value", "ci95"}``."""
    n = len(oracle_acc)
    regret = oracle_acc - arm.accuracy
    distance = np.abs(arm.log_rates - oracle_log_rate)
    top = top_quarter(oracle_acc)
    out = {
        "arm": arm.name, "rule": arm.rule, "level": arm.level, "trained": arm.trained, "off_grid": arm.off_grid,
        "notes": list(arm.notes),
        "mean_accuracy": _with_interval(lambda i: float(np.mean(arm.accuracy[i])), n),
        "regret": _with_interval(lambda i: float(np.mean(regret[i])), n),
        "rate_distance_median": _with_interval(lambda i: float(np.median(distance[i])), n),
        "rate_distance_mean": _with_interval(lambda i: float(np.mean(distance[i])), n),
        "tau_oracle": _with_interval(lambda i: kendall_tau(arm.accuracy[i].tolist(), oracle_acc[i].tolist()), n),
        "tau_oracle_top_quarter": {"value": _tau_on(top, arm.accuracy, oracle_acc),
                                   "ci95": bootstrap_interval(
                                       lambda i: _tau_on(np.unique(i), arm.accuracy[top], oracle_acc[top]),
                                       len(top))},
        "best_in_oracle_top3": bool(int(np.argmax(arm.accuracy)) in set(np.argsort(-oracle_acc,
                                                                                   kind="stable")[:3].tolist())),
    }
    if shared is not None:
        base = oracle_acc - shared.accuracy

        def share(i):
            h = float(np.mean(base[i]))
            return None if h <= 0 else 1.0 - float(np.mean(regret[i])) / h

        out["share_of_headroom"] = _with_interval(share, n)
        diff = base - regret   # > 0: the arm's regret is lower than one shared rate's
        mean, se = paired_difference(diff)
        out["regret_vs_shared"] = {"difference": mean, "se": se,
                                   "ci95": bootstrap_interval(lambda i: float(np.mean(diff[i])), n)}
    for name, table in (published or {}).items():
        out[f"tau_published_{name}"] = _with_interval(
            lambda i, t=table: kendall_tau(arm.accuracy[i].tolist(), t[i].tolist()), n)
    return out


def noise_floor(per_seed: Sequence[Sequence[float]], top: np.ndarray | None = None) -> float | None:
    """The seed-vs-seed tau (all candidates, or those in ``top``)."""
    if top is not None:
        per_seed = [[row[i] for i in top] for row in per_seed]
    return seed_tau(per_seed)


def decide_all(decisions: Sequence[dict], alpha: float = ALPHA_2SE) -> list[dict]:
    """Apply the decision rule (module docstring) to ``decisions``, each ``{"name", "difference", "se",
    "off_grid"}`` (difference = shared regret minus the rule's, > 0 favours the rule). Returns them with ``z``,
    ``p`` (one-sided), ``holm_threshold`` and ``adopt``."""
    out = []
    for d in decisions:
        se = d["se"]
        z = d["difference"] / se if se and se > 0 else (math.inf if d["difference"] > 0 else -math.inf)
        p = normal_sf(z) if math.isfinite(z) else (0.0 if z > 0 else 1.0)
        out.append({**d, "z": z, "p": p})
    rejected = holm([d["p"] for d in out], alpha)
    m = len(out)
    order = sorted(range(m), key=lambda i: out[i]["p"])
    for rank, i in enumerate(order):
        out[i]["holm_threshold"] = alpha / (m - rank)
    for d, r in zip(out, rejected):
        d["adopt"] = bool(r and not d.get("off_grid"))
        if r and d.get("off_grid"):
            d["why_not"] = "significant, but some candidate's reading fell outside its trained grid"
    return out
