"""NAS-Bench-201 fair retraining (paper §4.3, App. E.3, E.4): does a per-architecture init and learning rate
change which cells look best?

A stratified, seeded sample of NAS-Bench-201 cells is retrained, each cell under every *recipe*:

* ``benchmark``: the benchmark's own recipe: PyTorch's default init (what NAS-Bench-201's training code uses;
  ``--bench-init standard`` gives He fan-in init instead) and one learning rate for every cell (0.1), SGD with
  Nesterov momentum 0.9, weight decay 5e-4, cosine decay to 0;
* ``paper`` / ``release``: the same optimizer and schedule, but every cell gets the project's init and learning
  rate (:func:`nni_archscale.rules.scale` with context ``nb201-cell``, the whole-network init plan of
  :mod:`nni_archscale.planner`, applied by :func:`nni_archscale.torch_layer.hook.prepare_nb201`), the base rate
  ``c`` from the project's calibration (per preset) or ``--base-lr``;
* ``exact``: ``paper`` plus the variance-exact init (``--init exact``): fixed scalars on every cell node's sum
  that keep each node at the cell input's second moment (:func:`nni_archscale.planner.nb201_output_scales`);
  its base network is ``paper``'s (a single skip: every scalar is 1), so it shares ``paper``'s calibrated ``c``;
* ``mup``: the ``mup`` package's basic usage as App. E.3 did: the readout replaced by ``MuReadout``, base shapes
  from a narrower copy of the same network, ``MuSGD`` at the benchmark's rate 0.1.

Networks are NNI's ``NasBench201`` (``space.freeze(sample)``, via :func:`nni_archscale.nni_glue.calibration.build_nb201`),
trained by :func:`nni_archscale.torch_layer.train.train_classifier`. The sample is stratified by the deciles of a
published accuracy table when one is given (``--published PATH``, any CSV with an architecture-string column and
an accuracy column), else by the deciles of the cell's path statistic ``sum_p L_p^3`` (the quantity the rule's
learning rate depends on; cells without an input-output path sort first). Isomorphic cells are drawn once.

Defined outcomes, never lost: ``ok``; ``no-path`` (the cell has no input-output path, so the network's output does
not depend on its input: not trained under any recipe, scored at chance, as the benchmark's table scores such cells);
``diverged`` (NaN/inf loss: stopped, chance); ``oom`` (out of memory: stopped, chance). Every run is a row of
``runs.csv``; failed runs count at chance accuracy in every metric, and the summary says how many there were.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import ArchitectureParseError, ArchScaleError, GraphStructureError, NoPathError
from ..formats import NB201_OPS, from_nb201
from ..graph import ArchGraph
from ..paths import has_input_output_path, path_statistics, power_sum
from ..results import atomic_write_text, kendall_tau
from ..run_errors import DataError
from .mup_cellnet import mup_available
from .names import DEFAULT_RECIPES, RECIPES, TOP_K  # re-exported; defined torch-free for the command line

#: recipes whose rate comes from the project's calibration on the base network (the same budget for each):
#: ``shared`` is one rate for every cell tuned that way with He's init (the best simple alternative a user has);
#: ``archscale`` is what the product applies to NNI's NasBench201 (``prepare_candidate``, rate rule ``auto``:
#: the evidence-backed default of ``nni_archscale.defaults``); paper / release / exact are the paper's rule
FAIR_RECIPES = ("shared", "archscale", "paper", "release", "exact")
#: the preset whose init (and calibration) a fair recipe uses ("exact" = paper + node-sum scalars)
RECIPE_PRESET = {"shared": "standard", "archscale": "paper", "paper": "paper", "release": "release",
                 "exact": "paper"}
ARCH_COLUMN = "ArchitectureString"
#: published accuracy column per dataset (NATS-Bench topology table, as in ../shared/data/nb201_accuracies.csv)
PUBLISHED_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}
#: NAS-Bench-201 op names -> NNI NasBench201 op names
_NNI_OPS = {"none": "none", "skip_connect": "skip_connect", "nor_conv_1x1": "conv_1x1",
            "nor_conv_3x3": "conv_3x3", "avg_pool_3x3": "avg_pool_3x3"}
STATUSES = ("ok", "no-path", "diverged", "oom")
RUN_COLUMNS = ["cell", "arch", "stratum", "published", "recipe", "seed", "status", "accuracy", "learning_rate",
               "train_loss", "epochs", "seconds", "message"]


class ExperimentError(ArchScaleError, ValueError):
    """The experiment's options are inconsistent (unknown recipe, too few cells, a missing optional package)."""


