"""Which path count predicts NAS-Bench-201's maximal learning rates: one cell's, or the whole network's?
And which in-degree: the edge's target (the paper's App. A) or its source (the authors' release)?

For a stratified sample of cells (with an input-output path), NNI's NAS-Bench-201 network is initialised by a
preset (``paper``: target in-degree; ``release``: source in-degree) and trained for one short epoch at every
rate of a log grid, with *one* learning rate (no rule), the benchmark's SGD (Nesterov momentum 0.9, weight decay
5e-4). The maximal rate is the largest whose final training loss is within 2% of the lowest (the project's
calibration criterion). Predictions, from the base cell's measured rate alone (one skip from input to output):

* ``one-cell``: ``sqrt(S_base / S)`` with ``S = sum over one cell's paths of (1 + k_p)^3`` (the paper's §4.3);
* ``whole-network``: the same over every input-output path of the whole network (stem, 3 stages of N cells,
  2 reduction blocks, classifier; :func:`nni_archscale.core.networks.nb201_network`), ``L_p`` = its parameterised
  layers;
* ``constant``: the base rate for every cell.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..core.formats import from_nb201
from ..core.networks import nb201_network
from ..core.paths import has_input_output_path, path_statistics, power_sum
from ..results import atomic_write_text
from ..stats import pearson
from ..torch_layer.sweep import MaximalRate, Sweep

PREDICTORS = ("one-cell", "whole-network", "constant")
#: the project's calibration criterion (module docstring): the largest rate within 2% of the lowest final loss
OBJECTIVE = MaximalRate(tolerance=0.02)
BASE_ARCH = "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"


def one_cell_sum(arch: str) -> int:
    return power_sum(path_statistics(from_nb201(arch)).output, 3, 1)


def whole_network_sum(arch: str, cells_per_stage: int) -> int:
    return nb201_network(from_nb201(arch), cells_per_stage).depth_power_sum(3)


def predict(predictor: str, arch: str, base_rate: float, cells_per_stage: int) -> float:
    """A predictor's maximal rate for ``arch`` from the base cell's measured rate."""
    if predictor == "constant":
        return base_rate
    total = one_cell_sum if predictor == "one-cell" else (lambda a: whole_network_sum(a, cells_per_stage))
    return base_rate * math.sqrt(total(BASE_ARCH) / total(arch))


@dataclass
class Config:
    cells: int = 10
    presets: tuple[str, ...] = ("paper", "release")
    width: int = 8
    cells_per_stage: int = 1
    low: float = 0.01
    high: float = 10.0
    points: int = 13
    epochs: int = 1
    batch_size: int = 64
    limit: int | None = None
    seed: int = 0
    threads: int = 1


def measure(config: Config, arch: str, preset: str, grid: list[float], data) -> dict[float, float]:
    """One cell's curve under one preset's init (one learning rate for every parameter): ``{rate: final training
    loss}`` at every rate of ``grid``, diverged runs infinite; its maximal rate is :data:`OBJECTIVE`'s."""
    import torch

    from ..nni_glue.calibration import build_nb201
    from ..torch_layer.rate_grid import final_loss, losses_on_grid
    from ..torch_layer.hook import HookConfig, prepare_nb201
    from ..torch_layer.param_groups import build_param_groups, make_optimizer
    from ..torch_layer.train import train_classifier
    from ..fairness.nb201_sampling import nni_sample

    cell = from_nb201(arch)

    def train_one(lr: float):
        torch.manual_seed(config.seed)
        model = build_nb201(config.width, config.cells_per_stage, data.num_classes, nni_sample(arch))
        prepare_nb201(model, cell, config.cells_per_stage, HookConfig(base_lr=1.0, init=preset),
                      torch.Generator().manual_seed(config.seed))  # the preset's init; its rate is not used
        opt = make_optimizer("sgd", build_param_groups(model, lr, weight_decay=5e-4), 0.9, True)
        losses: list[float] = []
        result = train_classifier(model, data.train, None, opt, epochs=config.epochs, batch_size=config.batch_size,
                                  seed=config.seed, num_classes=data.num_classes,
                                  on_step=lambda s, v: losses.append(v))
        return final_loss(losses), result.status

    return losses_on_grid(train_one, grid)


