"""The three-arm NAS test (issue 17.3), scored from an ``archscale experiment nb201`` run's ``runs.csv``.

Arms: ``benchmark`` (NAS-Bench-201's recipe: PyTorch's init, lr 0.1 for every cell), ``shared`` (one rate for
every cell, tuned on the base network by the project's calibration, He's init: the best simple alternative a
user has, with the same tuning budget as ours) and ``archscale`` (what the product applies to NNI's
NasBench201). Reported, as stated in ``reports/nb201-3arm/PREREGISTRATION.md`` before the runs:

* the paired accuracy gain of ``archscale`` over ``shared`` (seed-averaged per cell), its mean and Student-t 95%
  interval over cells; the same for ``archscale`` and ``shared`` over ``benchmark``;
* each arm's Kendall tau against the published NAS-Bench-201 ranking (CIFAR-10, 200 epochs) and each arm's
  seed-vs-seed tau (the noise floor of a ranking).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from ..errors import ArchScaleError
from ..results import atomic_write_text
from ..stats import kendall_tau, mean_interval, seed_tau
from .hand_written import write_keeping_reading

ARMS = ("benchmark", "shared", "archscale")
PAIRS = (("archscale", "shared"), ("archscale", "benchmark"), ("shared", "benchmark"))
#: where the part of THREE-ARM.md written by hand after the run begins: kept when the report is rewritten
HAND_WRITTEN = "## Reading (written after the run)"


def score(runs_csv: Path) -> dict:
    """Every statistic of the three-arm test from ``runs.csv`` (failed runs count at their recorded accuracy,
    chance for ``no-path``, as the benchmark's table scores them)."""
    rows = list(csv.DictReader(Path(runs_csv).open()))
    arms = [a for a in ARMS if any(r["recipe"] == a for r in rows)]
    cells = sorted({int(r["cell"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    acc = {(int(r["cell"]), r["recipe"], int(r["seed"])): float(r["accuracy"]) for r in rows}
    published = {int(r["cell"]): (float(r["published"]) if r["published"] not in ("", "None") else None)
                 for r in rows}
    missing = [(c, a, s) for c in cells for a in arms for s in seeds if (c, a, s) not in acc]
    if missing:
        raise ArchScaleError(f"{runs_csv} lacks {len(missing)} (cell, arm, seed) run(s), e.g. {missing[0]}: the run "
                             f"was interrupted; rerun it (the arms are compared on the same cells and seeds)")
    mean = {a: [sum(acc[(c, a, s)] for s in seeds) / len(seeds) for c in cells] for a in arms}
    out: dict = {"cells": len(cells), "seeds": len(seeds), "arms": arms, "gains": {}, "tau_published": {},
                 "seed_tau": {}, "mean_accuracy": {a: sum(mean[a]) / len(cells) for a in arms},
                 "statuses": {a: {st: sum(1 for r in rows if r["recipe"] == a and r["status"] == st)
                                  for st in sorted({r["status"] for r in rows})} for a in arms}}
    for a, b in PAIRS:
        if a in mean and b in mean:
            diffs = [x - y for x, y in zip(mean[a], mean[b])]
            m, ci = mean_interval(diffs)
            out["gains"][f"{a} - {b}"] = {"mean": m, "ci95": ci,
                                         "better_cells": sum(d > 0 for d in diffs),
                                         "worse_cells": sum(d < 0 for d in diffs)}
    with_pub = [i for i, c in enumerate(cells) if published[c] is not None]
    for a in arms:
        out["tau_published"][a] = kendall_tau([mean[a][i] for i in with_pub],
                                              [published[cells[i]] for i in with_pub]) if with_pub else None
        out["seed_tau"][a] = seed_tau([[acc[(c, a, s)] for c in cells] for s in seeds])
    return out


def verdict(stats: dict) -> str:
    g = stats["gains"].get("archscale - shared")
    if not g or g["ci95"] is None:
        return "no verdict: the archscale and shared arms are not both present with two or more cells"
    lo, hi = g["ci95"]
    if lo > 0:
        return f"archscale beats one tuned shared rate: +{g['mean']:.2f} points, 95% interval {lo:+.2f}..{hi:+.2f}"
    if hi < 0:
        return f"archscale is worse than one tuned shared rate: {g['mean']:+.2f} points, 95% interval {lo:+.2f}..{hi:+.2f}"
    return (f"no clear difference from one tuned shared rate: {g['mean']:+.2f} points, 95% interval "
            f"{lo:+.2f}..{hi:+.2f} includes 0")


def write_report(out_dir: Path, stats: dict, header: str = "") -> str:
    lines = ["# The three-arm NAS test: NB201 cells retrained by the benchmark's recipe, one tuned shared rate, "
             "and archscale", "", __doc__.split("\n\n", 1)[1].strip(), ""]
    if header:
        lines += [header, ""]
    lines += [f"**Verdict (the pre-registered primary comparison): {verdict(stats)}.**", "",
              f"{stats['cells']} cells x {stats['seeds']} seeds per arm.", "",
              "| arm | mean accuracy (%) | tau vs published ranking | seed-vs-seed tau | outcomes |", "|---|---|---|---|---|"]
    for a in stats["arms"]:
        tp, st = stats["tau_published"][a], stats["seed_tau"][a]
        lines.append(f"| `{a}` | {stats['mean_accuracy'][a]:.2f} | {'n/a' if tp is None else f'{tp:.3f}'} | "
                     f"{'n/a' if st is None else f'{st:.3f}'} | "
                     + ", ".join(f"{k} {v}" for k, v in stats["statuses"][a].items()) + " |")
    lines += ["", "| paired gain (points, seed-averaged per cell) | mean | 95% interval | better / worse cells |",
              "|---|---|---|---|"]
    for name, g in stats["gains"].items():
        ci = "n/a" if g["ci95"] is None else f"{g['ci95'][0]:+.2f}..{g['ci95'][1]:+.2f}"
        lines.append(f"| {name} | {g['mean']:+.2f} | {ci} | {g['better_cells']} / {g['worse_cells']} |")
    text = "\n".join(lines) + "\n"
    write_keeping_reading(out_dir / "THREE-ARM.md", text, HAND_WRITTEN)
    atomic_write_text(out_dir / "three_arm.json", json.dumps(stats, indent=2) + "\n")
    return text
