"""The fairness run: candidates x a half-octave rate grid x seeds, trained exactly as ``archscale search`` trains
a candidate, then every arm read off the curves (:mod:`.curves`) and scored (:mod:`.score`).

Order of work (each training is one line of ``<out>/records.jsonl``; a resumed run skips what is there):

1. the base rate by the paper's recipe (one-epoch maximal rate of the base network, the current calibration;
   level ``maxlr``), for the product's init and for He's (the ``--compare shared-rate`` baseline's rate);
2. the base network on the grid at the search's budget, widened until its best rate is interior: its best rate
   is the base rate *at this budget* (level ``product``);
3. every candidate on a grid covering its arms' rates (within :data:`COVER_OCTAVES` of the base rate) and
   widened until its best rate is interior (at most :data:`MAX_POINTS` rates);
4. the arms with another init, each at one rate: He's init at its shared rate, and the benchmark recipe
   (PyTorch's default init at the benchmark's fixed rate) where one is given.

The grid is the lattice ``2^(j/2)``: every candidate's rates are lattice points, so curves compare point by point.
A training is :func:`train_job`: the candidate rebuilt from its spec, re-initialised by the hook with the search's
init and one rate for every parameter (rate rule ``shared`` at the grid rate), the search's optimizer, schedule,
epochs, batch, data and seeds (:func:`nni_archscale.nni_glue.trial._seed_for`), trained by the search's trainer.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ArchScaleError, NoPathError
from ..rules.registry import stored_options
from ..results import append_record, atomic_write_text, read_records
from ..torch_layer.sweep import Sweep
from .candidates import BASE_KEY, DAG_BASE_CELL, CandidateSpec
from .curves import Curve, best_index

#: the grid: lattice points 2^(j/2); a widening stops at these lattice bounds
LATTICE_LOW, LATTICE_HIGH = -28, 10
#: arms' rates further than this from the base rate are read off-grid instead of widening the grid to them
COVER_OCTAVES = 3.0
#: the most rates one candidate is trained at
MAX_POINTS = 14
RECORDS = "records.jsonl"


class FairnessError(ArchScaleError, ValueError):
    """Inconsistent fairness options, or a resumed folder that holds another run."""


@dataclass
class FairnessOptions:
    """A fairness run: the space and its candidates, the search's budget (data, epochs, batch, the hook's init,
    optimizer and schedule), the grid's seeds, and how it runs."""

    space: str = "nb201"
    space_options: dict = field(default_factory=dict)
    dataset: str = "mnist"
    data_dir: str | None = None
    limit: int | None = None
    candidates: int = 40
    seeds: int = 3
    epochs: int = 2
    batch_size: int = 64
    #: the hook's training options (optimizer, momentum, nesterov, weight decay, scheduler, init); its
    #: base_lr and rate_rule are set per training
    hook: dict = field(default_factory=dict)
    #: NB201's stem width and cells per stage; the DAG-cell MLP's width
    width: int = 8
    cells_per_stage: int = 1
    dag_width: int = 64
    sample_seed: int = 0
    seed: int = 0
    published: str | None = None
    #: rules to compare (None: every registered rule that applies to the space's family)
    rules: list | None = None
    #: the benchmark recipe's fixed rate (PyTorch's default init); None: no benchmark arm
    benchmark_lr: float | None = None
    #: the population objective's sample size
    population: int = 5
    workers: int = 1
    device: str | None = None
    augment: bool = False
    compile: bool | None = None

    def validate(self) -> None:
        if self.candidates < 4:
            raise FairnessError(f"--candidates must be at least 4 (rankings and the population objective need "
                                f"them), got {self.candidates}")
        if self.seeds < 2:
            raise FairnessError(f"--seeds must be at least 2 (the oracle is chosen on some seeds and read on "
                                f"others), got {self.seeds}")
        if self.epochs < 1 or self.batch_size < 1 or self.workers < 1:
            raise FairnessError("--epochs, --batch-size and --workers must be at least 1")
        if not 1 <= self.population < self.candidates:
            raise FairnessError(f"--population must be 1..{self.candidates - 1}, got {self.population}")
        if self.benchmark_lr is not None and not (self.benchmark_lr > 0 and math.isfinite(self.benchmark_lr)):
            raise FairnessError(f"--benchmark-lr must be a positive number, got {self.benchmark_lr}")

    def identity(self) -> dict:
        """What defines the run (a resumed folder must hold the same): everything but how it runs."""
        d = asdict(self)
        for k in ("workers",):
            d.pop(k)
        return d


