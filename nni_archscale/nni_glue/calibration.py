"""``archscale calibrate`` for NNI's NAS-Bench-201 space: the base network is the NasBench201 macro network whose
cell is one skip edge from input to output (one path, no conv: sum_p L_p^3 = 1, the rule's base), trained
briefly at every rate of a log grid with the same optimizer settings the search uses."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..formats import from_nb201
from ..torch_layer.calibrate import ZOOM_OCTAVES, Calibration, CalibrationCache, final_loss, log_grid, refine_rate
from ..torch_layer.data import load_dataset
from ..torch_layer.hook import HookConfig, prepare_nb201
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


def calibrate_nb201(dataset: str = "digits", data_dir: str | None = None, width: int = 8, cells_per_stage: int = 1,
                    optimizer: str = "sgd", batch_size: int = 128, preset: str = "paper", epochs: int = 1,
                    steps: int | None = None, low: float = 1e-3, high: float = 10.0, points: int = 9,
                    seed: int = 0, device: str | None = None, limit: int | None = None,
                    cache_path: str | Path | None = None, refresh: bool = False, progress=None,
                    report=print, momentum: float = 0.9, weight_decay: float = 5e-4) -> Calibration:
    """Find (or read from the cache) the base rate ``c`` for the NB201 space on ``dataset``: the coarse grid
    ``low..high`` in ``points`` rates, refined to a quarter octave (:func:`~..torch_layer.calibrate.refine_rate`).
    With ``preset="standard"`` (He init, one rate for all) this is the *shared rate* a user would tune on the
    base network: the baseline of ``archscale search --compare shared-rate``."""
    cache = CalibrationCache(cache_path or default_cache_path())
    key = CalibrationCache.key(nb201_space_name(width, cells_per_stage), dataset, optimizer, batch_size, preset)
    recipe = {"preset": preset, "epochs": epochs, "steps": steps, "grid": log_grid(low, high, points),
              "seed": seed, "limit": limit, "momentum": momentum, "weight_decay": weight_decay,
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
    dev = pick_device(device)
    data = load_dataset(dataset, data_dir, limit, seed).to(dev)
    cell = from_nb201(BASE_CELL)

    def train_one(lr: float):
        torch.manual_seed(seed)
        model = build_nb201(width, cells_per_stage, data.num_classes, BASE_SAMPLE)
        cfg = HookConfig(base_lr=lr, preset=preset, optimizer=optimizer, momentum=momentum,
                         weight_decay=weight_decay, scheduler="none")
        prepared = prepare_nb201(model, cell, cells_per_stage, cfg, torch.Generator().manual_seed(seed),
                                 adapter="nb201-base")
        model.to(dev)
        losses: list[float] = []
        result = train_classifier(model, data.train, None, prepared.make_optimizer(), epochs=epochs,
                                  batch_size=batch_size, seed=seed, max_steps=steps,
                                  num_classes=data.num_classes, on_step=lambda s, v: losses.append(v))
        return final_loss(losses), result.status

    import time

    t0 = time.perf_counter()
    grid = recipe["grid"]
    found = refine_rate(train_one, grid, progress=progress)
    cal = Calibration(key, found.rate, recipe, found.losses, time.perf_counter() - t0,
                      resolution_octaves=found.resolution_octaves, widened=found.widened)
    cache.put(cal)
    return cal
