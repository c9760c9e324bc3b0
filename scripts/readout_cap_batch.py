"""Does ``readout-limited-sgd``'s cap scale with the batch size? (reports/beyond-paper, "A batch-size check")

For finished lr-prediction runs (SGD pairs), scores three predictions of every network's maximal rate, each
anchored on the run's own measured base-cell rate: the rule as shipped (cap ``READOUT_LIMIT * B / (n Var z_out)``,
linear in the run's batch size ``B``), the same cap held at its batch-32 value, and ``second-step-sgd`` without a
cap. Prints the mean absolute error in octaves of each.

    python scripts/readout_cap_batch.py reports/beyond-paper/batch16-w256 reports/beyond-paper/batch64-w256
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np

from nni_archscale.core.networks import CellNetwork
from nni_archscale.core.formats import from_paper_code
from nni_archscale.experiments.rule_variants import rule_multiplier
from nni_archscale.rules.first_step import readout_rate_limit

IN_FEATURES = {"mnist14": 196, "mnist": 784, "digits": 64}


def errors(run_dir: Path) -> dict[str, dict[str, float]]:
    """pair -> prediction -> mean absolute error (octaves), for the SGD pairs of the run."""
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = summary["config"]
    setting = (cfg.get("family", "mlp-topology"), cfg.get("convention", "linear-act"), cfg.get("activation", "relu"))
    if setting != ("mlp-topology", "linear-act", "relu"):
        raise SystemExit(f"{run_dir}: only MLP topology runs with Linear-then-ReLU edges are scored, not {setting}")
    width, batch, in_features = cfg["width"], cfg["batch_size"], IN_FEATURES[cfg["data"]]
    with (run_dir / "predictions.csv").open() as fh:
        archs = list(dict.fromkeys(row["arch"] for row in csv.DictReader(fh)))
    out = {}
    for pair, data in summary["pairs"].items():
        init, optimizer = pair.split("/")
        if optimizer != "sgd":
            continue
        if len(archs) != len(data["measured"]):
            raise SystemExit(f"{run_dir}: predictions.csv names {len(archs)} networks, summary.json measured "
                             f"{len(data['measured'])}; rerun the analysis (lr_prediction.reanalyse)")
        errs: dict[str, list[float]] = {"cap linear in B": [], "cap at batch 32": [], "second-step-sgd": []}
        for arch, measured in zip(archs, data["measured"]):
            cell = from_paper_code(arch)
            net = CellNetwork(cell, in_features, width, 10)
            hidden = data["base_max_lr"] * rule_multiplier("second-step-sgd", net, init, "sgd")
            for name, pred in (("cap linear in B", min(hidden, readout_rate_limit(net, init, batch))),
                               ("cap at batch 32", min(hidden, readout_rate_limit(net, init, 32))),
                               ("second-step-sgd", hidden)):
                errs[name].append(abs(math.log2(pred / measured)))
        out[pair] = {name: float(np.mean(e)) for name, e in errs.items()}
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for d in map(Path, argv):
        batch = json.loads((d / "summary.json").read_text())["config"]["batch_size"]
        for pair, errs in errors(d).items():
            print(f"{d} (batch {batch}) {pair}: " + ", ".join(f"{k} {v:.2f}" for k, v in errs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