def lattice(j: int) -> float:
    return 2.0 ** (j / 2.0)


def lattice_index(rate: float) -> float:
    """The (fractional) lattice index of ``rate``."""
    return 2.0 * math.log2(rate)


# ------------------------------------------------------------------------------------------------ building
def payload(opts: FairnessOptions) -> dict:
    """The options as a worker gets them (JSON-able), the hook's options completed by :class:`HookConfig`."""
    from ..torch_layer.hook import HookConfig

    return {**asdict(opts), "hook": HookConfig.from_dict({**opts.hook, "batch_size": opts.batch_size}).to_dict()}


def build_candidate(opts: dict, spec: dict, num_classes: int, in_features: int):
    """``(model, sample)`` for a candidate spec (or the base network, key :data:`BASE_KEY`)."""
    space = opts["space"]
    if space == "dagcell":
        from ..core.formats import from_paper_code
        from ..torch_layer.dag_cell import DagCellMLP

        return DagCellMLP(from_paper_code(spec["code"]), in_features, opts["dag_width"], num_classes), None
    from ..nni_glue.calibration import base_network

    if spec["key"] == BASE_KEY:
        sample, model = base_network(space, num_classes, opts["width"], opts["cells_per_stage"],
                                     opts["space_options"] or None)
        return model, sample
    if space == "nb201":
        from ..nni_glue.spaces import build_space

        nb = {"stem_out_channels": opts["width"], "num_modules_per_stack": opts["cells_per_stage"],
              **opts["space_options"]}
        return build_space("nb201", num_classes, **nb).freeze(spec["sample"]), spec["sample"]
    from ..nni_glue.spaces import sample_model

    sample, model = sample_model(space, spec["seed"], num_classes, **opts["space_options"])
    return model, sample


def base_spec(opts: FairnessOptions) -> CandidateSpec:
    return CandidateSpec(key=BASE_KEY, code=DAG_BASE_CELL if opts.space == "dagcell" else None)


