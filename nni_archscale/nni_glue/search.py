"""``archscale search``: a real NNI NAS experiment in which every candidate trains with its own principled init
and learning rate (and, with ``compare``, also with a baseline recipe: one shared rate tuned on the base network,
or NNI's default recipe), once per seed.

The experiment is NNI's own (``NasExperiment`` with a ``FunctionalEvaluator`` running :func:`.trial.search_trial`),
on the sequential engine (in-process) or the ``ts`` engine (nnimanager + one subprocess per trial, local
training service). The nnimanager is always stopped in ``finally``; trials append their outcomes to
``<out>/trials.jsonl``, from which ``results.csv``, ``summary.json`` and ``accuracy.png`` are written (also after
an interruption). ``resume`` replays the seeded strategy and reports finished candidates from their records,
so an interrupted search continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..run_options import RunOptions
from ..results import BASELINE_DESCRIPTIONS, RECORDS, atomic_write_text, prepare_out_dir, read_records, write_outputs
from ..errors import ArchScaleError
from ..files import file_kind
from ..run_errors import SearchError
from ..torch_layer.hook import HookConfig
from .calibration import bar_progress, calibrate_space, space_name, space_reference
from .spaces import SpaceError
from .training_service import experiment_config, trial_code_directory

ENGINES = ("sequential", "ts")
STRATEGIES = ("evolution", "random", "tpe")
RUN_FILE = "run.json"
#: options that define a run: resuming with any of them changed would mix two experiments
_IDENTITY = ("space", "space_options", "dataset", "data_dir", "limit", "trials", "epochs", "batch_size", "strategy",
             "width", "cells_per_stage", "compare", "seed", "base_lr", "engine", "seeds", "shared_lr", "augment",
             "calibration_objective")
#: the comparisons ``compare`` may name (the trial's baseline arms)
COMPARISONS = tuple(BASELINE_DESCRIPTIONS)


class SearchInterrupted(KeyboardInterrupt):
    """The search was interrupted; its partial results are written. The message says how to continue."""


@dataclass
class SearchOptions(RunOptions):
    """A search: the data, size, base rate and device of :class:`~nni_archscale.run_options.RunOptions`, the
    hook's options (``hook``), and what NNI searches and how."""

    #: the NNI model space (nni_glue.spaces.SPACE_NAMES); nb201 takes width and cells_per_stage
    space: str = "nb201"
    #: the space's own constructor arguments (overriding nni_glue.spaces' CPU-size defaults)
    space_options: dict = field(default_factory=dict)
    trials: int = 12
    epochs: int = 2
    batch_size: int = 128
    engine: str = "sequential"
    strategy: str = "evolution"
    out: str = "archscale-search"
    #: None, or the baseline arm every candidate is also trained with: "shared-rate" or "nni-default"
    compare: str | None = None
    seed: int = 0
    #: every arm trains each candidate once per seed (seed, seed + 1, ...): the noise floor needs 2 or more
    seeds: int = 1
    #: the shared-rate baseline's rate; None: calibrated on the base network like base_lr (cached)
    shared_lr: float | None = None
    #: what every candidate trains with: preset, init, rate rule (auto: the evidence-backed default for the
    #: network), optimizer, momentum, weight decay, schedule (torch_layer.hook.HookConfig: the hook's own options,
    #: defined once). Its base_lr and batch_size are replaced by this search's.
    hook: HookConfig = field(default_factory=HookConfig)
    resume: bool = False
    cache_path: str | None = None
    #: how base_lr and shared_lr are calibrated when not given: "maxlr" (the paper's one-epoch maximal rate of
    #: the base network), "accuracy" (its best validation accuracy after this search's epochs) or "population"
    #: (the best mean over a few sampled candidates); None: the space's family's (defaults.base_rate_objective)
    calibration_objective: str | None = None
    progress: bool = True
    quiet_nni: bool = True       # NNI's INFO lines: <out>/nni/<experiment id>/log/experiment.log only
    training_service: str = "local"   # ts engine: local | remote (see training_service.py)
    concurrency: int = 1              # ts engine: trials at once (on a GPU they share it)
    #: GPU trainer path (torch_layer.fast_train): torch.compile each candidate (None: on for runs of >= 5,000
    #: steps on CUDA); NAS-Bench-201's crop + flip augmentation on the training device
    compile: bool | None = None
    augment: bool = False
    machines: list = field(default_factory=list)   # remote: RemoteMachine list
    manager_ip: str | None = None     # remote: the address workers connect back to (NNI's nni_manager_ip)
    manager_port: int | None = None   # ts: the nnimanager's port (default: a free one); workers must reach it
    extra: dict = field(default_factory=dict)


