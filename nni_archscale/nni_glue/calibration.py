"""``archscale calibrate``: the base rate ``c`` of a model space, found by training its base network briefly at
every rate of a log grid with the same optimizer settings the search uses.

The base network: for NAS-Bench-201, the NasBench201 macro network whose cell is one skip edge from input to
output (one path, no conv: sum_p L_p^3 = 1, the rule's base); for the other NNI spaces
(:mod:`.spaces`), the space's sample of seed 0 (a fixed, ordinary member of the space: these spaces have no
network that the graph maths singles out). The measured and segmented rules compare every candidate with this
same base network (:func:`space_reference`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..rules import registry
from ..rules.presets import Init
from ..torch_layer.rate_grid import ZOOM_OCTAVES, Calibration, CalibrationCache, final_loss, log_grid, refine_rate
from ..torch_layer.data import load_dataset
from ..torch_layer.hook import HookConfig
from ..torch_layer.train import pick_device, train_classifier

BASE_CELL = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
BASE_SAMPLE = {"cell/0_1": "none", "cell/0_2": "none", "cell/1_2": "none",
               "cell/0_3": "skip_connect", "cell/1_3": "none", "cell/2_3": "none"}


def default_cache_path() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "nni-archscale" / "calibration.json"


def bar_progress(bar):
    """A ``progress`` callback for :func:`calibrate_nb201` that advances a tqdm ``bar`` by one rate. The bar starts
    at the coarse grid's size; the refinement tries more rates than that, so the bar's total grows with them."""

    def progress(lr: float, loss: float, status: str) -> None:
        if bar.total is not None and bar.n >= bar.total:
            bar.total += 1
        bar.update(1)

    return progress


def nb201_space_name(width: int, cells_per_stage: int) -> str:
    return f"nb201-C{width}-N{cells_per_stage}"


def build_nb201(width: int, cells_per_stage: int, num_classes: int, sample: dict) -> torch.nn.Module:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nni.nas.hub.pytorch import NasBench201

        space = NasBench201(stem_out_channels=width, num_modules_per_stack=cells_per_stage, num_labels=num_classes)
        return space.freeze(sample)


def space_name(space: str, width: int = 8, cells_per_stage: int = 1, options: dict | None = None) -> str:
    """The name a space's calibration is filed under (its size is part of it)."""
    if space == "nb201":
        options = {"stem_out_channels": width, "num_modules_per_stack": cells_per_stage, **(options or {})}
        if set(options) == {"stem_out_channels", "num_modules_per_stack"}:
            return nb201_space_name(options["stem_out_channels"], options["num_modules_per_stack"])
    opts = ",".join(f"{k}={v}" for k, v in sorted((options or {}).items()))
    return f"{space}({opts})" if opts else space


def base_network(space: str, num_classes: int, width: int = 8, cells_per_stage: int = 1,
                 options: dict | None = None) -> tuple[dict, torch.nn.Module]:
    """``(sample, model)`` of the space's base network (see the module docstring)."""
    if space == "nb201" and not options:
        return dict(BASE_SAMPLE), build_nb201(width, cells_per_stage, num_classes, BASE_SAMPLE)
    from .spaces import build_space, sample_model

    if space == "nb201":
        opts = {"stem_out_channels": width, "num_modules_per_stack": cells_per_stage, **options}
        return dict(BASE_SAMPLE), build_space("nb201", num_classes, **opts).freeze(BASE_SAMPLE)
    return sample_model(space, 0, num_classes, **(options or {}))


def measurement_batch(data, seed: int = 0, size: int = 64):
    """The fixed training batch the measured rule uses (base network and every candidate alike)."""
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data.train), generator=gen)[: min(size, len(data.train))]
    return data.train.batch(idx.to(data.train.y.device))


def space_reference(space: str, data, config: HookConfig, width: int = 8, cells_per_stage: int = 1,
                    options: dict | None = None, seed: int = 0):
    """The base network's :class:`~nni_archscale.torch_layer.rate_choice.Reference` (its first-step change on the measurement
    batch and its segment factor), initialised by ``config``'s init as every candidate is."""
    sample, model = base_network(space, data.num_classes, width, cells_per_stage, options)
    return model_reference(model, sample, data, config, seed)


def model_reference(model: torch.nn.Module, sample: dict | None, data, config: HookConfig, seed: int = 0):
    """:func:`space_reference` of a base network already built (``sample``: its NNI sample, or None)."""
    from ..torch_layer.rate_choice import reference_of
    from .adapters import nni_leaf, prepare_candidate

    base_cfg = replace(config, base_lr=1.0, rate_rule=registry.SHARED.name)
    prepare_candidate(model, base_cfg, sample=sample,  # auto: the NB201 cell rule for nb201, else fx
                      generator=torch.Generator().manual_seed(seed))  # the init is drawn on the CPU
    model.to(data.train.y.device)
    return reference_of(model, measurement_batch(data, seed), config.optimizer, leaf=nni_leaf)