# ------------------------------------------------------------------------------------------------ one training
def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def train_job(opts: dict, spec: dict, mode: str, rate: float, replica: int) -> dict:
    """One training at the search's budget (module docstring); ``mode``: ``grid`` (the search's init, one rate),
    ``he`` (He's init, ``standard``), ``benchmark`` (PyTorch's default init as the model was built)."""
    import torch

    from ..nni_glue.adapters import prepare_candidate
    from ..nni_glue.trial import TrialContext, _seed_for, _train
    from ..torch_layer.data import load_dataset
    from ..torch_layer.fast_train import speed_for
    from ..torch_layer.hook import HookConfig
    from ..torch_layer.param_groups import build_param_groups, make_optimizer, make_scheduler
    from ..torch_layer.train import pick_device

    t0 = time.perf_counter()
    device = pick_device(opts["device"])
    data = load_dataset(opts["dataset"], opts["data_dir"], opts["limit"], opts["seed"]).to(device)
    in_features = int(np.prod(data.train.x.shape[1:]))
    model, sample = build_candidate(opts, spec, data.num_classes, in_features)
    seed = _seed_for(opts["seed"], spec["key"], replica)
    epochs, batch = opts["epochs"], opts["batch_size"]
    steps_total = epochs * -(-len(data.train) // batch)
    hook = dict(opts["hook"])
    # "arch" as in search records (results.read_records keeps records with arch, mode and status)
    record = {"key": spec["key"], "arch": spec["key"], "mode": mode, "rate": rate, "replica": replica, "seed": seed}
    if mode == "benchmark":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for m in model.modules():
                if hasattr(m, "reset_parameters"):
                    m.reset_parameters()

        def build(m):
            opt = make_optimizer(hook["optimizer"], build_param_groups(m, rate, weight_decay=hook["weight_decay"]),
                                 hook["momentum"], hook["nesterov"])
            return opt, make_scheduler(opt, hook["scheduler"], steps_total)
    else:
        if mode == "he":
            hook.update(init="standard")
        cfg = HookConfig(**{**hook, "base_lr": rate, "rate_rule": "shared"})
        try:
            prepared = prepare_candidate(model, cfg, sample=sample, generator=torch.Generator().manual_seed(seed),
                                         adapter="auto" if sample is not None else "fx")
        except NoPathError as exc:
            return {**record, "status": "no-path", "accuracy": 1.0 / data.num_classes, "message": str(exc)}

        def build(m):
            opt = prepared.make_optimizer()
            return opt, prepared.make_scheduler(opt, steps_total)
    speed = speed_for(device, compile=opts["compile"], augment=opts["augment"])
    # the search trial's training step, at this grid point's budget (no records, reference or batch: the hook ran)
    budget = TrialContext(data, device, epochs, batch, steps_total, {}, "", 1.0 / data.num_classes, speed=speed)
    result = _train(model, budget, build, seed)
    return {**record, "status": result.status, "accuracy": float(result.accuracy),
            "speed": speed.describe(device, steps_total) if speed else "plain loop",
            "train_loss": None if result.train_loss != result.train_loss else float(result.train_loss),
            "seconds": round(time.perf_counter() - t0, 3), "message": result.message}


# ------------------------------------------------------------------------------------------------ the run
def read_runs(path: Path) -> list[dict]:
    """The training records in ``path`` (:func:`nni_archscale.results.read_records`, keyed by ``key`` as the first
    runs wrote them, before records carried ``arch``), those with a numeric rate, replica and accuracy."""
    return [r for r in read_records(path, ("key", "mode", "status"))
            if isinstance(r.get("rate"), (int, float)) and isinstance(r.get("replica"), int)
            and isinstance(r.get("accuracy"), (int, float))]


def _job_key(key: str, mode: str, rate: float, replica: int) -> tuple:
    return key, mode, round(lattice_index(rate), 6) if mode == "grid" else float(f"{rate:.12g}"), replica


class Runner(Sweep):
    """The fairness run's :class:`~nni_archscale.torch_layer.sweep.Sweep`: one job is one training
    (:func:`train_job`: a candidate, a mode, a rate and a replica), in ``workers`` processes of one thread each or
    in this process, each record appended to ``records.jsonl`` with the time it was kept; a resumed run skips
    what the file holds."""

    def __init__(self, opts: FairnessOptions, out: Path, progress: bool = True):
        self.opts, self.out = opts, out
        self.payload = payload(opts)
        super().__init__(out / RECORDS, key_of=lambda r: _job_key(r["key"], r["mode"], r["rate"], r["replica"]),
                         read=read_runs, append=append_record, workers=opts.workers, initializer=_worker_init,
                         initargs=(1,), bar="fairness" if progress else None)
        self.train_seconds = 0.0

    def run(self, jobs: list[tuple[CandidateSpec, str, float, int]]) -> None:
        super().run(train_job, [(_job_key(spec.key, mode, rate, rep), (self.payload, spec.to_dict(), mode, rate, rep))
                                for spec, mode, rate, rep in jobs])

    def keep(self, key: tuple, rec: dict) -> None:
        rec["time"] = time.time()
        super().keep(key, rec)
        self.train_seconds += float(rec.get("seconds") or 0.0)

    def accuracy(self, key: str, mode: str, rate: float, replica: int) -> float:
        return float(self.done[_job_key(key, mode, rate, replica)]["accuracy"])


def grid_curve(runner: Runner, spec: CandidateSpec, points: list[int]) -> Curve:
    seeds = runner.opts.seeds
    acc = [[runner.accuracy(spec.key, "grid", lattice(j), s) for j in points] for s in range(seeds)]
    return Curve(spec.key, np.array([j / 2.0 for j in points]), np.array(acc))


def train_until_interior(runner: Runner, specs: list[CandidateSpec], grids: dict[str, list[int]],
                         report: Callable[[str], None] = print) -> dict[str, list[int]]:
    """Train every candidate on its grid, widening one lattice point at an edge that holds the best mean
    accuracy, until every best rate is interior (or the grid reaches :data:`MAX_POINTS` or the lattice's
    bounds, which is reported)."""
    seeds = runner.opts.seeds
    while True:
        runner.run([(s, "grid", lattice(j), r) for s in specs for j in grids[s.key] for r in range(seeds)])
        grown = False
        for s in specs:
            pts = grids[s.key]
            j = best_index(grid_curve(runner, s, pts).mean())
            if len(pts) >= MAX_POINTS:
                continue
            if j == len(pts) - 1 and pts[-1] < LATTICE_HIGH:
                pts.append(pts[-1] + 1)
                grown = True
            elif j == 0 and pts[0] > LATTICE_LOW:
                pts.insert(0, pts[0] - 1)
                grown = True
        if not grown:
            for s in specs:
                j = best_index(grid_curve(runner, s, grids[s.key]).mean())
                if j in (0, len(grids[s.key]) - 1):
                    report(f"archscale fairness: {s.key}: the best rate is still at the grid's edge "
                           f"({lattice(grids[s.key][j]):.4g}; {len(grids[s.key])} rates, at most {MAX_POINTS}): its "
                           f"oracle is a bound, not an optimum")
            return grids


def initial_grid(centre: float, need: list[float]) -> list[int]:
    """Lattice points from 1.5 octaves below ``centre`` to 1 octave above, extended to cover every rate in
    ``need`` that lies within :data:`COVER_OCTAVES` of ``centre``."""
    c = lattice_index(centre)
    lo, hi = math.floor(c - 3), math.ceil(c + 2)
    for r in need:
        x = lattice_index(r)
        if abs(x - c) <= 2 * COVER_OCTAVES:
            lo, hi = min(lo, math.floor(x)), max(hi, math.ceil(x))
    lo, hi = max(lo, LATTICE_LOW), min(hi, LATTICE_HIGH)
    return list(range(lo, hi + 1))


def write_run_file(out: Path, opts: FairnessOptions, resume: bool) -> dict:
    """``run.json``: the options and the code's provenance; a resumed folder must hold the same run."""
    from ..provenance import provenance

    path = out / "run.json"
    ident = opts.identity()
    if path.exists():
        old = json.loads(path.read_text())
        old_options = dict(old.get("options", {}))
        if "hook" in old_options:  # an earlier version's words for the init (rules.registry.stored_options)
            old_options["hook"] = stored_options(old_options["hook"])
        if not resume:
            raise FairnessError(f"{out} already holds a fairness run; pass --resume to continue it or choose another "
                                f"--out")
        if old_options != json.loads(json.dumps(ident)):
            changed = sorted(k for k in ident if old_options.get(k) != json.loads(json.dumps(ident))[k])
            raise FairnessError(f"{out} holds a run with other options ({', '.join(changed)}); resume with the same "
                                f"options or choose another --out")
        old.setdefault("resumed", []).append(provenance())
        atomic_write_text(path, json.dumps(old, indent=2))
        return old
    run = {"experiment": "fairness", "options": ident, **provenance(), "pid": os.getpid()}
    atomic_write_text(path, json.dumps(run, indent=2))
    return run
