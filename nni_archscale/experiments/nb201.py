"""NAS-Bench-201 fair retraining (paper §4.3, App. E.3, E.4): does a per-architecture init and learning rate
change which cells look best?

A stratified, seeded sample of NAS-Bench-201 cells is retrained, each cell under every *recipe*:

* ``benchmark``: the benchmark's own recipe: PyTorch's default init (what NAS-Bench-201's training code uses;
  ``--bench-init standard`` gives He fan-in init instead) and one learning rate for every cell (0.1), SGD with
  Nesterov momentum 0.9, weight decay 5e-4, cosine decay to 0;
* ``paper`` / ``release``: the same optimizer and schedule, but every cell gets the project's init and learning
  rate (:func:`nni_archscale.rules.paper.scale` with context ``nb201-cell``, the whole-network init plan of
  :mod:`nni_archscale.rules.planner`, applied by :func:`nni_archscale.torch_layer.hook.prepare_nb201`), the base rate
  ``c`` from the project's calibration (per preset) or ``--base-lr``;
* ``exact``: ``paper`` plus the variance-exact init (``--init exact``): fixed scalars on every cell node's sum
  that keep each node at the cell input's second moment (:func:`nni_archscale.rules.planner.nb201_output_scales`);
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

This module is the experiment itself (:func:`run`, :func:`analyse`, ``runs.csv`` read and written,
:func:`reanalyse`); the cells are drawn by :mod:`nni_archscale.fairness.nb201_sampling`, trained by :mod:`.nb201_training`, scored by
:mod:`nni_archscale.stats` and reported by :mod:`.nb201_report`.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..core.formats import from_nb201
from ..core.paths import path_statistics
from ..results import atomic_write_text
from ..stats import kendall_tau, mean_gain, pairwise_gaps, seed_tau_top_k, spearman, tau_top_k
from ..torch_layer.sweep import Sweep
from ..fairness.nb201_sampling import Candidate, ExperimentError, depth_power_sum, sample_candidates
from .nb201_report import plot
from .nb201_training import STATUSES, Config, Run, Trainer, base_rates, command_line
from ..fairness.published_table import read_published

RUN_COLUMNS = ["cell", "arch", "stratum", "published", "recipe", "seed", "status", "accuracy", "learning_rate",
               "train_loss", "epochs", "seconds", "message"]


def run(config: Config, out_dir: Path, report: Callable[[str], None] = print, progress: bool = True) -> dict:
    """Sample, train every (cell, recipe, seed), write ``runs.csv``, ``cells.csv``, ``summary.json``, the plots
    and ``run.json`` (commit, clean checkout or not, start and finish times) into ``out_dir``; returns the
    summary (the report is written by :mod:`.nb201_report`). The trainings run on the engine
    (:class:`~nni_archscale.torch_layer.sweep.Sweep`), one job per (cell, recipe, seed)."""
    from ..torch_layer.data import load_dataset
    from ..torch_layer.train import pick_device
    from ..provenance import provenance, write_run_record

    config.validate()
    recipes = config.resolved_recipes()
    prov = provenance()  # what ran, from which commit, when: run.json (see .held_out)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(out_dir, "nb201", asdict(config), prov)  # runs.csv grows run by run: record its origin first
    if config.threads:
        torch.set_num_threads(config.threads)
    device = pick_device(config.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    from ..fairness.published_table import find_published_table

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
    runs: list[Run] = []

    def keep(r: Run) -> None:
        runs.append(r)
        if sweep.bar is not None:
            sweep.bar.set_postfix(cell=r.cell, recipe=r.recipe, status=r.status, acc=f"{r.accuracy:.1f}")
        write_runs(out_dir / "runs.csv", runs)  # after every run: an interruption keeps what finished

    # the engine: cells x recipes x seeds, each recipe one rate (a grid of one point), accuracy after the budget
    sweep = Sweep(bar="nb201 retraining" if progress else None, unit="run", on_record=keep)
    t0 = time.perf_counter()
    try:
        sweep.run(trainer.run, [((c.cell, r, s), (c, r, s))
                                for c in candidates for s in range(config.seeds) for r in recipes])
    finally:
        sweep.close()
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
    # a cell's published accuracy as the summary holds it, unrounded (runs.csv writes it rounded)
    published = {c["cell"]: c["published"] for c in old.get("cells", []) if c.get("published") is not None}
    cands = {}
    for r in runs:
        cands.setdefault(r.cell, Candidate(r.cell, r.arch, r.stratum, published.get(r.cell, r.published),
                                           index.get(r.cell)))
    summary = analyse(config, old["recipes"], [cands[k] for k in sorted(cands)], runs)
    # the run's options as it recorded them: its keys in their order, then any option added since
    summary["config"] = {**{k: summary["config"][k] for k in old["config"] if k in summary["config"]},
                         **summary["config"]}
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
