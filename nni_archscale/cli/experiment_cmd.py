"""``archscale experiment lr-prediction``: how well each rule predicts maximal learning rates (paper §4)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .main import positive_int


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..experiments.lr_prediction import FAMILIES

    p = sub.add_parser("experiment", help="reproduce the paper's experiments and measure the rules")
    exp = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=type(p))
    exp.required = True
    lr = exp.add_parser(
        "lr-prediction",
        help="measure maximal learning rates by one-epoch grid search and compare every rule's prediction",
    )
    lr.add_argument("--family", choices=FAMILIES, default="mlp-topology")
    lr.add_argument("--act", choices=("relu", "gelu"), default="relu")
    lr.add_argument("--convention", choices=("linear-act", "eq1"), default="linear-act",
                    help="cell edges Linear-then-activation (the release) or activation-then-Linear (eq. 1)")
    lr.add_argument("--data", choices=("digits", "mnist", "mnist14"), default="digits")
    lr.add_argument("--width", type=positive_int, default=128)
    lr.add_argument("--cells", type=positive_int, default=20, help="random cells (topology and CNN families)")
    lr.add_argument("--seeds", type=positive_int, default=3)
    lr.add_argument("--inits", type=_names, default=("paper", "exact"), help="comma list of paper,release,standard,exact")
    lr.add_argument("--optimizers", type=_names, default=("sgd",), help="comma list of sgd,adam")
    lr.add_argument("--batch-size", type=positive_int, default=16)
    lr.add_argument("--sgd-grid", type=float, nargs=2, metavar=("LO", "HI"), default=(2.0**-7, 2.0**4),
                    help="SGD learning-rate grid bounds (default 2^-7 .. 2^4)")
    lr.add_argument("--adam-grid", type=float, nargs=2, metavar=("LO", "HI"), default=(2.0**-13, 2.0**-1),
                    help="Adam learning-rate grid bounds (default 2^-13 .. 2^-1)")
    lr.add_argument("--per-octave", type=positive_int, default=4, help="grid points per octave (default 4)")
    lr.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    lr.add_argument("--out", default=None, help="output directory (default reports/lr-prediction-FAMILY)")
    lr.add_argument("--json", action="store_true", help="print the summary as JSON")
    lr.set_defaults(run=run_lr_prediction)


def run_lr_prediction(args: argparse.Namespace) -> int:
    from ..experiments.lr_prediction import Config, run
    from ..experiments.report import write_lr_report

    cfg = Config(family=args.family, activation=args.act, convention=args.convention, data=args.data,
                 width=args.width, cells=args.cells, seeds=args.seeds, inits=args.inits,
                 optimizers=args.optimizers, batch_size=args.batch_size, limit=args.limit,
                 sgd_grid=tuple(args.sgd_grid), adam_grid=tuple(args.adam_grid), per_octave=args.per_octave)
    out = Path(args.out or f"reports/lr-prediction-{args.family}")
    summary = run(cfg, out)
    report = write_lr_report(out, summary)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "prediction_rows"}, indent=2))
    else:
        print(report)
    return 0