# --------------------------------------------------------------------------- cells
def all_cells() -> list[str]:
    """Every one of the 15,625 NAS-Bench-201 cell strings (product order, not the benchmark's index order)."""
    ops = list(NB201_OPS)
    out = []
    for a, b, c, d, e, f in itertools.product(ops, repeat=6):
        out.append(f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|")
    return out


def nni_sample(arch: str, label: str = "cell") -> dict[str, str]:
    """The NNI ``NasBench201`` sample dict (``'cell/<j>_<i>'`` -> op) of a NAS-Bench-201 string."""
    from_nb201(arch)  # validates, with the parser's own error messages
    sample = {}
    for i, group in enumerate(arch.strip().split("+"), start=1):
        for token in group.strip()[1:-1].split("|"):
            op, _, j = token.partition("~")
            sample[f"{label}/{int(j)}_{i}"] = _NNI_OPS[op]
    return sample


def depth_power_sum(cell: ArchGraph) -> int:
    """sum_p L_p^3 with L_p = 1 + k_p (the ``nb201-cell`` rule's count; 0 for a cell without a path)."""
    return power_sum(path_statistics(cell).output, 3, 1)


@dataclass(frozen=True)
class Candidate:
    cell: int               # position in the sample
    arch: str               # NAS-Bench-201 string
    stratum: int            # 0 (lowest decile) .. bins-1
    published: float | None  # published accuracy (percent) when a table was given
    index: int | None        # row of the published table


@dataclass(frozen=True)
class PublishedTable:
    path: str
    column: str
    archs: tuple[str, ...]
    accuracy: tuple[float, ...]


def read_published(path: str | Path, column: str) -> PublishedTable:
    """Read a published accuracy table (CSV with ``ArchitectureString`` and ``column``), validating everything."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"published accuracy table {str(p)!r} does not exist; pass --published PATH to a CSV with "
                        f"columns {ARCH_COLUMN} and {column} (see nni_archscale/experiments/published_table.py for where it is looked up)")
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read published table {str(p)!r} ({type(exc).__name__}: {exc}); it must be a "
                        f"UTF-8 CSV file with a header row") from None
    if not header:
        raise DataError(f"published table {str(p)!r} is empty; it needs a header row with {ARCH_COLUMN} and "
                        f"{column}")
    header = [h.strip() for h in header]
    missing = [c for c in (ARCH_COLUMN, column) if c not in header]
    if missing:
        raise DataError(f"published table {str(p)!r} lacks column(s) {', '.join(missing)} (found: "
                        f"{', '.join(header[:8])}{' ...' if len(header) > 8 else ''}); name the accuracy column "
                        f"with --published-column, or fix the CSV header")
    if not rows:
        raise DataError(f"published table {str(p)!r} has a header but no rows")
    archs, accs = [], []
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        arch, value = (row.get(ARCH_COLUMN) or "").strip(), (row.get(column) or "").strip()
        try:
            from_nb201(arch)
        except (ArchitectureParseError, GraphStructureError) as exc:
            raise DataError(f"published table {str(p)!r}, line {line}: {ARCH_COLUMN} {arch!r} is not a "
                            f"NAS-Bench-201 cell ({exc})") from None
        try:
            acc = float(value)
        except ValueError:
            acc = math.nan
        if not math.isfinite(acc) or not (0.0 <= acc <= 100.0):
            raise DataError(f"published table {str(p)!r}, line {line}: {column} = {value!r} is not an accuracy "
                            f"in percent (a number from 0 to 100)")
        archs.append(arch)
        accs.append(acc)
    return PublishedTable(str(p), column, tuple(archs), tuple(accs))


def _strata(order: Sequence[int], bins: int) -> list[list[int]]:
    return [list(chunk) for chunk in np.array_split(np.asarray(order, dtype=int), bins) if len(chunk)]


def stratified_sample(values: Sequence[float], archs: Sequence[str], count: int, seed: int = 0,
                      bins: int = 10) -> list[tuple[int, int]]:
    """``count`` (item, stratum) pairs: items ranked by ``values`` (ties broken by a seeded shuffle), split into
    ``bins`` equal-count strata (deciles), the same number drawn from each stratum (the remainder from randomly
    chosen strata), uniformly inside a stratum; an item isomorphic to one already drawn is skipped."""
    if count < 1:
        raise ExperimentError(f"cells must be at least 1, got {count}")
    rng = random.Random(seed)
    tiebreak = list(range(len(values)))
    rng.shuffle(tiebreak)
    order = sorted(range(len(values)), key=lambda i: (values[i], tiebreak[i]))
    strata = _strata(order, min(bins, len(order)))
    quota = [count // len(strata)] * len(strata)
    for s in rng.sample(range(len(strata)), count % len(strata)):
        quota[s] += 1
    pools = [rng.sample(s, len(s)) for s in strata]
    seen: set[ArchGraph] = set()
    chosen: list[tuple[int, int]] = []
    short = 0
    for s, pool in enumerate(pools):
        got = 0
        while got < quota[s] and pool:
            i = pool.pop()
            g = from_nb201(archs[i])
            if g in seen:
                continue
            seen.add(g)
            chosen.append((i, s))
            got += 1
        short += quota[s] - got
    # a stratum ran out of distinct cells: fill the shortfall from the other strata, in stratum order
    while short and any(pools):
        for s, pool in enumerate(pools):
            while short and pool:
                i = pool.pop()
                g = from_nb201(archs[i])
                if g not in seen:
                    seen.add(g)
                    chosen.append((i, s))
                    short -= 1
                    break
    return sorted(chosen, key=lambda t: (t[1], t[0]))


def sample_candidates(count: int, seed: int = 0, table: PublishedTable | None = None,
                      bins: int = 10) -> list[Candidate]:
    """The stratified sample: by published-accuracy deciles with a table, else by ``sum_p L_p^3`` deciles."""
    if table is not None:
        picks = stratified_sample(table.accuracy, table.archs, count, seed, bins)
        return [Candidate(k, table.archs[i], s, table.accuracy[i], i) for k, (i, s) in enumerate(picks)]
    archs = all_cells()
    values = [depth_power_sum(from_nb201(a)) for a in archs]
    picks = stratified_sample(values, archs, count, seed, bins)
    return [Candidate(k, archs[i], s, None, None) for k, (i, s) in enumerate(picks)]


# --------------------------------------------------------------------------- metrics (pure, tested on known inputs)
def mean_gain(ours: Sequence[float], reference: Sequence[float]) -> float | None:
    """Mean of ``ours - reference`` over cells (accuracy points)."""
    if len(ours) != len(reference):
        raise ValueError("gain needs two accuracy lists of the same length")
    if not ours:
        return None
    return float(np.mean(np.asarray(ours, float) - np.asarray(reference, float)))


def top_k_indices(reference: Sequence[float], k_percent: float) -> list[int]:
    """Indices of the top ``k_percent`` % cells by ``reference`` (at least one; ties keep the earlier cell)."""
    n = len(reference)
    m = max(1, math.ceil(n * k_percent / 100.0 - 1e-9))
    order = sorted(range(n), key=lambda i: (-reference[i], i))
    return sorted(order[:m])


def tau_top_k(reference: Sequence[float], other: Sequence[float], ks: Sequence[float] = TOP_K,
              min_cells: int = 3) -> dict[float, dict]:
    """Kendall tau-b between ``reference`` and ``other`` among the top-K% cells by ``reference`` (Fig. 4 middle);
    ``tau`` is None when fewer than ``min_cells`` cells remain (two cells give only +-1)."""
    out = {}
    for k in ks:
        idx = top_k_indices(reference, k)
        tau = None
        if len(idx) >= min_cells:
            tau = kendall_tau([reference[i] for i in idx], [other[i] for i in idx])
        out[k] = {"cells": len(idx), "tau": tau}
    return out


def seed_tau_top_k(per_seed: Sequence[Sequence[float]], ks: Sequence[float] = TOP_K,
                   min_cells: int = 3) -> dict[float, dict]:
    """Seed-vs-seed Kendall tau among the top-K% cells (by the seeds' mean), averaged over seed pairs (App. E.4)."""
    seeds = [list(s) for s in per_seed]
    if len(seeds) < 2:
        return {k: {"cells": None, "tau": None, "pairs": 0} for k in ks}
    mean = list(np.mean(np.asarray(seeds, float), axis=0))
    out = {}
    for k in ks:
        idx = top_k_indices(mean, k)
        taus = []
        if len(idx) >= min_cells:
            for a, b in itertools.combinations(range(len(seeds)), 2):
                t = kendall_tau([seeds[a][i] for i in idx], [seeds[b][i] for i in idx])
                if t is not None:
                    taus.append(t)
        out[k] = {"cells": len(idx), "tau": float(np.mean(taus)) if taus else None, "pairs": len(taus)}
    return out


def pairwise_gaps(acc: Sequence[float]) -> list[float]:
    """|acc_i - acc_j| over every pair of cells (Fig. 4 right)."""
    return [abs(a - b) for a, b in itertools.combinations(acc, 2)]


def _ranks(x: Sequence[float]) -> np.ndarray:
    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's rho (average ranks for ties); None for fewer than 3 values or a constant variable."""
    if len(a) != len(b) or len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


# --------------------------------------------------------------------------- configuration
@dataclass
class Config:
    dataset: str = "digits"
    data_dir: str | None = None
    limit: int | None = None
    cells: int = 12
    seeds: int = 2
    sample_seed: int = 0
    recipes: tuple[str, ...] | None = None   # None: all, mup dropped (with a note) when not installed
    width: int = 8
    cells_per_stage: int = 1
    epochs: int = 4
    batch_size: int = 64
    bench_lr: float = 0.1
    bench_init: str = "pytorch"              # pytorch (NAS-Bench-201's code) | standard (He fan-in)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    base_lr: float | None = None             # c for paper/release; None: calibrate
    calibration_points: int = 9
    calibration_low: float = 1e-3
    calibration_high: float = 10.0
    calibration_dir: str | None = None       # default: the output directory
    published: str | None = None
    published_column: str | None = None
    mup_base_width: int | None = None        # default: width // 2
    augment: bool | None = None              # None: flip + crop for CIFAR / ImageNet16, none for digits
    top_k: tuple[float, ...] = TOP_K
    device: str | None = None
    threads: int | None = None
    notes: list[str] = field(default_factory=list)

    def resolved_recipes(self) -> tuple[str, ...]:
        if self.recipes is not None:
            bad = [r for r in self.recipes if r not in RECIPES]
            if bad:
                raise ExperimentError(f"unknown recipe(s) {', '.join(bad)}; use a comma list of {', '.join(RECIPES)}")
            if "benchmark" not in self.recipes:
                raise ExperimentError("the recipes must include 'benchmark': every gain and tau is measured "
                                      "against it; e.g. --recipes benchmark,paper")
            if "mup" in self.recipes and not mup_available():
                raise ExperimentError("recipe 'mup' needs the mup package: pip install --no-deps mup (plain "
                                      "'pip install mup' also pulls torchvision and a CUDA torch), or drop it: "
                                      "--recipes benchmark,paper,release")
            return tuple(dict.fromkeys(self.recipes))
        if mup_available():
            return DEFAULT_RECIPES
        note = "mup is not installed, so the mup recipe was skipped (pip install --no-deps mup)"
        if note not in self.notes:
            self.notes.append(note)
        return tuple(r for r in DEFAULT_RECIPES if r != "mup")

    def column(self) -> str:
        return self.published_column or PUBLISHED_COLUMNS.get(self.dataset, PUBLISHED_COLUMNS["cifar10"])

    def mup_base(self) -> int:
        return self.mup_base_width or max(1, self.width // 2)

    def validate(self) -> None:
        if self.cells < 2:
            raise ExperimentError(f"--cells must be at least 2 to rank anything, got {self.cells}")
        if self.seeds < 1 or self.epochs < 1 or self.batch_size < 1 or self.width < 1 or self.cells_per_stage < 1:
            raise ExperimentError("seeds, epochs, batch size, width and cells per stage must be positive")
        if self.bench_init not in ("pytorch", "standard"):
            raise ExperimentError(f"unknown benchmark init {self.bench_init!r}; use pytorch or standard")
        if not (self.bench_lr > 0 and math.isfinite(self.bench_lr)):
            raise ExperimentError(f"the benchmark learning rate must be positive, got {self.bench_lr}")
        if self.base_lr is not None and not (self.base_lr > 0 and math.isfinite(self.base_lr)):
            raise ExperimentError(f"--base-lr must be positive, got {self.base_lr}")
        if any(not (0 < k <= 100) for k in self.top_k):
            raise ExperimentError(f"top-K percentages must lie in (0, 100], got {self.top_k}")
        self.resolved_recipes()


_FLAGS = {"dataset": "--dataset", "data_dir": "--data-dir", "limit": "--limit", "cells": "--cells",
          "seeds": "--seeds", "sample_seed": "--sample-seed", "recipes": "--recipes", "width": "--width",
          "cells_per_stage": "--cells-per-stage", "epochs": "--epochs", "batch_size": "--batch-size",
          "bench_lr": "--bench-lr", "bench_init": "--bench-init", "base_lr": "--base-lr",
          "calibration_points": "--calibration-points", "calibration_dir": "--calibration-dir",
          "published": "--published", "published_column": "--published-column",
          "mup_base_width": "--mup-base-width", "top_k": "--top-k", "device": "--device", "threads": "--threads"}


def command_line(config: Config, out: str | Path | None = None) -> str:
    """The ``archscale experiment nb201`` command that reproduces ``config`` (options left at defaults omitted)."""
    import shlex

    default = Config()
    parts = ["archscale", "experiment", "nb201"]
    for name, flag in _FLAGS.items():
        value = getattr(config, name)
        if value == getattr(default, name) or value is None or (name == "device" and value == "auto"):
            continue
        if isinstance(value, (tuple, list)):
            value = ",".join(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in value)
        parts += [flag, str(value)]
    if config.augment is not None:
        parts.append("--augment" if config.augment else "--no-augment")
    if out is not None:
        parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


# --------------------------------------------------------------------------- training one run
@dataclass
class Run:
    cell: int
    arch: str
    stratum: int
    published: float | None
    recipe: str
    seed: int
    status: str
    accuracy: float           # percent; chance for every outcome but ok
    learning_rate: float | None
    train_loss: float | None
    epochs: int
    seconds: float
    message: str = ""


class AugmentedArrayData:
    """Training batches with NAS-Bench-201's augmentation (random crop with 4-pixel zero padding, horizontal flip),
    done on the data's device; wraps :class:`~nni_archscale.torch_layer.data.ArrayData` (whose ``batch`` the
    training loop calls)."""

    def __init__(self, data, seed: int, pad: int = 4):
        self.data, self.pad = data, pad
        self.generator = torch.Generator(device=data.y.device).manual_seed(seed)

    def __len__(self) -> int:
        return len(self.data)

    @property
    def y(self):
        return self.data.y

    def batch(self, index: torch.Tensor):
        x, y = self.data.batch(index)
        b, _, h, w = x.shape
        p, dev, g = self.pad, x.device, self.generator
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), device=dev, generator=g)
        dx = torch.randint(0, 2 * p + 1, (b,), device=dev, generator=g)
        rows = (dy[:, None] + torch.arange(h, device=dev)[None, :])[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev)[None, :])[:, None, None, :]
        x = padded[torch.arange(b, device=dev)[:, None, None, None], torch.arange(x.shape[1], device=dev)[None, :, None, None],
                   rows, cols]
        flip = torch.rand(b, device=dev, generator=g) < 0.5
        return torch.where(flip[:, None, None, None], x.flip(3), x), y


