"""How far below divergence each network's best rate sits, and how the rate follows the output's second moment.

For every (init, optimizer) pair of finished lr-prediction runs (``runs.csv``): per network and seed, the best
rate (lowest final loss) and the first rate of the grid whose training diverged (infinite loss); the gap between
them in octaves, averaged over seeds and networks; and, pooled over the runs given, the least-squares slope of
log2(measured rate / base rate) and of ``feature-sgd``'s log2 prediction on log2(E[z_out^2] / base), where
E[z_out^2] is the output node's second moment at init (:mod:`nni_archscale.rules.first_step`); and how well
``1 / sqrt(Theta_h)`` (the hidden first-step kernel's root), ``feature-sgd`` and ``second-step-sgd`` predict each
network's divergence rate relative to the base network's (mean absolute error in octaves, SGD pairs).

    python scripts/divergence_margin.py reports/beyond-paper/heldout3-w128 reports/beyond-paper/heldout4-w256
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from nni_archscale.core.networks import CellNetwork
from nni_archscale.core.formats import from_paper_code
from nni_archscale.experiments.rule_variants import rule_multiplier
from nni_archscale.rules.first_step import BASE_CELL_CODE, first_step_kernel, cell_init
from nni_archscale.stats import pearson

IN_FEATURES = {"mnist14": 196, "mnist": 784, "digits": 64}


def _curves(run_dir: Path) -> dict:
    """pair -> arch -> seed -> [(rate, final loss)] sorted by rate."""
    curves: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    with (run_dir / "runs.csv").open() as fh:
        for row in csv.DictReader(fh):
            curves[f"{row['init']}/{row['optimizer']}"][row["arch"]][row["seed"]].append(
                (float(row["rate"]), float(row["final_loss"])))
    for archs in curves.values():
        for seeds in archs.values():
            for rows in seeds.values():
                rows.sort()
    return curves


def _first_diverged(rows: list[tuple[float, float]]) -> float | None:
    return next((rate for rate, loss in rows if not math.isfinite(loss)), None)


def margins(run_dir: Path) -> dict[str, dict[str, float]]:
    """pair -> arch -> mean over seeds of log2(first diverged rate / best rate); nan where nothing diverged."""
    out: dict = {}
    for pair, archs in _curves(run_dir).items():
        out[pair] = {}
        for arch, seeds in archs.items():
            gaps = []
            for rows in seeds.values():
                best = min(rows, key=lambda r: r[1])[0]
                diverged = _first_diverged(rows)
                if diverged is not None:
                    gaps.append(math.log2(diverged / best))
            out[pair][arch] = float(np.mean(gaps)) if gaps else float("nan")
    return out


def divergence_errors(run_dir: Path, pair: str) -> dict[str, float]:
    """Mean abs error (octaves) of three predictors of each network's divergence rate (geometric mean over the
    seeds that diverged), relative to the base network's, for the networks of ``run_dir`` other than the base."""
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = summary["config"]
    init, optimizer = pair.split("/")
    width, in_features = cfg["width"], IN_FEATURES[cfg["data"]]
    log_div = {}
    for arch, seeds in _curves(run_dir)[pair].items():
        rates = [r for r in (_first_diverged(rows) for rows in seeds.values()) if r is not None]
        if rates:
            log_div[arch] = float(np.mean(np.log2(rates)))
    base_arch = BASE_CELL_CODE if BASE_CELL_CODE in log_div else min(log_div, key=len)  # chains: "2"

    def predictors(code: str) -> dict[str, float]:
        cell = from_paper_code(code)
        k = first_step_kernel(cell_init(CellNetwork(cell, in_features, width, 10), init))
        rules = {r: rule_multiplier(r, CellNetwork(cell, in_features, width, 10), init, optimizer)
                 for r in ("feature-sgd", "second-step-sgd")}
        return {"1/sqrt(Theta_h)": k.hidden_centered2 ** -0.5, **rules}

    base = predictors(base_arch)
    errors: dict = defaultdict(list)
    for arch, value in log_div.items():
        if arch == base_arch:
            continue
        for name, pred in predictors(arch).items():
            errors[name].append(abs(math.log2(pred / base[name]) - (value - log_div[base_arch])))
    return {name: float(np.mean(e)) for name, e in errors.items()}


def slopes(run_dirs: list[Path], pair: str) -> tuple[float, float, float, int]:
    """(measured slope, feature-sgd slope, Pearson r of feature-sgd against the measurement, networks): slopes of
    log2 rate on log2 E[z_out^2], both relative to the base."""
    init, optimizer = pair.split("/")
    xs, measured, predicted = [], [], []
    for d in run_dirs:
        summary = json.loads((d / "summary.json").read_text())
        if pair not in summary["pairs"]:
            continue
        cfg, data = summary["config"], summary["pairs"][pair]
        width, in_features = cfg["width"], IN_FEATURES[cfg["data"]]
        with (d / "predictions.csv").open() as fh:
            archs = list(dict.fromkeys(row["arch"] for row in csv.DictReader(fh)))

        def second_moment(code: str) -> float:
            spec = cell_init(CellNetwork(from_paper_code(code), in_features, width, 10), init)
            return first_step_kernel(spec).output_second_moment

        base = second_moment(BASE_CELL_CODE)
        for arch, rate in zip(archs, data["measured"]):
            xs.append(math.log2(second_moment(arch) / base))
            measured.append(math.log2(rate / data["base_max_lr"]))
            net = CellNetwork(from_paper_code(arch), in_features, width, 10)
            predicted.append(math.log2(rule_multiplier("feature-sgd", net, init, optimizer)))
    r = pearson(predicted, measured, constant="std")  # np.corrcoef gave NaN for a variable whose std is 0
    r = float("nan") if r is None else r
    if len(xs) < 2 or np.ptp(xs) < 1e-6:  # the exact init: E[z_out^2] is the same for every cell
        return float("nan"), float("nan"), r, len(xs)
    return float(np.polyfit(xs, measured, 1)[0]), float(np.polyfit(xs, predicted, 1)[0]), r, len(xs)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    dirs = [Path(a) for a in argv]
    pairs: list[str] = []
    for d in dirs:
        for pair, archs in margins(d).items():
            gaps = [g for g in archs.values() if math.isfinite(g)]
            gap = f"{np.mean(gaps):.2f} octaves below divergence" if gaps else "(no network diverged on the grid)"
            print(f"{d}  {pair:11s} best rate {gap} ({len(gaps)} of {len(archs)} networks diverged)")
            if gaps and pair.endswith("/sgd") and pair.split("/")[0] in ("paper", "exact"):
                errors = divergence_errors(d, pair)
                print("    divergence rate predicted by " + ", ".join(f"{k} {v:.2f}" for k, v in errors.items()))
            pairs += [pair] if pair not in pairs else []
    for pair in pairs:
        if pair.split("/")[0] in ("paper", "exact"):
            m, f, r, n = slopes(dirs, pair)
            if math.isnan(m):
                print(f"pooled {pair:11s} E[z_out^2] does not vary across these networks ({n}); "
                      f"feature-sgd r = {r:.2f}")
                continue
            print(f"pooled {pair:11s} log2 rate per log2 E[z_out^2]: measured {m:+.2f}, feature-sgd {f:+.2f}; "
                  f"feature-sgd r = {r:.2f} ({n} networks)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