def run(config: Config, out_dir: Path, progress: Callable[[str], None] = print) -> dict:
    """Measure every sampled cell and the base cell under every preset on the engine
    (:class:`~nni_archscale.torch_layer.sweep.Sweep`: (preset, cell) jobs, each a curve over the fixed grid read off
    by :data:`OBJECTIVE`); write ``summary.json``, a report and
    ``run.json`` (commit, clean checkout or not, start and finish times)."""
    import torch

    from ..torch_layer.rate_grid import log_grid
    from ..torch_layer.data import load_dataset
    from ..fairness.nb201_sampling import sample_candidates
    from ..provenance import provenance, write_run_record

    prov = provenance()  # what ran, from which commit, when: run.json (see .held_out)
    torch.set_num_threads(config.threads)
    data = load_dataset("digits", None, config.limit, config.seed)  # once, for every cell and preset
    grid = log_grid(config.low, config.high, config.points)
    archs = [c.arch for c in sample_candidates(config.cells * 2, config.seed)
             if has_input_output_path(from_nb201(c.arch))][: config.cells]
    t0 = time.perf_counter()
    # the engine: (preset, cell) jobs, each a curve over the fixed grid, kept in memory (summary.json holds them)
    sweep = Sweep(on_record=lambda rec: progress(f"nb201-lr: {rec[0]} {rec[1]}: maximal rate {rec[2]:.4g}"))

    def one(preset: str, arch: str) -> tuple[str, str, float, dict[float, float]]:
        curve = measure(config, arch, preset, grid, data)
        return preset, arch, OBJECTIVE.rate(curve), curve

    jobs = [((preset, arch), (preset, arch)) for preset in config.presets for arch in [BASE_ARCH, *archs]]
    measured: dict[str, dict[str, float]] = {preset: {} for preset in config.presets}
    losses: dict[str, dict[str, dict]] = {preset: {} for preset in config.presets}
    for preset, arch, rate, curve in sweep.run(one, jobs):
        measured[preset][arch] = rate
        losses[preset][arch] = {str(k): (v if math.isfinite(v) else None) for k, v in curve.items()}
    summary = {"config": asdict(config), "cells": archs, "grid": grid, "measured": measured, "losses": losses,
               "seconds": time.perf_counter() - t0, "results": analyse(config, archs, measured)}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    atomic_write_text(out_dir / "README.md", report(summary))
    write_run_record(out_dir, "nb201-lr", asdict(config), prov, finished=True, seconds=summary["seconds"])
    return summary


def reanalyse(out_dir: Path) -> dict:
    """Rewrite a finished run's ``summary.json`` and ``README.md`` from its records alone (no training): every
    maximal rate chosen again from its stored grid losses by :data:`OBJECTIVE`, then :func:`analyse` and
    :func:`report`."""
    old = json.loads((Path(out_dir) / "summary.json").read_text())
    cfg = dict(old["config"])
    cfg["presets"] = tuple(cfg["presets"])
    config = Config(**cfg)
    measured = {preset: {arch: OBJECTIVE.rate({float(k): (math.inf if v is None else v) for k, v in curve.items()})
                         for arch, curve in per_arch.items()}
                for preset, per_arch in old["losses"].items()}
    summary = {"config": asdict(config), "cells": old["cells"], "grid": old["grid"], "measured": measured,
               "losses": old["losses"], "seconds": old["seconds"],
               "results": analyse(config, old["cells"], measured)}
    atomic_write_text(Path(out_dir) / "summary.json", json.dumps(summary, indent=2))
    atomic_write_text(Path(out_dir) / "README.md", report(summary))
    return summary


def analyse(config: Config, archs: list[str], measured: dict[str, dict[str, float]]) -> dict:
    """Mean absolute log2 error and Pearson r of every predictor, per preset."""
    out = {}
    for preset, rates in measured.items():
        base = rates[BASE_ARCH]
        m = np.log2([rates[a] for a in archs])
        out[preset] = {}
        for p in PREDICTORS:
            pred = np.log2([predict(p, a, base, config.cells_per_stage) for a in archs])
            r = pearson(pred, m, constant="std")
            out[preset][p] = {"mean_abs_octaves": float(np.mean(np.abs(pred - m))), "pearson_r_log": r,
                              "mean_signed_octaves": float(np.mean(pred - m))}
    return out


def report(summary: dict) -> str:
    cfg = summary["config"]
    lines = [
        "# NAS-Bench-201: one cell's paths or the whole network's? target or source in-degree?",
        "",
        __doc__.split("\n\n", 1)[1].strip(),
        "",
        f"Setup: digits, {len(summary['cells'])} cells stratified by one-cell `sum_p L_p^3` plus the base cell, width "
        f"C = {cfg['width']}, N = {cfg['cells_per_stage']} cell(s) per stage, {cfg['epochs']} epoch(s), batch "
        f"{cfg['batch_size']}, grid {cfg['points']} rates from {cfg['low']:g} to {cfg['high']:g} (log-spaced), "
        f"seed {cfg['seed']}; {summary['seconds']:.0f} s.",
        "",
        "| init (preset) | predictor | mean abs error (octaves) | mean signed (octaves) | r (log-log) |",
        "|---|---|---|---|---|",
    ]
    for preset, res in summary["results"].items():
        for p, st in res.items():
            r = "n/a" if st["pearson_r_log"] is None else f"{st['pearson_r_log']:.2f}"
            lines.append(f"| {preset} | `{p}` | {st['mean_abs_octaves']:.2f} | {st['mean_signed_octaves']:+.2f} | {r} |")
    lines += ["", "Measured maximal rates (base cell first):", "",
              "| cell | " + " | ".join(summary["measured"]) + " |", "|---|" + "---|" * len(summary["measured"])]
    for arch in [BASE_ARCH, *summary["cells"]]:
        lines.append(f"| `{arch}` | " + " | ".join(f"{summary['measured'][p][arch]:.3g}" for p in summary["measured"]) + " |")
    return "\n".join(lines) + "\n"
