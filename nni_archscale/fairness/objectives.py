"""The base rate ``c`` at the search's own budget: the two calibration objectives beside the paper's.

* ``maxlr`` (the paper's recipe, :func:`nni_archscale.nni_glue.calibration.calibrate_space`): the largest rate
  within 2% of the lowest training loss after one epoch of the base network;
* ``accuracy``: the base network's best rate by mean validation accuracy after the search's epochs, over
  ``seeds`` seeds, on the half-octave grid widened until the best is interior (the fairness run's level
  ``product``);
* ``population``: the one rate with the best mean validation accuracy over a small seeded sample of
  ``candidates`` candidates of the space (the fairness run's level ``population``): a base network's own best rate
  need not be the population's.

Both train exactly as ``archscale search`` trains a candidate (:func:`.engine.train_job`) and are cached in the
calibration cache (their ``losses`` are validation *errors*, 1 - accuracy, per rate) with their trainings kept
under ``<cache folder>/runs/`` so that an interrupted calibration resumes. Which objective is the default is
decided by ``reports/fairness/`` (see :data:`nni_archscale.rules.defaults.BASE_RATE_OBJECTIVES`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from .candidates import BASE_KEY
from .curves import best_rate, fit_shift
from .engine import FairnessOptions, Runner, base_spec, grid_curve, initial_grid, train_until_interior

OBJECTIVES = ("maxlr", "accuracy", "population")


def budget_rate(opts: FairnessOptions, objective: str, start: float, cache_path: str | Path,
                progress: bool = True, report=print, refresh: bool = False):
    """The base rate by ``objective`` (``accuracy`` or ``population``, module docstring) for the budget in ``opts``
    (``opts.candidates``: the population's size), as a cached
    :class:`~nni_archscale.torch_layer.rate_grid.Calibration`. ``start``: where the grid starts (any rate near
    the answer, e.g. the one-epoch maximal rate or 0.1)."""
    from ..nni_glue.calibration import space_name
    from ..torch_layer.rate_grid import Calibration, CalibrationCache

    if objective not in ("accuracy", "population"):
        raise ValueError(f"objective must be accuracy or population here (maxlr is calibrate_space), got {objective!r}")
    hook = {k: v for k, v in opts.hook.items() if k not in ("base_lr", "rate_rule", "batch_size")}
    recipe = {"objective": objective, "epochs": opts.epochs, "seeds": opts.seeds, "limit": opts.limit,
              "seed": opts.seed, "hook": hook, "grid": "half-octave, widened until interior",
              **({"candidates": opts.candidates, "sample_seed": opts.sample_seed} if objective == "population" else {}),
              "criterion": "best mean validation accuracy (losses are 1 - accuracy)"}
    name = space_name(opts.space, opts.width, opts.cells_per_stage, opts.space_options or None) \
        if opts.space != "dagcell" else f"dagcell-w{opts.dag_width}"
    key = CalibrationCache.key(name, opts.dataset, hook.get("optimizer", "sgd"), opts.batch_size,
                               f"{hook.get('init', 'paper')}:{objective}")
    cache = CalibrationCache(cache_path)
    if not refresh:
        cal = cache.get(key, recipe)
        if cal is not None:
            return cal
    digest = hashlib.sha1(json.dumps([key, recipe], sort_keys=True, default=str).encode()).hexdigest()[:12]
    folder = Path(cache_path).parent / "runs" / digest
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    runner = Runner(opts, folder, progress)
    try:
        if objective == "accuracy":
            specs = [base_spec(opts)]
        else:
            from .benchmark import choose_candidates
            from ..torch_layer.data import load_dataset

            data = load_dataset(opts.dataset, opts.data_dir, opts.limit, opts.seed)
            specs, _ = choose_candidates(opts, data.num_classes)
        grids = train_until_interior(runner, specs, {s.key: initial_grid(start, []) for s in specs}, report)
        curves = [grid_curve(runner, s, grids[s.key]) for s in specs]
    finally:
        runner.close()
    if objective == "accuracy":
        rate = best_rate(curves[0])
        mean = curves[0].mean()
        errors = {f"{2.0 ** x:.6g}": float(1 - m) for x, m in zip(curves[0].log_rates, mean)}
    else:
        rate = float(2.0 ** fit_shift(curves, np.zeros(len(curves))))
        xs = sorted({float(x) for c in curves for x in c.log_rates})
        errors = {f"{2.0 ** x:.6g}": float(1 - np.mean([np.interp(x, c.log_rates, c.mean()) for c in curves]))
                  for x in xs}
    cal = Calibration(key, rate, recipe, errors, time.perf_counter() - t0, resolution_octaves=0.5 if objective ==
                      "accuracy" else 1 / 16)
    cache.put(cal)
    return cal


def calibration_options(space: str, dataset: str, epochs: int, batch_size: int, hook: dict, seeds: int = 2,
                        candidates: int = 5, **size) -> FairnessOptions:
    """The :class:`FairnessOptions` a calibration at a search's budget trains with (``size``: data_dir, limit,
    width, cells_per_stage, dag_width, space_options, seed, device, augment, compile, workers)."""
    opts = FairnessOptions(space=space, dataset=dataset, epochs=epochs, batch_size=batch_size, hook=dict(hook),
                           seeds=seeds, candidates=max(candidates, 1))
    return replace(opts, **{k: v for k, v in size.items() if k in asdict(opts) and v is not None})


__all__ = ["OBJECTIVES", "budget_rate", "calibration_options", "BASE_KEY"]