@dataclass(frozen=True)
class CalibrationOptions:
    """What :func:`calibrate_space` trains: the space's base network at a size, on a dataset, by a recipe, over a
    log grid of rates (``low..high`` in ``points`` rates, refined to a quarter octave). ``init`` is the init the
    base network is drawn with (:class:`~nni_archscale.rules.presets.Init`); ``space_options`` are the space's own
    constructor arguments (``--space-arg``)."""

    space: str = "nb201"
    dataset: str = "digits"
    data_dir: str | None = None
    width: int = 8
    cells_per_stage: int = 1
    optimizer: str = "sgd"
    batch_size: int = 128
    init: str = "paper"
    epochs: int = 1
    steps: int | None = None
    low: float = 1e-3
    high: float = 10.0
    points: int = 9
    seed: int = 0
    device: str | None = None
    limit: int | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-4
    space_options: dict | None = None


def calibrate_space(opts: CalibrationOptions, cache_path: str | Path | None = None, refresh: bool = False,
                    progress=None, report=print) -> Calibration:
    """Find (or read from the cache) the base rate ``c`` of ``opts.space`` on ``opts.dataset``: the base network
    (:func:`base_network`) initialised by ``opts.init``, one rate for all its parameters, the coarse grid refined
    to a quarter octave (:func:`~nni_archscale.torch_layer.rate_grid.refine_rate`). With ``init="standard"``
    (He init) this is the *shared rate* a user would tune on the base network: the baseline of
    ``archscale search --compare shared-rate``."""
    from .adapters import prepare_candidate

    cache = CalibrationCache(cache_path or default_cache_path())
    key = CalibrationCache.key(space_name(opts.space, opts.width, opts.cells_per_stage, opts.space_options),
                               opts.dataset, opts.optimizer, opts.batch_size, opts.init)
    scheme = Init.of(opts.init)
    recipe = {"init": scheme.value, "epochs": opts.epochs, "steps": opts.steps,
              "grid": log_grid(opts.low, opts.high, opts.points),
              "seed": opts.seed, "limit": opts.limit, "momentum": opts.momentum, "weight_decay": opts.weight_decay,
              "criterion": "largest rate within 2% of the lowest final training loss",
              "refine": f"zoom at {ZOOM_OCTAVES} octave; widen at the grid's ends"}
    reported = 0

    def flush():
        nonlocal reported
        for problem in cache.problems[reported:]:
            report(f"archscale: warning: {problem}")
        reported = len(cache.problems)

    flush()
    if not refresh:
        cal = cache.get(key, recipe)
        flush()
        if cal is not None:
            return cal
    dev = pick_device(opts.device)
    data = load_dataset(opts.dataset, opts.data_dir, opts.limit, opts.seed).to(dev)

    def train_one(lr: float):
        torch.manual_seed(opts.seed)
        sample, model = base_network(opts.space, data.num_classes, opts.width, opts.cells_per_stage,
                                     opts.space_options)
        cfg = HookConfig(base_lr=lr, init=scheme.value, optimizer=opts.optimizer,
                         momentum=opts.momentum, weight_decay=opts.weight_decay, scheduler="none",
                         rate_rule=registry.SHARED.name)
        prepared = prepare_candidate(model, cfg, sample=sample, generator=torch.Generator().manual_seed(opts.seed))
        model.to(dev)
        losses: list[float] = []
        result = train_classifier(model, data.train, None, prepared.make_optimizer(), epochs=opts.epochs,
                                  batch_size=opts.batch_size, seed=opts.seed, max_steps=opts.steps,
                                  num_classes=data.num_classes, on_step=lambda s, v: losses.append(v))
        return final_loss(losses), result.status

    import time

    t0 = time.perf_counter()
    found = refine_rate(train_one, recipe["grid"], progress=progress)
    cal = Calibration(key, found.rate, recipe, found.losses, time.perf_counter() - t0,
                      resolution_octaves=found.resolution_octaves, widened=found.widened)
    cache.put(cal)
    return cal


def calibrate_nb201(opts: CalibrationOptions, cache_path: str | Path | None = None, refresh: bool = False,
                    progress=None, report=print) -> Calibration:
    """:func:`calibrate_space` for NNI's NAS-Bench-201 space (``opts.space`` is set to ``nb201``)."""
    return calibrate_space(replace(opts, space="nb201"), cache_path, refresh, progress, report)
