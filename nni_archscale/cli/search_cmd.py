"""``archscale search``: an NNI NAS search in which every candidate trains with its own principled init and
learning rate; writes results.csv, summary.json and accuracy.png to --out."""

from __future__ import annotations

import argparse
import json

from .main import positive_float, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..rules import PRESETS

    p = sub.add_parser(
        "search",
        help="run an NNI NAS search (NAS-Bench-201 space) with fair, per-candidate training",
        description="Runs a real NNI NasExperiment on the NAS-Bench-201 space sized to the data. Each candidate is "
        "re-initialised and given its learning rate by the rule (base rate calibrated once and cached). With "
        "--compare every candidate is also trained with NNI's default recipe (Adam 1e-3, default init), same seed "
        "and budget. Outputs: OUT/results.csv, OUT/summary.json, OUT/accuracy.png.",
    )
    p.add_argument("--dataset", choices=("digits", "cifar10", "cifar100", "imagenet16-120"), default="digits",
                   help="digits ships inside scikit-learn; the others are read from --data-dir (never downloaded)")
    p.add_argument("--data-dir", default=None, help="directory holding the extracted CIFAR / ImageNet16 files")
    p.add_argument("--limit", type=positive_int, default=None, help="use only this many training images")
    p.add_argument("--trials", type=positive_int, default=12, help="number of candidates (default 12)")
    p.add_argument("--epochs", type=positive_int, default=2, help="training epochs per candidate (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=128)
    p.add_argument("--engine", choices=("sequential", "ts"), default="sequential",
                   help="sequential: in-process; ts: nnimanager + one subprocess per trial (local)")
    p.add_argument("--strategy", choices=("evolution", "random", "tpe"), default="evolution")
    p.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    p.add_argument("--preset", choices=PRESETS, default="paper")
    p.add_argument("--width", type=positive_int, default=8, help="stem channels C of NAS-Bench-201 (default 8)")
    p.add_argument("--cells", type=positive_int, default=1, help="cells per stage N (default 1)")
    p.add_argument("--base-lr", type=positive_float, default=None,
                   help="base rate c; default: calibrate (cached) with the paper's recipe")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd")
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--scheduler", choices=("cosine", "step", "none"), default="cosine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--compare", action="store_true", help="also train each candidate with NNI's default recipe")
    p.add_argument("--out", default="archscale-search", help="output directory (default ./archscale-search)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search in --out")
    p.add_argument("--calibration-cache", default=None, help="calibration cache file "
                   "(default ~/.cache/nni-archscale/calibration.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    logging.getLogger("nni").setLevel(logging.WARNING)
    from ..nni_glue.search import SearchOptions, run_search

    opts = SearchOptions(
        dataset=args.dataset, data_dir=args.data_dir, limit=args.limit, trials=args.trials, epochs=args.epochs,
        batch_size=args.batch_size, engine=args.engine, device=args.device, preset=args.preset,
        strategy=args.strategy, width=args.width, cells_per_stage=args.cells, out=args.out, compare=args.compare,
        seed=args.seed, base_lr=args.base_lr, optimizer=args.optimizer, weight_decay=args.weight_decay,
        scheduler=args.scheduler, resume=args.resume, cache_path=args.calibration_cache,
        progress=not args.no_progress,
    )
    summary = run_search(opts)
    keys = ("candidates", "statuses", "best", "best_accuracy", "mean_accuracy", "mean_gain", "kendall_tau",
            "search_seconds")
    print(json.dumps({k: summary.get(k) for k in keys if k in summary}, indent=2))
    print(f"archscale: wrote {args.out}/results.csv, summary.json, accuracy.png")
    return 0
