"""How the NAS-Bench-201 retraining experiment (:mod:`.nb201`) trains a cell: its options (:class:`Config`, and
the command line that reproduces them), the base rate ``c`` of each fair recipe (:func:`base_rates`: ``--base-lr``
or the project's calibration), and one (cell, recipe, seed) run (:class:`Trainer` -> :class:`Run`), whose status
is one of :data:`STATUSES` (see :mod:`.nb201` for the recipes and outcomes)."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch

from ..errors import NoPathError
from ..core.formats import from_nb201
from ..core.paths import has_input_output_path
from ..rules.presets import Init
from ..run_options import RunOptions
from ..torch_layer.train import device_request
from .mup_cellnet import mup_available
from .choices import DEFAULT_RECIPES, RECIPES, TOP_K
from ..fairness.nb201_sampling import Candidate, ExperimentError, nni_sample
from ..fairness.published_table import PUBLISHED_COLUMNS

#: recipes whose rate comes from the project's calibration on the base network (the same budget for each):
#: ``shared`` is one rate for every cell tuned that way with He's init (the best simple alternative a user has);
#: ``archscale`` is what the product applies to NNI's NasBench201 (``prepare_candidate``, rate rule ``auto``:
#: the evidence-backed default of ``nni_archscale.rules.defaults``); paper / release / exact are the paper's rule
FAIR_RECIPES = ("shared", "archscale", "paper", "release", "exact")
#: the init a fair recipe trains with (:class:`nni_archscale.rules.presets.Init`); its preset's init is also the one
#: its base rate is calibrated under ("exact" = the paper's preset + node-sum scalars, calibrated as "paper")
RECIPE_INIT = {"shared": Init.STANDARD, "archscale": Init.PAPER, "paper": Init.PAPER, "release": Init.RELEASE,
               "exact": Init.EXACT}
#: a run's outcomes (:mod:`.nb201` defines each)
STATUSES = ("ok", "no-path", "diverged", "oom")


@dataclass
class Config(RunOptions):
    """The experiment's options: the data, size, base rate (``--base-lr``; None: calibrated per preset) and device
    of :class:`~nni_archscale.run_options.RunOptions`, and the experiment's own."""

    cells: int = 12
    seeds: int = 2
    sample_seed: int = 0
    recipes: tuple[str, ...] | None = None   # None: all, mup dropped (with a note) when not installed
    epochs: int = 4
    batch_size: int = 64
    bench_lr: float = 0.1
    bench_init: str = "pytorch"              # pytorch (NAS-Bench-201's code) | standard (He fan-in)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    calibration_low: float = 1e-3
    calibration_high: float = 10.0
    calibration_dir: str | None = None       # default: the output directory
    published: str | None = None
    published_column: str | None = None
    mup_base_width: int | None = None        # default: width // 2
    augment: bool | None = None              # None: flip + crop for CIFAR / ImageNet16, none for digits
    top_k: tuple[float, ...] = TOP_K
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
        if value == getattr(default, name) or value is None or (name == "device" and device_request(value) is None):
            continue
        if isinstance(value, (tuple, list)):
            value = ",".join(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v) for v in value)
        parts += [flag, str(value)]
    if config.augment is not None:
        parts.append("--augment" if config.augment else "--no-augment")
    if out is not None:
        parts += ["--out", str(out)]
    return " ".join(shlex.quote(p) for p in parts)


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
        from ..rules.defaults import INIT_RATE_RULES
        from ..torch_layer.hook import HookConfig, apply_rate_rule, prepare_nb201
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
                    hook = HookConfig(base_lr=self.base_lrs[recipe], init="paper", optimizer="sgd",
                                      momentum=cfg.momentum, nesterov=True, weight_decay=cfg.weight_decay,
                                      scheduler="cosine", rate_rule="auto")
                    prepared = prepare_candidate(model, hook, sample=sample,
                                                 generator=torch.Generator().manual_seed(init_seed))
                    model.to(self.device)
                    opt = prepared.make_optimizer()
                    lr = prepared.learning_rate
                else:
                    scheme = Init.STANDARD if recipe == "benchmark" else RECIPE_INIT[recipe]
                    base = cfg.bench_lr if recipe == "benchmark" else self.base_lrs[recipe]
                    model = self._build(sample)
                    hook = HookConfig(base_lr=base, init=scheme.value, optimizer="sgd", momentum=cfg.momentum,
                                      nesterov=True, weight_decay=cfg.weight_decay, scheduler="cosine")
                    try:
                        prepared = prepare_nb201(model, cell, cfg.cells_per_stage, hook,
                                                 torch.Generator().manual_seed(init_seed), adapter="nb201-experiment")
                    except NoPathError as exc:  # the path check above makes this unreachable; kept as the defined outcome
                        return outcome("no-path", message=str(exc))
                    if scheme.value in INIT_RATE_RULES:  # He's init: its rate rule for every family (one shared rate)
                        apply_rate_rule(prepared, model, INIT_RATE_RULES[scheme.value])
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

    from ..nni_glue.calibration import CalibrationOptions, bar_progress, calibrate_nb201

    cal_dir = Path(config.calibration_dir).expanduser() if config.calibration_dir else out_dir
    rates, details = {}, {}
    for preset in dict.fromkeys(RECIPE_INIT[r].preset.name for r in fair):
        bar = tqdm(total=config.calibration_points, desc=f"calibrating c ({preset})", unit="lr", leave=False,
                   disable=not progress)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # one cache file per preset: the calibration cache key does not include the preset
            cal = calibrate_nb201(
                CalibrationOptions("nb201", config.dataset, config.data_dir, config.width, config.cells_per_stage,
                                   "sgd", config.batch_size, preset, epochs=1, low=config.calibration_low,
                                   high=config.calibration_high, points=config.calibration_points,
                                   seed=config.sample_seed, device=config.device, limit=config.limit,
                                   momentum=config.momentum, weight_decay=config.weight_decay),
                cache_path=cal_dir / f"calibration-{preset}.json", progress=bar_progress(bar), report=report)
        bar.close()
        rates[preset] = cal.base_lr
        details[preset] = {"base_lr": cal.base_lr, "source": cal.source, "key": cal.key,
                           "losses": {str(k): (v if v is not None and math.isfinite(v) else None)
                                      for k, v in cal.losses.items()}}
        report(f"nb201: base rate c ({preset}) = {cal.base_lr:g} ({cal.source})")
    return {"rates": {r: rates[RECIPE_INIT[r].preset.name] for r in fair}, "source": "calibration",
            "details": details}
