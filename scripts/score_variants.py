"""Score rule variants on finished lr-prediction runs, without training (issue 7's "tried and rejected" table).

Each variant is a product of the first-step kernels of :mod:`nni_archscale.rules.first_step` raised to 1 or 1/2
and, optionally, the path-mean depth factor. As in the experiment, the only anchor is the base cell's measured
rate. These variants were tried *after* seeing the runs they are scored on, so a good score here is a hypothesis
for a held-out run, not evidence.

    python scripts/score_variants.py reports/beyond-paper/topology-w128 reports/lr-prediction-mlp-depth ...
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from nni_archscale.core.networks import CellNetwork
from nni_archscale.core.formats import from_paper_code
from nni_archscale.experiments.rule_variants import multiplier, path_mean_depth_factor
from nni_archscale.rules.first_step import BASE_CELL_CODE

#: name -> (kernel rule, exponent, with the depth factor)
VARIANTS = {
    "sqrt-centered-sgd": ("centered-sgd", 0.5, False),
    "sqrt-centered-sgd x depth": ("centered-sgd", 0.5, True),
    "sqrt-centered-adam": ("centered-adam", 0.5, False),
    "sqrt-centered-adam x depth": ("centered-adam", 0.5, True),
    "sqrt-moment-adam x depth": ("moment-adam", 0.5, True),
    "centered-adam x depth": ("centered-adam", 1.0, True),
    "moment-adam x depth": ("moment-adam", 1.0, True),
    "depth factor alone": (None, 0.0, True),  # since adopted as the named rule ``path-mean-depth``
}


def variant(name: str, code: str, init: str, optimizer: str, width: int, in_features: int) -> float:
    rule, power, depth = VARIANTS[name]
    cell = from_paper_code(code)
    net = CellNetwork(cell, in_features, width, 10)
    value = 1.0 if rule is None else multiplier(rule, net, init, optimizer) ** power
    return value * (path_mean_depth_factor(cell) if depth else 1.0)


def score(run_dir: Path) -> list[tuple[str, str, float, float]]:
    """(pair, variant, mean abs error, mean signed error) in octaves, for every (init, optimizer) pair of a run
    whose init the kernels know (paper, exact)."""
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = summary["config"]
    if cfg["family"] == "cnn-kernel":
        raise SystemExit(f"{run_dir}: only MLP runs are scored (CNN cells carry kernel sizes)")
    in_features = {"mnist14": 196, "mnist": 784, "digits": 64}[cfg["data"]]
    with (run_dir / "predictions.csv").open() as fh:
        archs = list(dict.fromkeys(row["arch"] for row in csv.DictReader(fh)))
    out = []
    for pair, data in summary["pairs"].items():
        init, optimizer = pair.split("/")
        if init not in ("paper", "exact"):
            continue
        measured = np.log2(data["measured"])
        for name in VARIANTS:
            base = variant(name, BASE_CELL_CODE, init, optimizer, cfg["width"], in_features)
            pred = np.log2([data["base_max_lr"] * variant(name, a, init, optimizer, cfg["width"], in_features) / base
                            for a in archs])
            out.append((pair, name, float(np.mean(np.abs(pred - measured))), float(np.mean(pred - measured))))
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for d in argv:
        print(f"## {d}")
        for pair, name, err, signed in score(Path(d)):
            print(f"{pair:12s} {name:28s} {err:.2f} oct ({signed:+.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
