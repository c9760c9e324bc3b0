"""Pool a rule's per-cell errors over several finished lr-prediction runs (issue 7's pooled tables).

Each run's ``predictions.csv`` holds, per network, a rule's prediction (the base network's measured rate times the
rule's multiplier) and the measured maximal rate. This pools ``|log2 predicted - log2 measured|`` over the runs
given, for one (init, optimizer) pair, and prints the mean in octaves with its standard error over networks, the
mean signed error and the Pearson r of the logs. Without ``--rule`` the rule is the project's default for the pair
(:func:`nni_archscale.rules.defaults.default_rule`); ``standard`` (one shared rate) is always printed beside it.

    python scripts/pooled_errors.py --pair paper/sgd reports/beyond-paper/heldout9-w256 reports/beyond-paper/confirm10-w256

With ``--decide`` it also applies the project's decision rule (:func:`nni_archscale.experiments.decision.decide`)
to the rule against one shared rate, paired by network: the rule stays the default only if it beats one shared
rate by more than twice the standard error of the paired difference.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np

from nni_archscale.rules.defaults import default_rule
from nni_archscale.errors import RuleError
from nni_archscale.stats import pearson


def per_cell(run_dir: Path, init: str, optimizer: str, rule: str, keyed: bool = False) -> list:
    """(log2 predicted, log2 measured) for every network of the run that ``rule`` predicted; with ``keyed``,
    ``((run, arch, kernel), (log2 predicted, log2 measured))`` pairs, to pair two rules network by network."""
    out = []
    with (run_dir / "predictions.csv").open() as fh:
        for row in csv.DictReader(fh):
            if (row["init"], row["optimizer"], row["rule"]) == (init, optimizer, rule):
                v = (math.log2(float(row["predicted"])), math.log2(float(row["measured"])))
                out.append(((str(run_dir), row["arch"], row["kernel_size"]), v) if keyed else v)
    return out


def decision(run_dirs: list[Path], pair: str, rule: str):
    """The decision rule applied to ``rule`` (challenger) against ``standard`` (one shared rate, incumbent),
    on the networks both predicted; None when they share fewer than two."""
    from nni_archscale.experiments.decision import decide

    init, optimizer = pair.split("/")
    ours = {k: abs(p - m) for d in run_dirs for k, (p, m) in per_cell(d, init, optimizer, rule, keyed=True)}
    shared = {k: abs(p - m) for d in run_dirs for k, (p, m) in per_cell(d, init, optimizer, "standard", keyed=True)}
    keys = [k for k in ours if k in shared]
    if len(keys) < 2:
        return None
    return decide([shared[k] for k in keys], [ours[k] for k in keys])


def pooled(run_dirs: list[Path], pair: str, rule: str) -> dict:
    """Mean absolute error (octaves), its standard error, mean signed error, Pearson r and the number of
    networks, pooled over ``run_dirs``; ``cells`` 0 when no run holds the pair and rule."""
    init, optimizer = pair.split("/")
    rows = [x for d in run_dirs for x in per_cell(d, init, optimizer, rule)]
    if not rows:
        return {"cells": 0}
    p, m = np.array(rows).T
    err = p - m
    r = pearson(p, m)
    r = float("nan") if r is None else r
    se = float(np.std(np.abs(err), ddof=1) / math.sqrt(len(err))) if len(err) > 1 else float("nan")
    return {"cells": len(rows), "mean_abs": float(np.mean(np.abs(err))), "se": se,
            "signed": float(np.mean(err)), "r": r}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pair", required=True, help="init/optimizer, e.g. paper/sgd")
    ap.add_argument("--rule", help="a rule column of predictions.csv (default: the project's default for the pair)")
    ap.add_argument("--decide", action="store_true",
                    help="apply the decision rule: the rule against one shared rate, paired by network")
    ap.add_argument("runs", nargs="+", type=Path, help="lr-prediction output folders")
    args = ap.parse_args(argv)
    if args.pair.count("/") != 1:
        ap.error(f"--pair {args.pair!r}: use init/optimizer, e.g. paper/sgd")
    missing = [str(d) for d in args.runs if not (d / "predictions.csv").is_file()]
    if missing:
        ap.error(f"no predictions.csv in {', '.join(missing)}: pass lr-prediction output folders")
    try:
        rule = args.rule or default_rule(*args.pair.split("/"))
    except RuleError as exc:
        ap.error(f"--pair {args.pair!r}: {exc}")
    for name in dict.fromkeys([rule, "standard"]):
        s = pooled(args.runs, args.pair, name)
        if not s["cells"]:
            print(f"{args.pair} {name}: no predictions in these runs")
            continue
        print(f"{args.pair} {name:18s} {s['mean_abs']:.2f} ± {s['se']:.2f} octaves (signed {s['signed']:+.2f}, "
              f"r {s['r']:.2f}, {s['cells']} networks)")
    if args.decide and rule != "standard":
        d = decision(args.runs, args.pair, rule)
        print(f"{args.pair} decision: " + ("too few networks" if d is None else d.describe("standard", rule)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
