"""``archscale search``: an NNI NAS search in which every candidate trains with its own principled init and
learning rate, compared (``--compare``) with one shared rate tuned on the base network, over ``--seeds`` seeds;
writes results.csv, summary.json and accuracy.png to --out."""

from __future__ import annotations

import argparse
import json

from ..errors import shorten
from .main import add_init_argument, non_negative_float, positive_int, positive_rate, seed_number


def device_name(text: str) -> str:
    """auto, cpu, cuda or cuda:N (checked when parsed; availability is checked when the run starts). Other torch
    devices (mps, xpu...) are refused here: the trainers are written and tested for the CPU and CUDA only."""
    import re

    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda or cuda:N, got {shorten(text)}; the trainers support "
                                     f"the CPU and CUDA devices only")


def port_number(text: str) -> int:
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {text!r}")
    return value


def space_arg(text: str) -> tuple[str, object]:
    """``KEY=VALUE``: one constructor argument of the NNI model space (the value read as JSON when it is JSON:
    ``width=16``, ``dataset="cifar"`` or ``dataset=cifar``, ``base_widths=[8,8,8,16,16,24,32,48,128]``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (a constructor argument of the space), got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def out_folder(text: str) -> str:
    """--out: a folder of its own (not empty, which means the current directory, nor the current directory)."""
    from ..core.files import SEARCH_FILES, out_dir_refusal

    refusal = out_dir_refusal(text, "--out", SEARCH_FILES, "archscale-search")
    if refusal:
        raise argparse.ArgumentTypeError(refusal)
    return text


EPILOG = (
    "Files. In --out: results.csv, summary.json, accuracy.png (the results); trials.jsonl (one line per training "
    "run) and run.json (the run's options, for --resume); nni/ (NNI's experiment working directory: its "
    "experiment folders with their logs and checkpoint, and nni/console.log, what NNI would have printed on the "
    "console; nothing of NNI's reaches stdout); .archscale-search.lock (held while a search runs there: a second "
    "search on the same --out is refused with the first one's pid; the lock goes with its process, so a killed "
    "search never blocks the next one; the empty file stays). A search that fails or is interrupted before it "
    "wrote anything removes the --out folders it created, and a new search that fails before any trial recorded a "
    "result removes its run.json (the next attempt needs no --resume; NNI's log of the failure stays in nni/); a "
    "folder holding any result is never removed. "
    "Outside --out: NNI 3.0 records every experiment in its registry ~/nni-experiments/.experiment (its Python "
    "side and its nnimanager write it whatever the working directory); archscale removes its run's entry when the "
    "run ends, so only a search killed outright (SIGKILL, power loss) leaves one, removed by the next search that "
    "ends in the same --out. NNI writes nothing else under ~/nni-experiments on this machine for a search (remote "
    "workers keep NNI's trial files in their temporary folder, e.g. /tmp/nni-experiments/<experiment id>). "
    "Resume. --resume continues a search in --out with the same options; --trials may be raised to extend a "
    "finished search (the seeded strategy replays the candidates already trained from their records, then "
    "proposes new ones); lowering --trials, or any other change, is refused."
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..rules import registry
    from ..rules.names import DATASET_NAMES, SPACE_NAMES

    p = sub.add_parser(
        "search",
        help="run an NNI NAS search (NAS-Bench-201, DARTS, mobile spaces...) with fair, per-candidate training",
        description="Runs a real NNI NasExperiment on one of NNI's model spaces (--space, sized for a CPU by "
        "default). Each candidate is re-initialised and given its learning rate by the space's evidence-backed "
        "rule (--rate-rule; base rate calibrated once on the space's base network and cached). With "
        "--compare every candidate is also trained with one shared learning rate tuned on the base network by the "
        "same calibration (He init), same optimizer, schedule, epochs, data and seeds: the alternative a NAS user "
        "has (--compare nni-default: NNI's default recipe, Adam 1e-3). With --seeds N every arm trains each "
        "candidate N times; the summary gives the mean gain with its 95%% interval, the Kendall tau between the "
        "arms' rankings and the tau between two seeds of one arm (the noise floor). "
        "Outputs: OUT/results.csv, OUT/summary.json, OUT/accuracy.png.",
        epilog=EPILOG,
    )
    p.add_argument("--space", choices=SPACE_NAMES, default="nb201",
                   help="NNI model space (nni.nas.hub.pytorch) to search (default nb201)")
    p.add_argument("--space-arg", type=space_arg, action="append", default=[], metavar="KEY=VALUE",
                   help="a constructor argument of the space, repeatable (e.g. --space-arg width=16 "
                        "--space-arg num_cells=8 for darts)")
    p.add_argument("--rate-rule", choices=(registry.AUTO, *registry.rule_names()), default=registry.AUTO,
                   help="learning-rate rule: auto (the default measured best for the network), graph (eq. 8/9 path "
                        "counts), segmented, measured, shared (one rate); for a DAG-cell MLP also "
                        "readout-limited-sgd, feature (feature-sgd / feature-adam)")
    p.add_argument("--dataset", choices=DATASET_NAMES, default="digits",
                   help="digits ships inside scikit-learn; the others are read from --data-dir (never downloaded)")
    p.add_argument("--data-dir", default=None, help="directory holding the extracted CIFAR / ImageNet16 files (only "
                   "with those data sets: digits and mnist ship inside Python packages)")
    p.add_argument("--limit", type=positive_int, default=None, help="use only this many training images")
    p.add_argument("--trials", type=positive_int, default=12, help="number of candidates (default 12)")
    p.add_argument("--epochs", type=positive_int, default=2, help="training epochs per candidate (default 2)")
    p.add_argument("--batch-size", type=positive_int, default=128,
                   help="training batch size of every candidate, and of the calibrations (default 128)")
    p.add_argument("--engine", choices=("sequential", "ts"), default=None,
                   help="sequential (default): in-process; ts: nnimanager + one subprocess per trial (the default "
                   "with --training-service remote)")
    p.add_argument("--training-service", choices=("local", "remote"), default="local",
                   help="ts engine: where trials run; remote: on SSH hosts (docs/clusters.md)")
    p.add_argument("--concurrency", type=positive_int, default=1,
                   help="ts engine: trials at once (default 1); on a GPU the trials share it")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile each candidate's full training batches (default: on for CUDA runs of at "
                   "least 5,000 steps; --compile on the CPU compiles too, about a minute per candidate); recorded "
                   "in run.json")
    p.add_argument("--augment", action="store_true",
                   help="NAS-Bench-201's random crop (4-pixel padding) and flip, on the training device")
    p.add_argument("--remote-host", default=None, help="remote: the SSH host (one machine; else --machines)")
    p.add_argument("--remote-port", type=port_number, default=22, help="remote: SSH port (default 22)")
    p.add_argument("--remote-user", default=None, help="remote: SSH user (default $USER)")
    p.add_argument("--remote-key", default=None, help="remote: SSH private key file (default ~/.ssh/id_rsa)")
    p.add_argument("--remote-python", default=None,
                   help="remote: the worker's Python interpreter (absolute path; nni, torch and nni-archscale "
                   "installed there); default: this interpreter's path")
    p.add_argument("--manager-ip", default=None,
                   help="remote: address of this machine that the workers connect back to (default: NNI's guess)")
    p.add_argument("--manager-port", type=port_number, default=None,
                   help="ts: the nnimanager's port (default: a free one); open it to the workers")
    p.add_argument("--machines", default=None, metavar="FILE",
                   help="remote: JSON/YAML list of machines (host, user, port, ssh_key_file, python)")
    p.add_argument("--strategy", choices=("evolution", "random", "tpe"), default="evolution",
                   help="NNI's search strategy: evolution (regularized evolution), random or tpe (tpe: nb201 only); "
                        "default evolution")
    p.add_argument("--device", type=device_name, default="auto", help="auto (GPU when present), cpu, cuda, cuda:N")
    add_init_argument(p, " (exact: NAS-Bench-201 cells, whose ReLU-Conv-BN edges fix the moments)")
    p.add_argument("--width", type=positive_int, default=8, help="stem channels C of NAS-Bench-201 (default 8)")
    p.add_argument("--cells", type=positive_int, default=1, help="cells per stage N (default 1)")
    p.add_argument("--base-lr", type=positive_rate, default=None,
                   help="base rate c (at most 1e6); default: calibrate (cached) with the paper's recipe")
    p.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), default="sgd",
                   help="optimizer of every candidate, and of the calibrations (default sgd, momentum 0.9 Nesterov)")
    p.add_argument("--weight-decay", type=non_negative_float, default=5e-4, help="weight decay (default 5e-4)")
    p.add_argument("--scheduler", choices=("cosine", "step", "none"), default="cosine",
                   help="learning-rate schedule over each candidate's training (default cosine)")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the strategy, the data split and the training (0..2**32 - 1; default 0)")
    p.add_argument("--compare", nargs="?", const="shared-rate", default=None, choices=("shared-rate", "nni-default"),
                   help="also train each candidate with a baseline: shared-rate (the default when given without a "
                   "value: one rate for all, tuned on the base network, He init) or nni-default (Adam 1e-3)")
    p.add_argument("--seeds", type=positive_int, default=1,
                   help="train every arm of each candidate with this many seeds (default 1; the ranking noise "
                   "floor needs 2 or more)")
    p.add_argument("--calibration-objective", choices=("maxlr", "accuracy", "population"), default=None,
                   help="how --base-lr and --shared-lr are calibrated when not given: maxlr (the paper's one-epoch "
                   "maximal rate of the base network), accuracy (its best validation accuracy after this search's "
                   "epochs) or population (the best mean over 5 sampled candidates); default: the measured default "
                   "(nni_archscale/rules/defaults.py BASE_RATE_OBJECTIVES per network family, decided by reports/fairness)")
    p.add_argument("--shared-lr", type=positive_rate, default=None,
                   help="--compare shared-rate: the shared rate (default: calibrated on the base network, cached)")
    p.add_argument("--out", type=out_folder, default="archscale-search",
                   help="output folder, one per search: not the current directory, nor a folder holding files git "
                   "tracks (default ./archscale-search)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search in --out, or extend a finished one with a larger --trials")
    p.add_argument("--calibration-cache", default=None, help="calibration cache file "
                   "(default ~/.cache/nni-archscale/calibration.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import logging
    import warnings

    warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
    logging.getLogger("nni").setLevel(logging.WARNING)
    from pathlib import Path

    from ..results import missing_dirs, prepare_out_dir, remove_created_dirs
    from ..errors import SearchError
    from ..run_options import data_dir_problem

    if args.shared_lr is not None and args.compare != "shared-rate":
        raise SearchError("--shared-lr only applies with --compare shared-rate")
    problem = data_dir_problem(args.dataset, args.data_dir)
    if problem:
        raise SearchError(problem)
    # a folder that cannot be written is refused before NNI, torch and the data load; the folders this check
    # creates go again at once (run_search creates them for the run, and removes them if it fails early)
    created = missing_dirs(args.out)
    try:
        prepare_out_dir(args.out)
    finally:
        remove_created_dirs(created)
    from ..nni_glue.search import SearchOptions, run_search
    from ..torch_layer.hook import HookConfig

    remote = args.training_service == "remote"
    engine = args.engine or ("ts" if remote or args.concurrency > 1 else "sequential")
    if engine == "sequential" and (remote or args.concurrency > 1):
        raise SearchError("--training-service remote and --concurrency > 1 need --engine ts (trials in subprocesses)")
    remote_opts = [o for o in ("remote_host", "remote_user", "remote_key", "remote_python", "machines", "manager_ip")
                   if getattr(args, o) is not None]
    if remote_opts and not remote:
        raise SearchError(f"--{remote_opts[0].replace('_', '-')} only applies with --training-service remote")
    machines = []
    if remote:
        from ..nni_glue.training_service import resolve_machines

        machines = resolve_machines(args.remote_host, args.remote_user, args.remote_port, args.remote_key,
                                    args.remote_python, args.machines)
    hook = HookConfig(init=args.init, optimizer=args.optimizer,
                      weight_decay=args.weight_decay, scheduler=args.scheduler, rate_rule=args.rate_rule)
    opts = SearchOptions(
        space=args.space, space_options=dict(args.space_arg), hook=hook,
        dataset=args.dataset, data_dir=args.data_dir, limit=args.limit, trials=args.trials, epochs=args.epochs,
        batch_size=args.batch_size, engine=engine, device=args.device,
        strategy=args.strategy, width=args.width, cells_per_stage=args.cells, out=args.out, compare=args.compare,
        seeds=args.seeds, shared_lr=args.shared_lr, calibration_objective=args.calibration_objective, seed=args.seed, base_lr=args.base_lr, resume=args.resume, cache_path=args.calibration_cache,
        progress=not args.no_progress, training_service=args.training_service, concurrency=args.concurrency, compile=args.compile, augment=args.augment,
        machines=machines, manager_ip=args.manager_ip, manager_port=args.manager_port,
    )
    summary = run_search(opts)
    keys = ("candidates", "statuses", "best", "best_accuracy", "mean_accuracy", "baseline", "shared_lr", "seeds",
            "compared", "too_small", "mean_gain", "gain_ci95", "kendall_tau", "kendall_tau_per_seed", "seed_tau",
            "search_seconds")
    print(json.dumps({k: summary.get(k) for k in keys if k in summary}, indent=2))
    if summary.get("verdict"):
        print(f"archscale: against {summary['baseline']}: {summary['verdict']}")
    print(f"archscale: wrote {Path(args.out) / 'results.csv'}, summary.json, accuracy.png")
    return 0
