"""Inspect NAS-Bench-201 cells: what init and learning rate each rule gives, and how the rates spread
across the whole space. Writes out/inspect/rates.csv and out/inspect/rates.png.

    python examples/inspect_cells.py [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import itertools
from collections import Counter
from pathlib import Path

from nni_archscale import NoPathError, from_nb201, scale
from nni_archscale.rules.explain import to_record, to_report
from nni_archscale.core.formats import NB201_OPS

EXAMPLES = {
    "all conv3x3 (the largest cell)": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "ResNet block (two convs plus a skip)": "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="out/inspect")
    out = Path(ap.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)

    for title, arch in EXAMPLES.items():
        print(f"=== {title}\n{to_report(to_record(scale(from_nb201(arch), 0.46, 'paper', 'nb201-cell'), form='nb201'))}\n")

    rows, refused = [], 0
    for ops in itertools.product(list(NB201_OPS), repeat=6):
        a, b, c, d, e, f = ops
        arch = f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"
        g = from_nb201(arch)
        try:
            paper = scale(g, 0.46, "paper", "nb201-cell")
            release = scale(g, 0.46, "release", "nb201-cell")
        except NoPathError:
            refused += 1
            continue
        rows.append((arch, paper.num_paths, paper.learning_rate.depth_power_sum,
                     paper.learning_rate.value, release.learning_rate.value))
    path = out / "rates.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "num_paths", "sum_L3", "lr_paper", "lr_release"])
        w.writerows(rows)
    distinct = Counter(round(r[3], 6) for r in rows)
    lrs = [r[3] for r in rows]
    print(f"{len(rows)} cells scaled, {refused} refused (no input-output path); "
          f"{len(distinct)} distinct learning rates from {min(lrs):.4f} to {max(lrs):.4f}; table: {path}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    import numpy as np

    ax.hist(lrs, bins=np.geomspace(min(lrs), max(lrs) * 1.01, 40), color="tab:blue")
    ax.axvline(0.1, color="tab:red", ls="--", label="NAS-Bench-201's single rate (0.1)")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate from eq. 8 (base 0.46, one cell's paths)")
    ax.set_ylabel("cells")
    ax.set_title("Per-cell learning rates over NAS-Bench-201")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "rates.png", dpi=120)
    print(f"plot: {out / 'rates.png'}")


if __name__ == "__main__":
    main()