def _init_seed(seed: int, arch: str) -> int:
    import hashlib

    return (seed * 1_000_003 + int(hashlib.sha1(arch.encode()).hexdigest()[:8], 16)) % (2**31)


class Trainer:
    """Holds the data (on the device) and the base rates; trains one (cell, recipe, seed)."""

    def __init__(self, config: Config, data, device: torch.device, base_lrs: dict[str, float]):
        self.config, self.data, self.device, self.base_lrs = config, data, device, base_lrs
        self.chance = 100.0 / data.num_classes
        self.augment = config.augment if config.augment is not None else data.name != "digits"

    def _build(self, sample: dict, width: int | None = None):
        from ..nni_glue.calibration import build_nb201

        return build_nb201(width or self.config.width, self.config.cells_per_stage, self.data.num_classes, sample)

    def _mup_model(self, sample: dict):
        from mup import MuReadout, set_base_shapes

        def build(width):
            m = self._build(sample, width)
            lin = m.classifier
            m.classifier = MuReadout(lin.in_features, lin.out_features, bias=lin.bias is not None)
            return m

        base = self.config.mup_base()
        model = build(self.config.width)
        set_base_shapes(model, build(base), delta=build(2 * base))
        return model

    def run(self, cand: Candidate, recipe: str, seed: int) -> Run:
        from ..torch_layer.hook import HookConfig, prepare_nb201
        from ..torch_layer.param_groups import build_param_groups, make_optimizer, make_scheduler
        from ..torch_layer.train import is_oom, train_classifier

        cfg = self.config
        cell = from_nb201(cand.arch)

        def outcome(status, acc=None, lr=None, loss=None, epochs=0, seconds=0.0, message=""):
            return Run(cand.cell, cand.arch, cand.stratum, cand.published, recipe, seed, status,
                       round(self.chance, 9) if acc is None else acc, lr, loss, epochs, round(seconds, 3), message)

        if not has_input_output_path(cell):
            return outcome("no-path", message="no input-output path: the output does not depend on the input; "
                                              "not trained, scored at chance")
        sample = nni_sample(cand.arch)
        init_seed = _init_seed(seed, cand.arch)
        torch.manual_seed(init_seed)
        t0 = time.perf_counter()
        steps = cfg.epochs * -(-len(self.data.train) // cfg.batch_size)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if recipe == "mup":
                    from mup import MuSGD

                    model = self._mup_model(sample).to(self.device)
                    opt = MuSGD(model.parameters(), lr=cfg.bench_lr, momentum=cfg.momentum, nesterov=True,
                                weight_decay=cfg.weight_decay)
                    lr = cfg.bench_lr
                elif recipe == "benchmark" and cfg.bench_init == "pytorch":
                    model = self._build(sample).to(self.device)
                    opt = make_optimizer("sgd", build_param_groups(model, cfg.bench_lr, weight_decay=cfg.weight_decay),
                                         cfg.momentum, nesterov=True)
                    lr = cfg.bench_lr
                elif recipe == "archscale":
                    from ..nni_glue.adapters import prepare_candidate

                    model = self._build(sample)
                    hook = HookConfig(base_lr=self.base_lrs[recipe], preset="paper", optimizer="sgd",
                                      momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay,
                                      scheduler="cosine", rate_rule="auto")
                    prepared = prepare_candidate(model, hook, sample=sample,
                                                 generator=torch.Generator().manual_seed(init_seed))
                    model.to(self.device)
                    opt = prepared.make_optimizer()
                    lr = prepared.learning_rate
                else:
                    preset = "standard" if recipe == "benchmark" else RECIPE_PRESET[recipe]
                    base = cfg.bench_lr if recipe == "benchmark" else self.base_lrs[recipe]
                    model = self._build(sample)
                    hook = HookConfig(base_lr=base, preset=preset, optimizer="sgd", momentum=cfg.momentum,
                                      nesterov=True, weight_decay=cfg.weight_decay, scheduler="cosine",
                                      init="exact" if recipe == "exact" else "rule")
                    try:
                        prepared = prepare_nb201(model, cell, cfg.cells_per_stage, hook,
                                                 torch.Generator().manual_seed(init_seed), adapter="nb201-experiment")
                    except NoPathError as exc:  # the path check above makes this unreachable; kept as the defined outcome
                        return outcome("no-path", message=str(exc))
                    model.to(self.device)
                    opt = prepared.make_optimizer()
                    lr = prepared.learning_rate
                sched = make_scheduler(opt, "cosine", steps)
                train = AugmentedArrayData(self.data.train, init_seed) if self.augment else self.data.train
                res = train_classifier(model, train, self.data.val, opt, epochs=cfg.epochs,
                                       batch_size=cfg.batch_size, scheduler=sched, seed=seed,
                                       num_classes=self.data.num_classes)
        except BaseException as exc:  # noqa: BLE001 - out of memory outside the loop is an outcome too
            if not is_oom(exc):
                raise
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            return outcome("oom", seconds=time.perf_counter() - t0, message=f"out of memory: {str(exc)[:200]}")
        acc = round(100.0 * res.accuracy, 9) if res.status == "ok" else None
        loss = res.train_loss if res.status == "ok" and math.isfinite(res.train_loss) else None
        return outcome(res.status, acc, lr, loss, res.epochs, time.perf_counter() - t0, res.message)


# --------------------------------------------------------------------------- calibration
def base_rates(config: Config, recipes: Sequence[str], out_dir: Path, report: Callable[[str], None],
               progress: bool = True) -> dict:
    """c for every fair recipe: ``--base-lr``, else the project's calibration (one per preset: the presets
    initialise the base network differently), cached under the calibration directory."""
    fair = [r for r in recipes if r in FAIR_RECIPES]
    if not fair:
        return {"rates": {}, "source": "none"}
    if config.base_lr is not None:
        return {"rates": {r: config.base_lr for r in fair}, "source": "--base-lr"}
    from tqdm import tqdm

    from ..nni_glue.calibration import bar_progress, calibrate_nb201

    cal_dir = Path(config.calibration_dir).expanduser() if config.calibration_dir else out_dir
    rates, details = {}, {}
    for preset in dict.fromkeys(RECIPE_PRESET[r] for r in fair):
        bar = tqdm(total=config.calibration_points, desc=f"calibrating c ({preset})", unit="lr", leave=False,
                   disable=not progress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one cache file per preset: the calibration cache key does not include the preset
            cal = calibrate_nb201(config.dataset, config.data_dir, config.width, config.cells_per_stage, "sgd",
                                  config.batch_size, preset, epochs=1, low=config.calibration_low,
                                  high=config.calibration_high, points=config.calibration_points,
                                  seed=config.sample_seed, device=config.device, limit=config.limit,
                                  cache_path=cal_dir / f"calibration-{preset}.json", report=report,
                                  momentum=config.momentum, weight_decay=config.weight_decay,
                                  progress=bar_progress(bar))
        bar.close()
        rates[preset] = cal.base_lr
        details[preset] = {"base_lr": cal.base_lr, "source": cal.source, "key": cal.key,
                           "losses": {str(k): (v if v is not None and math.isfinite(v) else None)
                                      for k, v in cal.losses.items()}}
        report(f"nb201: base rate c ({preset}) = {cal.base_lr:g} ({cal.source})")
    return {"rates": {r: rates[RECIPE_PRESET[r]] for r in fair}, "source": "calibration", "details": details}


# --------------------------------------------------------------------------- the experiment
def run(config: Config, out_dir: Path, report: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Sample, train every (cell, recipe, seed), write ``runs.csv``, ``cells.csv``, ``summary.json``, the plots
    and ``run.json`` (commit, clean checkout or not, start and finish times) into ``out_dir``; returns the
    summary (the report is written by :mod:`.nb201_report`)."""
    from tqdm import tqdm

    from ..torch_layer.data import load_dataset
    from ..torch_layer.train import pick_device
    from .provenance import provenance, write_run_record

    config.validate()
    recipes = config.resolved_recipes()
    prov = provenance()  # what ran, from which commit, when: run.json (see .provenance.held_out)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(out_dir, "nb201", asdict(config), prov)  # runs.csv grows run by run: record its origin first
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    from .published_table import find_published_table

    table_path, how = find_published_table(config.published)
    table = read_published(table_path, config.column()) if table_path else None
    report(f"nb201: published accuracies from {table_path} ({how})" if table_path else f"nb201: {how}")
    candidates = sample_candidates(config.cells, config.sample_seed, table)
    data = load_dataset(config.dataset, config.data_dir, config.limit, config.sample_seed).to(device)
    report(f"nb201: {len(candidates)} cells x {len(recipes)} recipes x {config.seeds} seeds on {data.describe()}; "
           f"device {device}")
    t_cal = time.perf_counter()
    rates = base_rates(config, recipes, out_dir, report, progress)
    cal_seconds = time.perf_counter() - t_cal
    trainer = Trainer(config, data, device, rates["rates"])
    jobs = [(c, r, s) for c in candidates for s in range(config.seeds) for r in recipes]
    runs: list[Run] = []
    t0 = time.perf_counter()
    bar = tqdm(jobs, desc="nb201 retraining", unit="run", disable=not progress)
    for cand, recipe, seed in bar:
        r = trainer.run(cand, recipe, seed)
        runs.append(r)
        bar.set_postfix(cell=cand.cell, recipe=recipe, status=r.status, acc=f"{r.accuracy:.1f}")
        write_runs(out_dir / "runs.csv", runs)  # after every run: an interruption keeps what finished
    bar.close()
    seconds = time.perf_counter() - t0
    summary = analyse(config, recipes, candidates, runs)
    summary.update(
        base_rates=rates, seconds=round(seconds, 1), calibration_seconds=round(cal_seconds, 1),
        device=str(device), data=data.describe(), threads=torch.get_num_threads(),
        published_table=None if table is None else {"path": table.path, "column": table.column,
                                                     "rows": len(table.archs)},
        seconds_per_recipe={rc: round(sum(r.seconds for r in runs if r.recipe == rc), 1) for rc in recipes},
        augment=trainer.augment, mup_base_width=config.mup_base() if "mup" in recipes else None,
        command=command_line(config, out_dir),
    )
    write_outputs(out_dir, summary, runs)
    write_run_record(out_dir, "nb201", asdict(config), prov, finished=True, seconds=summary["seconds"])
    return summary


def analyse(config: Config, recipes: Sequence[str], candidates: Sequence[Candidate], runs: Sequence[Run]) -> dict:
    """Every metric of the report from the runs (a run missing for some (cell, recipe, seed) is an error)."""
    by = {(r.cell, r.recipe, r.seed): r for r in runs}
    seeds = sorted({r.seed for r in runs})
    ks = tuple(config.top_k)
    per_seed: dict[str, list[list[float]]] = {}
    for rc in recipes:
        mat = []
        for s in seeds:
            row = []
            for c in candidates:
                run_ = by.get((c.cell, rc, s))
                if run_ is None:
                    raise ExperimentError(f"no run for cell {c.cell} ({c.arch}), recipe {rc}, seed {s}")
                row.append(run_.accuracy)
            mat.append(row)
        per_seed[rc] = mat
    # rounded, so that cells with equal accuracies tie exactly however the sums were ordered (runs.csv round trips)
    mean = {rc: [round(float(v), 9) for v in np.mean(np.asarray(per_seed[rc], float), axis=0)] for rc in recipes}
    ok_all = {rc: [all(by[(c.cell, rc, s)].status == "ok" for s in seeds) for c in candidates] for rc in recipes}
    bench = mean["benchmark"]
    published = [c.published for c in candidates]
    stats: dict[str, dict] = {}
    for rc in recipes:
        st: dict = {
            "mean_accuracy": float(np.mean(mean[rc])),
            "statuses": {s: sum(1 for r in runs if r.recipe == rc and r.status == s) for s in STATUSES},
            "seed_tau_top_k": _keys(seed_tau_top_k(per_seed[rc], ks)),
            "pairwise_gap_mean": float(np.mean(pairwise_gaps(mean[rc]))),
            "pairwise_gap_median": float(np.median(pairwise_gaps(mean[rc]))),
            "seed_std_mean": float(np.mean(np.std(np.asarray(per_seed[rc], float), axis=0, ddof=1)))
            if len(seeds) >= 2 else None,
        }
        if rc != "benchmark":
            both = [i for i in range(len(candidates)) if ok_all[rc][i] and ok_all["benchmark"][i]]
            st["gain_vs_benchmark"] = mean_gain(mean[rc], bench)
            st["gain_vs_benchmark_both_ok"] = mean_gain([mean[rc][i] for i in both], [bench[i] for i in both])
            st["cells_both_ok"] = len(both)
            st["cells_improved"] = sum(1 for a, b in zip(mean[rc], bench) if a > b)
            st["cells_worse"] = sum(1 for a, b in zip(mean[rc], bench) if a < b)
            st["tau_vs_benchmark_top_k"] = _keys(tau_top_k(bench, mean[rc], ks))
            st["spearman_vs_benchmark"] = spearman(bench, mean[rc])
        if all(p is not None for p in published):
            st["kendall_vs_published"] = kendall_tau(published, mean[rc])
            st["spearman_vs_published"] = spearman(published, mean[rc])
        stats[rc] = st
    cells = []
    for i, c in enumerate(candidates):
        g = from_nb201(c.arch)
        row = {"cell": c.cell, "arch": c.arch, "stratum": c.stratum, "published": c.published, "index": c.index,
               "num_paths": path_statistics(g).output[0], "depth_power_sum": depth_power_sum(g)}
        for rc in recipes:
            row[rc] = mean[rc][i]
            row[f"{rc}_ok"] = ok_all[rc][i]
        cells.append(row)
    cfg = asdict(config)
    cfg["recipes"] = list(recipes)
    return {"config": cfg, "recipes": list(recipes), "seeds": seeds, "cells": cells, "stats": stats,
            "per_seed": per_seed, "top_k": list(ks), "notes": list(config.notes),
            "stratified_by": f"published {config.column()} deciles" if all(p is not None for p in published)
            else "deciles of sum_p L_p^3 (path statistics)"}


def read_runs(path: Path) -> list[Run]:
    """The runs of ``runs.csv`` (as :func:`write_runs` wrote them)."""
    def num(v, kind=float):
        return None if v in ("", None) else kind(v)

    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Run(int(r["cell"]), r["arch"], int(r["stratum"]), num(r["published"]), r["recipe"], int(r["seed"]),
                r["status"], float(r["accuracy"]), num(r["learning_rate"]), num(r["train_loss"]), int(r["epochs"]),
                float(r["seconds"]), r["message"]) for r in rows]


def reanalyse(out_dir: Path) -> dict:
    """Recompute every metric, table and plot of a finished run from its ``runs.csv`` and ``summary.json``
    (no training): for a changed analysis or report, or a run whose last step was interrupted."""
    out_dir = Path(out_dir)
    if not (out_dir / "runs.csv").is_file() or not (out_dir / "summary.json").is_file():
        raise ExperimentError(f"{str(out_dir)!r} holds no finished nb201 run (runs.csv and summary.json); run "
                              f"the experiment first")
    old = json.loads((out_dir / "summary.json").read_text())
    cfg = dict(old["config"])
    cfg["recipes"] = tuple(cfg["recipes"]) if cfg.get("recipes") else None
    cfg["top_k"] = tuple(cfg["top_k"])
    config = Config(**cfg)
    runs = read_runs(out_dir / "runs.csv")
    index = {c["cell"]: c.get("index") for c in old.get("cells", [])}
    cands = {}
    for r in runs:
        cands.setdefault(r.cell, Candidate(r.cell, r.arch, r.stratum, r.published, index.get(r.cell)))
    summary = analyse(config, old["recipes"], [cands[k] for k in sorted(cands)], runs)
    for key in ("base_rates", "seconds", "calibration_seconds", "device", "data", "threads", "published_table",
                "seconds_per_recipe", "augment", "mup_base_width", "command"):
        if key in old:
            summary[key] = old[key]
    write_outputs(out_dir, summary, runs)
    return summary


def _keys(d: dict) -> dict:
    """JSON-friendly keys for a {k: ...} dict (``100`` rather than ``100.0``)."""
    return {(str(int(k)) if float(k).is_integer() else str(k)): v for k, v in d.items()}


def write_runs(path: Path, runs: Sequence[Run]) -> None:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RUN_COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in runs:
        d = asdict(r)
        for k, digits in (("accuracy", 12), ("learning_rate", 8), ("train_loss", 6), ("published", 10)):
            if d[k] is not None:
                d[k] = f"{d[k]:.{digits}g}"
        w.writerow({k: ("" if d[k] is None else d[k]) for k in RUN_COLUMNS})
    atomic_write_text(path, buf.getvalue())


def write_outputs(out_dir: Path, summary: dict, runs: Sequence[Run]) -> None:
    import io

    write_runs(out_dir / "runs.csv", runs)
    recipes = summary["recipes"]
    cols = ["cell", "arch", "stratum", "published", "index", "num_paths", "depth_power_sum", *recipes,
            *(f"gain_{rc}" for rc in recipes if rc != "benchmark")]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for row in summary["cells"]:
        d = dict(row)
        for rc in recipes:
            if rc != "benchmark":
                d[f"gain_{rc}"] = f"{row[rc] - row['benchmark']:.4g}"
            d[rc] = f"{row[rc]:.4f}"
        if d.get("published") is not None:
            d["published"] = f"{d['published']:.4f}"
        w.writerow({k: ("" if d.get(k) is None else d[k]) for k in cols})
    atomic_write_text(out_dir / "cells.csv", buf.getvalue())
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    plot(out_dir, summary)


# --------------------------------------------------------------------------- plots
_COLOURS = {"paper": "tab:blue", "release": "tab:orange", "mup": "tab:green", "benchmark": "tab:gray"}


def plot(out_dir: Path, summary: dict) -> None:
    """``scatter.png`` (each recipe vs the benchmark recipe, Fig. 4 left / Fig. 8), ``tau_topk.png`` (Kendall tau
    among the top-K%, with the seed-vs-seed noise floor: Fig. 4 middle / Fig. 9) and ``gaps.png`` (pairwise
    accuracy gaps, Fig. 4 right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipes = summary["recipes"]
    others = [r for r in recipes if r != "benchmark"]
    cells = summary["cells"]
    bench = [c["benchmark"] for c in cells]
    fig, axes = plt.subplots(1, max(1, len(others)), figsize=(3.6 * max(1, len(others)), 3.5), squeeze=False)
    for ax, rc in zip(axes[0], others):
        ys = [c[rc] for c in cells]
        ax.scatter(bench, ys, s=16, c=_COLOURS.get(rc), alpha=0.85)
        lo, hi = min(bench + ys), max(bench + ys)
        pad = 0.03 * (hi - lo or 1)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8)
        g = summary["stats"][rc].get("gain_vs_benchmark")
        ax.set_title(f"{rc} vs benchmark: mean gain {g:+.2f}" if g is not None else rc, fontsize=9)
        ax.set_xlabel("accuracy (%), benchmark recipe", fontsize=8)
        ax.set_ylabel(f"accuracy (%), {rc}", fontsize=8)
    if not others:
        axes[0][0].axis("off")
    fig.tight_layout()
    fig.savefig(out_dir / "scatter.png", dpi=100)
    plt.close(fig)

    ks = summary["top_k"]
    labels = [str(int(k)) if float(k).is_integer() else str(k) for k in ks]
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for rc in others:
        taus = [summary["stats"][rc]["tau_vs_benchmark_top_k"][lab]["tau"] for lab in labels]
        _line(ax, ks, taus, f"{rc} vs benchmark", _COLOURS.get(rc), "-o")
    for rc in recipes:
        taus = [summary["stats"][rc]["seed_tau_top_k"][lab]["tau"] for lab in labels]
        if any(t is not None for t in taus):
            _line(ax, ks, taus, f"{rc}: seed vs seed", _COLOURS.get(rc), ":^")
    ax.set_xlabel("top-K% of cells (by the reference)")
    ax.set_ylabel("Kendall tau")
    ax.invert_xaxis()
    ax.axhline(0, color="k", lw=0.5)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "too few cells for any tau", ha="center", transform=ax.transAxes)
    ax.set_title("ranking agreement among the best cells", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "tau_topk.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for rc in recipes:
        gaps = np.sort(pairwise_gaps([c[rc] for c in cells]))
        if len(gaps):
            ax.plot(gaps, np.arange(1, len(gaps) + 1) / len(gaps), label=rc, color=_COLOURS.get(rc))
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("|accuracy gap| between two cells (points)")
    ax.set_ylabel("fraction of cell pairs")
    ax.legend(fontsize=8)
    ax.set_title("pairwise accuracy gaps (CDF)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "gaps.png", dpi=100)
    plt.close(fig)


def _line(ax, ks, taus, label, colour, style):
    pts = [(k, t) for k, t in zip(ks, taus) if t is not None]
    if pts:
        x, y = zip(*pts)
        ax.plot(x, y, style, label=label, color=colour, ms=4)