def nnimanager_pids() -> list[int]:
    """Process ids of running nnimanagers (``node .../nni_node/main.js``): none must outlive a run."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "nni_node/main.js" in cmd:
            pids.append(int(entry))
    return pids


class _QuietNniConsole:
    """While the search runs, NNI's console handlers show warnings and errors only; its INFO lines (one per sampled
    candidate and metric) would tear the progress bar apart. The experiment's own ``experiment.log`` (under
    ``<out>/nni``) keeps every INFO line. Only handler levels are touched (importing nni resets the ``nni``
    logger's level to INFO, so setting that level beforehand does not help), and they are restored afterwards.
    """

    def __init__(self, level: int = logging.WARNING):
        self.level = level
        self.saved: list[tuple[logging.Handler, int]] = []

    def __enter__(self):
        for name in ("nni", ""):
            for h in logging.getLogger(name).handlers:
                if type(h) is logging.StreamHandler and h.level < self.level:
                    self.saved.append((h, h.level))
                    h.setLevel(self.level)
        return self

    def __exit__(self, *exc):
        for h, level in self.saved:
            h.setLevel(level)
        self.saved.clear()
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _strategy(name: str, trials: int, seed: int):
    from nni.nas import strategy

    if name == "evolution":
        population = max(2, min(20, trials // 2))
        return strategy.RegularizedEvolution(population_size=population, sample_size=max(1, population // 2),
                                             seed=seed, dedup=True)
    if name == "random":
        return strategy.Random(seed=seed, dedup=True)
    if name == "tpe":
        # NNI's TpeTuner minimises by default; our trials report accuracy, which must be maximised
        return strategy.TPE(optimize_mode="maximize", seed=seed)
    raise SearchError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")


def _check_run_files(out: Path) -> None:
    """``run.json`` and ``trials.jsonl``, where they exist, must be regular files: a folder in their place cannot
    be read as a run (IsADirectoryError), a named pipe would block the read forever."""
    for name in (RUN_FILE, RECORDS):
        kind = file_kind(out / name)
        if kind is not None:
            raise SearchError(f"{str(out / name)!r} is {kind}, not archscale's {name} (a regular file), so the "
                              f"search in {str(out)!r} cannot be read or continued; move it away, or choose another "
                              f"--out")


def _check_out_dir(out: Path, identity: dict, resume: bool) -> None:
    _check_run_files(out)
    run_file = out / RUN_FILE
    if resume and not run_file.exists() and not (out / RECORDS).exists():
        raise SearchError(f"nothing to resume in {str(out)!r}: it holds no search ({RUN_FILE} and {RECORDS} are "
                          f"absent); drop --resume to start one there, or point --out at the search to continue")
    if run_file.exists():
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = None
        if not resume:
            raise SearchError(
                f"{str(out)!r} already holds a search; pass --resume to continue it, or choose another --out"
            )
        if not isinstance(previous, dict) or not isinstance(previous.get("identity"), dict):
            # never trusted: run.json is written atomically, so a corrupt one was not written by this tool
            raise SearchError(
                f"cannot resume the search in {str(out)!r}: {RUN_FILE} is unreadable or not archscale's, so the "
                f"options cannot be checked; remove {RUN_FILE} and {RECORDS} to start over, or choose another --out"
            )
        if previous.get("identity") != identity:
            changed = sorted(k for k in identity if (previous.get("identity") or {}).get(k) != identity[k])
            raise SearchError(
                f"cannot resume the search in {str(out)!r}: options changed ({', '.join(changed)}); rerun with the "
                f"same options, or choose another --out"
            )
    elif (out / RECORDS).exists():
        # without run.json the records' options (and run id) are unknown: resuming would mix them into this run
        raise SearchError(f"{str(out)!r} holds trial records ({RECORDS}) of an unknown run but no {RUN_FILE}, so "
                          f"{'they cannot be resumed' if resume else 'they would be mixed with this run'}; "
                          f"move {RECORDS} away to start over there, or choose another --out")


class _Progress(threading.Thread):
    """Follows ``trials.jsonl`` (written by trials in this or another process) and shows a tqdm bar."""

    def __init__(self, path: Path, total: int, enabled: bool, run_id: str):
        super().__init__(daemon=True)
        self.path, self.total, self.enabled, self.run_id = path, total, enabled, run_id
        self.stop_event = threading.Event()

    def run(self):
        from tqdm import tqdm

        bar = tqdm(total=self.total, desc="archscale search", unit="cand", disable=not self.enabled, leave=True)
        seen = 0
        while True:
            stopping = self.stop_event.wait(0.5)
            recs = [r for r in read_records(self.path) if r.get("mode") == "archscale" and r.get("run") == self.run_id]
            # a candidate counts once its rule arm has a first result (with --seeds every arm trains it again)
            firsts = [r for r in recs if r.get("replica", 0) == 0]
            if len(firsts) > seen:
                bar.update(min(len(firsts), self.total) - min(seen, self.total))
                seen = len(firsts)
                ok = [r["accuracy"] for r in firsts if r["status"] == "ok"]
                bar.set_postfix(best=f"{max(ok):.3f}" if ok else "-", last=firsts[-1]["status"])
            if stopping:
                break
        bar.close()


def run_search(opts: SearchOptions, report=print) -> dict:
    """Run the search; returns the summary (also written to ``<out>/summary.json``)."""
    if opts.engine not in ENGINES:
        raise SearchError(f"unknown engine {opts.engine!r}; use one of {', '.join(ENGINES)}")
    if opts.strategy not in STRATEGIES:
        raise SearchError(f"unknown strategy {opts.strategy!r}; use one of {', '.join(STRATEGIES)}")
    if opts.compare is not None and opts.compare not in COMPARISONS:
        raise SearchError(f"unknown comparison {opts.compare!r}; use one of {', '.join(COMPARISONS)}")
    if opts.seeds < 1:
        raise SearchError(f"seeds must be at least 1, got {opts.seeds}")
    from .spaces import SPACE_NAMES

    if opts.space not in SPACE_NAMES:
        raise SearchError(f"unknown space {opts.space!r}; use one of {', '.join(SPACE_NAMES)}")
    if opts.strategy == "tpe" and opts.space != "nb201":
        raise SearchError(f"NNI's TPE cannot search {opts.space} (it fails on spaces with InputChoice or "
                          f"mutable widths); use --strategy evolution or random")
    from .spaces import check_space_options

    check_space_options(opts.space, opts.space_options or {})  # before the data, the calibration and any trial
    out = prepare_out_dir(opts.out)
    rule = opts.hook
    identity = {k: getattr(opts, k) for k in _IDENTITY}
    identity.update({f"hook.{k}": v for k, v in rule.to_dict().items() if k not in ("base_lr", "batch_size")})
    identity["hook.init"] = rule.scheme.value  # --init paper and no --init are the same run
    _check_out_dir(out, identity, opts.resume)

    from ..torch_layer.data import load_dataset
    from ..torch_layer.train import pick_device

    remote = opts.training_service != "local"
    # remote trials pick their device on the worker ("auto" there); locally only the spelling is checked
    device = str(pick_device(opts.device)) if not remote else (opts.device or "auto")
    if remote:
        pick_device("cpu" if str(device).startswith("cuda") else device)
    if opts.threads:
        import torch

        torch.set_num_threads(opts.threads)  # calibration and sequential-engine trials run in this process
    data = load_dataset(opts.dataset, opts.data_dir, opts.limit, opts.seed)
    report(f"archscale: data {data.describe()}; device {device}; engine {opts.engine}; strategy {opts.strategy}")

    def calibrated(preset: str, what: str):
        """The refined calibration on the base network under ``preset`` (cached), with a progress bar."""
        from tqdm import tqdm

        from ..defaults import base_rate_objective
        from .adapters import space_family

        objective = opts.calibration_objective or base_rate_objective(space_family(opts.space))
        if objective != "maxlr":
            from ..fairness.objectives import budget_rate, calibration_options
            from ..presets import Init

            scheme = Init.of(preset)
            fo = calibration_options(
                opts.space, opts.dataset, opts.epochs, opts.batch_size,
                {**rule.to_dict(), "preset": scheme.preset.name, "init": scheme.value}, data_dir=opts.data_dir,
                limit=opts.limit, width=opts.width, cells_per_stage=opts.cells_per_stage, seed=opts.seed,
                space_options=opts.space_options or {}, device=None if remote else opts.device)
            from .calibration import default_cache_path

            report(f"archscale: {what} by objective {objective} (the search's {opts.epochs} epoch(s))")
            return budget_rate(fo, objective, 0.1, opts.cache_path or default_cache_path(), progress=opts.progress,
                               report=report)
        bar = tqdm(total=opts.calibration_points, desc=what, unit="lr", disable=not opts.progress)
        try:
            return calibrate_space(opts.space, opts.dataset, opts.data_dir, opts.width, opts.cells_per_stage,
                                   rule.optimizer, opts.batch_size, preset, seed=opts.seed,
                                   device=None if remote else opts.device, limit=opts.limit,
                                   points=opts.calibration_points, cache_path=opts.cache_path, report=report,
                                   momentum=rule.momentum, weight_decay=rule.weight_decay,
                                   progress=bar_progress(bar), options=opts.space_options or None)
        finally:
            bar.close()

    base_lr = opts.base_lr
    calibration = None
    if base_lr is None:
        cal = calibrated(rule.preset, "calibrating base rate")  # exact: calibrated as its preset (paper), as the experiments do
        base_lr = cal.base_lr
        calibration = {"base_lr": cal.base_lr, "source": cal.source, "key": cal.key,
                       "resolution_octaves": cal.resolution_octaves, "widened": cal.widened}
        report(f"archscale: base rate c = {cal.describe()}; {cal.key}")
    shared_lr = opts.shared_lr
    if opts.compare == "shared-rate" and shared_lr is None:
        # the baseline a user has: one rate for all, tuned on the same base network by the same recipe, He init
        cal = calibrated("standard", "tuning the shared rate")
        shared_lr = cal.base_lr
        calibration = dict(calibration or {}, shared_lr=cal.base_lr, shared_key=cal.key,
                           shared_resolution_octaves=cal.resolution_octaves)
        report(f"archscale: shared rate (baseline) = {cal.describe()}; {cal.key}")

    previous = {}
    if (out / RUN_FILE).exists():
        try:
            previous = json.loads((out / RUN_FILE).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = {}
        if not isinstance(previous, dict):
            previous = {}
    run_id = previous.get("run_id") or f"{int(time.time())}-{os.getpid()}"
    atomic_write_text(out / RUN_FILE, json.dumps({"identity": identity, "run_id": run_id, "base_lr": base_lr,
                                                  "shared_lr": shared_lr, "calibration": calibration}, indent=2)
                      + "\n")
    hook = {**rule.to_dict(), "base_lr": base_lr, "batch_size": opts.batch_size}
    # the base network's measurements, for the measured and segmented rules (cheap: one step on one batch)
    try:
        reference = space_reference(opts.space, data, HookConfig(**hook), opts.width, opts.cells_per_stage,
                                    opts.space_options or None, opts.seed).to_dict()
    except SpaceError:  # the space itself cannot be built: every candidate would fail the same way
        raise
    except ArchScaleError as exc:  # only the measured and segmented rules need it; they say so per candidate
        reference = None
        report(f"archscale: warning: the base network could not be measured ({exc}); the measured rule falls "
               f"back to one shared rate and the segmented rule to the graph rule's base")
    data_dir = str(Path(opts.data_dir).expanduser().resolve()) if opts.data_dir else None  # trials run elsewhere
    # ts on a local GPU pins the trials to card N (CUDA_VISIBLE_DEVICES=N, training_service.experiment_config):
    # inside a trial that card is cuda:0, so the trials are told "cuda"
    trial_device = "cuda" if opts.engine == "ts" and not remote and str(device).startswith("cuda:") else device
    trial_cfg = {"out_dir": str(out), "dataset": opts.dataset, "data_dir": data_dir, "limit": opts.limit,
                 "epochs": opts.epochs, "batch_size": opts.batch_size, "seed": opts.seed, "device": trial_device,
                 "hook": hook, "reference": reference, "compare": opts.compare, "shared_lr": shared_lr, "seeds": opts.seeds,
                 "resume": True, "run_id": run_id,
                 "threads": opts.threads, "speed": {"compile": opts.compile, "augment": opts.augment}}
    if opts.resume:
        done = {(r["arch"], r["mode"], r.get("replica", 0)) for r in read_records(out / RECORDS)
                if r.get("run") == run_id and r["mode"] != "start"}
        report(f"archscale: resuming {out}: {len(done)} training run(s) already done are reused")

    code_dir = trial_code_directory(out, opts.training_service)
    code_dir.__enter__()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nni.nas.evaluator import FunctionalEvaluator
            from nni.nas.experiment import NasExperiment
            from .spaces import build_space
            from .trial import search_trial

            overrides = dict(opts.space_options)
            if opts.space == "nb201":
                overrides = {"stem_out_channels": opts.width, "num_modules_per_stack": opts.cells_per_stage,
                             **overrides}
            space = build_space(opts.space, data.num_classes, image_size=data.image_size, **overrides)
            evaluator = FunctionalEvaluator(search_trial, config=trial_cfg)
            strategy = _strategy(opts.strategy, opts.trials, opts.seed)
            config = experiment_config(opts.engine, opts.training_service, opts.trials, opts.concurrency, device,
                                       out / "nni", opts.machines, manager_ip=opts.manager_ip)
            exp = NasExperiment(space, evaluator, strategy, config)
    except BaseException:
        code_dir.__exit__(None, None, None)
        raise

    progress = _Progress(out / RECORDS, opts.trials, opts.progress, run_id)
    progress.start()
    interrupted = False
    t0 = time.perf_counter()
    try:  # code_dir was entered above (before the experiment was built); a second ``with`` would re-enter it
        with _QuietNniConsole(logging.WARNING if opts.quiet_nni else logging.NOTSET):
            try:
                # NNI catches Ctrl-C itself (logs "KeyboardInterrupt detected", stops) and then returns None
                # instead of True: that is an interruption too, to be continued with --resume
                if exp.run(port=opts.manager_port or _free_port()) is None:
                    interrupted = True
            except KeyboardInterrupt:
                interrupted = True
            finally:
                try:
                    exp.stop()
                finally:
                    progress.stop_event.set()
                    progress.join(timeout=5)
    finally:
        code_dir.__exit__(None, None, None)
    seconds = time.perf_counter() - t0
    meta = {"space": space_name(opts.space, opts.width, opts.cells_per_stage, opts.space_options or None),
            "rate_rule": rule.rate_rule, "reference": reference, "dataset": opts.dataset,
            "engine": opts.engine, "training_service": opts.training_service if opts.engine == "ts" else None,
            "concurrency": opts.concurrency, "strategy": opts.strategy, "preset": rule.preset, "init": rule.scheme.value,
            "trials": opts.trials,
            "epochs": opts.epochs, "batch_size": opts.batch_size, "seed": opts.seed, "seeds": opts.seeds,
            "base_lr": base_lr, "calibration": calibration,
            "optimizer": rule.optimizer, "device": device, "compare": opts.compare, "run_id": run_id,
            "search_seconds": round(seconds, 2), "interrupted": interrupted,
            "baseline": opts.compare, "baseline_recipe": BASELINE_DESCRIPTIONS.get(opts.compare),
            "shared_lr": shared_lr if opts.compare == "shared-rate" else None}
    records = [r for r in read_records(out / RECORDS) if r.get("run") == run_id]
    if not records:
        raise SearchError(f"no candidate finished (see the NNI logs under {out / 'nni'}); nothing to report")
    summary = write_outputs(out, meta, opts.compare)
    if interrupted:
        raise SearchInterrupted("partial results written; continue with the same command plus --resume")
    return summary

