"""Maximal learning-rate prediction: the paper's §4.1 (MLP topology), App. D (MLP depth), §4.2 (CNN kernels).

For every sampled network and every (init, optimizer) pair: measure the maximal learning rate by the
one-epoch grid search (:mod:`.maxlr`) for several seeds; measure the base network (the cell
``0_00_000_2000``, one Linear/Conv edge from input to output) the same way; predict every network's rate as
``base rate x rule multiplier`` for each rule, with no other fitted number; report the Pearson r of log
predicted vs log measured and the mean absolute error in octaves (log2), plus the seed-to-seed r as the
measurement's own noise floor.

Init ``mup`` trains every network the μP way (the ``mup`` package's parametrization, :mod:`.mup_cellnet`) and is
judged only as μP predicts: the base network's rate for every network (rule ``mup``).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import NoPathError, RuleError
from ..core.formats import from_paper_code, to_paper_code
from ..core.graph import ArchGraph
from ..core.paths import has_input_output_path
from ..rules.first_step import ABSOLUTE_RULES, BASE_CELL_CODE, readout_limited_rate
from ..stats import pearson
from ..torch_layer.rate_grid import log2_grid
from ..torch_layer.sweep import Sweep
from ..core.networks import CellNetwork
from ..rules.first_step import cell_init
from .datasets import load_train_set
from .maxlr import best_index, train_grid
from .choices import FAMILIES  # re-exported; defined torch-free for the command line

BASE_CELL = BASE_CELL_CODE  # one Linear/Conv edge from the cell's input to its output


# --------------------------------------------------------------------------- rules as predictors
def rule_multiplier(rule: str, net: CellNetwork, init: str, optimizer: str) -> float:
    """The rate a rule gives ``net``'s cell relative to the base cell, for this experiment's network. ``mup`` gives
    every network the same rate: muP transfers a rate across width, and says nothing about topology. ``standard``
    (the committed reports' name for one rate for every network, the rate rule ``shared``) gives 1 too; ``paper``
    and ``release`` are eq. 8/9 counted as those published conventions count."""
    from .rule_variants import rule_multiplier as multiplier

    if rule in ("mup", "standard"):
        return 1.0
    return multiplier(rule, net, init, optimizer)


def available_rules() -> tuple[str, ...]:
    from ..rules import first_step
    from .rule_variants import ALL_RULES

    # the product's rules and the research variants (the optimizer-dispatching aliases would only repeat a column)
    return ("paper", "release", "standard", *ALL_RULES, *first_step.ABSOLUTE_RULES, "mup")


def applies(rule: str, init: str) -> bool:
    """The ``mup`` predictor is judged on networks trained the muP way (init ``mup``) and only there; the
    graph rules are judged on the other inits."""
    return (rule == "mup") == (init == "mup")


# --------------------------------------------------------------------------- sampling networks
def sample_topology_cells(count: int, seed: int = 0, nodes: int = 5) -> list[ArchGraph]:
    """Distinct random cells from the paper's 3^10 space (5 nodes), each with an input-output path."""
    rng = random.Random(seed)
    seen, cells = set(), []
    groups = [range(i) for i in range(1, nodes)]
    while len(cells) < count:
        code = "_".join("".join(rng.choice("012") for _ in g) for g in groups)
        cell = from_paper_code(code)
        if code in seen or code == BASE_CELL or not has_input_output_path(cell):
            continue
        seen.add(code)
        cells.append(cell)
    return cells


def chain_cell(edges: int) -> ArchGraph:
    """A cell that is a chain of ``edges`` Linear/Conv edges (a plain network of edges + 2 layers)."""
    return from_paper_code("_".join("0" * i + "2" for i in range(edges)))


# --------------------------------------------------------------------------- the experiment
@dataclass
class Config:
    family: str = "mlp-topology"
    activation: str = "relu"
    convention: str = "linear-act"
    data: str = "digits"
    width: int = 128
    cells: int = 20
    seeds: int = 3
    inits: tuple[str, ...] = ("paper", "exact")
    optimizers: tuple[str, ...] = ("sgd",)
    batch_size: int = 16
    epochs: float = 1.0
    per_octave: int = 4
    sgd_grid: tuple[float, float] = (2.0**-7, 2.0**4)
    adam_grid: tuple[float, float] = (2.0**-13, 2.0**-1)
    kernels: tuple[int, ...] = (3, 5, 7)
    sample_seed: int = 0
    limit: int | None = None
    mup_base_width: int | None = None  # init "mup": the base model's width (default: half the width)
    data_dir: str | None = None  # where CIFAR's extracted python archive lies (cifar10 / cifar100)
    device: str = "auto"  # where the replicas train: auto (CUDA when available), cpu, cuda, cuda:N

    def validate(self) -> None:
        if self.family not in FAMILIES:
            raise RuleError(f"unknown family {self.family!r}; use one of {', '.join(FAMILIES)}")
        for opt in self.optimizers:
            if opt not in ("sgd", "adam"):
                raise RuleError(f"unknown optimizer {opt!r}; use sgd or adam")
        from ..rules.presets import INITS
        from .mup_cellnet import INSTALL_HINT, mup_available, resolve_base_width

        for init in self.inits:
            if init not in (*INITS, "mup"):
                raise RuleError(f"unknown init {init!r}; use a comma list of {', '.join(INITS)},mup")
        if "mup" in self.inits:
            if not mup_available():
                raise RuleError(INSTALL_HINT)
            resolve_base_width(self.width, self.mup_base_width)
        if not self.inits or not self.optimizers:
            raise RuleError("give at least one init and one optimizer (e.g. --inits paper --optimizers sgd)")
        if self.seeds < 1 or self.cells < 1 or self.width < 1:
            raise RuleError("seeds, cells and width must be positive")


@dataclass
class Measurement:
    arch: str
    kernel_size: int
    init: str
    optimizer: str
    best_rates: tuple[float, ...]
    losses: list[list[float]]
    at_grid_edge: bool

    @property
    def max_lr(self) -> float:
        return float(2 ** np.mean(np.log2(self.best_rates)))


def networks(config: Config) -> list[tuple[ArchGraph, int]]:
    """(cell, kernel size) pairs to measure, base network first."""
    base_q = 3 if config.family == "cnn-kernel" else 1
    base = (from_paper_code(BASE_CELL, kernel_size=base_q), base_q)
    if config.family == "mlp-topology":
        return [base, *((c, 1) for c in sample_topology_cells(config.cells, config.sample_seed))]
    if config.family == "mlp-depth":
        # App. D: plain networks of L = 3 .. 10 layers (stem + L-2 cell edges + readout); L = 3 is the base
        return [(chain_cell(1), 1), *((chain_cell(L - 2), 1) for L in range(4, 11))]
    cells = sample_topology_cells(config.cells, config.sample_seed)
    out = [base]
    for i, c in enumerate(cells):
        q = config.kernels[i % len(config.kernels)]
        out.append((from_paper_code(to_paper_code(c), kernel_size=q), q))
    return out


def run(config: Config, out_dir: Path, progress: Callable[[str], None] | None = None) -> dict:
    """Run the experiment on the engine (:class:`~nni_archscale.torch_layer.sweep.Sweep`: the networks x the
    (init, optimizer) settings, each measured on its optimizer's grid x every seed by :func:`.maxlr.train_grid` and
    read off by the maximal-rate objective :data:`.maxlr.OBJECTIVE`), write ``runs.csv``, ``predictions.csv``,
    ``summary.json``, plots and ``run.json`` (the commit it ran from, whether the checkout was clean, start and
    finish times) into ``out_dir``."""
    from ..provenance import provenance, write_run_record

    config.validate()
    prov = provenance()  # what ran, from which commit, when: run.json (see .held_out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    data = load_train_set(config.data, config.limit, config.data_dir)
    kind = "cnn" if config.family == "cnn-kernel" else "mlp"
    x = data.images if kind == "cnn" else data.flat
    in_features = data.images.shape[1] if kind == "cnn" else x.shape[1]
    from ..torch_layer.train import pick_device

    device = pick_device(config.device)
    x, labels = x.to(device), data.labels.to(device)
    nets = networks(config)
    seeds = list(range(config.seeds))

    def measure(cell: ArchGraph, q: int, init: str, opt: str) -> Measurement:
        """One (network, init, optimizer): every rate of the optimizer's grid x every seed, trained at once."""
        spec = CellNetwork(cell, in_features, config.width, data.num_classes, kind=kind, kernel_size=q,
                           convention=config.convention, activation=config.activation)
        lo, hi = config.sgd_grid if opt == "sgd" else config.adam_grid
        grid = log2_grid(lo, hi, config.per_octave)
        if init == "mup":
            from .mup_cellnet import mup_parametrization

            par = mup_parametrization(spec, opt, config.mup_base_width)
            res = train_grid(par.init, x, labels, grid, seeds, opt, config.batch_size,
                             config.epochs, lr_multipliers=par.lr_multipliers,
                             readout_multiplier=par.readout_multiplier)
        else:
            res = train_grid(cell_init(spec, init), x, labels, grid, seeds, opt,
                             config.batch_size, config.epochs)
        return Measurement(to_paper_code(cell), q, init, opt, res.best_rates, res.losses.tolist(), res.at_grid_edge)

    def tell(m: Measurement) -> None:
        if progress:
            progress(f"{m.arch} q={m.kernel_size} {m.init}/{m.optimizer}: max lr {m.max_lr:.4g} "
                     f"(seeds {m.best_rates})")

    # the engine: networks x (init, optimizer) settings, each a grid x seeds measurement, kept in memory (runs.csv
    # is written at the end)
    sweep = Sweep(bar=None if progress is not None else f"lr-prediction {config.family}", unit="grid",
                  on_record=tell)
    jobs = [((to_paper_code(cell), q, init, opt), (cell, q, init, opt))
            for (cell, q), init, opt in itertools.product(nets, config.inits, config.optimizers)]
    t0 = time.time()
    try:
        measurements: list[Measurement] = sweep.run(measure, jobs)
    finally:
        sweep.close()
    elapsed = time.time() - t0
    summary = analyse(config, nets, measurements, in_features, data.num_classes)
    summary["seconds"] = elapsed
    summary["device"] = str(device)
    write_outputs(config, out_dir, measurements, summary)
    write_run_record(out_dir, "lr-prediction", asdict(config), prov, finished=True, seconds=elapsed,
                     device=str(device))
    return summary


def reanalyse(out_dir: Path) -> dict:
    """Recompute every rule's predictions from a finished run's ``runs.csv`` (no training), e.g. after adding a
    rule, and rewrite the summary, plots and report."""
    summary = json.loads((out_dir / "summary.json").read_text())
    cfg_dict = dict(summary["config"])
    for key in ("inits", "optimizers", "kernels", "sgd_grid", "adam_grid"):
        cfg_dict[key] = tuple(cfg_dict[key])
    config = Config(**cfg_dict)
    losses: dict = {}
    with (out_dir / "runs.csv").open() as fh:
        for row in csv.DictReader(fh):
            key = (row["arch"], int(row["kernel_size"]), row["init"], row["optimizer"])
            losses.setdefault(key, {}).setdefault(int(row["seed"]), []).append(
                (float(row["rate"]), float(row["final_loss"]), row["chosen"] == "1"))
    measurements = []
    for (arch, q, init, opt), seeds in losses.items():
        rows = [[loss for _, loss, _ in seeds[s]] for s in sorted(seeds)]
        rates = [rate for rate, _, _ in seeds[min(seeds)]]
        index = [best_index(row) for row in rows]
        edge = any(i in (0, len(rates) - 1) for i in index)
        measurements.append(Measurement(arch, q, init, opt, tuple(rates[i] for i in index), rows, edge))
    data = load_train_set(config.data, config.limit, config.data_dir)
    kind = "cnn" if config.family == "cnn-kernel" else "mlp"
    in_features = data.images.shape[1] if kind == "cnn" else data.flat.shape[1]
    new = analyse(config, networks(config), measurements, in_features, data.num_classes)
    new["seconds"] = summary.get("seconds", 0.0)
    if "device" in summary:
        new["device"] = summary["device"]
    write_outputs(config, out_dir, measurements, new)
    return new


def analyse(config: Config, nets, measurements: list[Measurement], in_features: int, num_classes: int) -> dict:
    """Predictions of every rule against the measured rates, per (init, optimizer)."""
    kind = "cnn" if config.family == "cnn-kernel" else "mlp"
    by_key = {(m.arch, m.kernel_size, m.init, m.optimizer): m for m in measurements}
    base_cell, base_q = nets[0]
    results = {"config": asdict(config), "pairs": {}, "rules": list(available_rules())}
    rows = []
    for init, opt in itertools.product(config.inits, config.optimizers):
        base = by_key[(to_paper_code(base_cell), base_q, init, opt)]
        pair = {"base_max_lr": base.max_lr, "rules": {}}
        measured, seedwise = [], []
        targets = nets[1:]
        for cell, q in targets:
            m = by_key[(to_paper_code(cell), q, init, opt)]
            measured.append(m.max_lr)
            seedwise.append(m.best_rates)
        pair["measured"] = measured
        pair["grid_edge_hits"] = sum(by_key[(to_paper_code(c), q, init, opt)].at_grid_edge for c, q in targets)
        if config.seeds >= 2:
            a = np.log2([s[0] for s in seedwise])
            b = np.log2([s[1] for s in seedwise])
            pair["seed_to_seed_r"] = pearson(a, b)
            pair["seed_to_seed_mean_abs_octaves"] = float(np.mean(np.abs(a - b)))
        for rule in available_rules():
            if not applies(rule, init):
                continue
            preds, ok = [], True
            try:
                spec0 = CellNetwork(base_cell, in_features, config.width, num_classes, kind, base_q,
                                    config.convention, config.activation)
                absolute = rule in ABSOLUTE_RULES  # a rate, not a multiplier relative to the base cell
                if absolute and opt != "sgd":  # an SGD rate: its absolute cap says nothing about Adam's rates
                    continue
                base_mult = None if absolute else rule_multiplier(rule, spec0, init, opt)
                for cell, q in targets:
                    spec = CellNetwork(cell, in_features, config.width, num_classes, kind, q, config.convention,
                                       config.activation)
                    if absolute:
                        preds.append(readout_limited_rate(base.max_lr, spec, init, config.batch_size))
                        continue
                    preds.append(base.max_lr * rule_multiplier(rule, spec, init, opt) / base_mult)
            except (RuleError, NoPathError):
                ok = False
            if not ok:
                continue
            lp, lm = np.log2(preds), np.log2(measured)
            pair["rules"][rule] = {
                "pearson_r_log": pearson(lp, lm),
                "mean_abs_octaves": float(np.mean(np.abs(lp - lm))),
                "mean_signed_octaves": float(np.mean(lp - lm)),
                "predicted": preds,
            }
            for (cell, q), p, mv in zip(targets, preds, measured):
                rows.append((to_paper_code(cell), q, init, opt, rule, p, mv))
        # the best any single constant could do (an oracle, for reference only: it is fitted on the targets)
        lm = np.log2(measured)
        pair["oracle_constant_mean_abs_octaves"] = float(np.mean(np.abs(lm - np.median(lm))))
        results["pairs"][f"{init}/{opt}"] = pair
    results["prediction_rows"] = rows
    return results


def write_outputs(config: Config, out_dir: Path, measurements: list[Measurement], summary: dict) -> None:
    from ..results import atomic_write_text

    lines = ["arch,kernel_size,init,optimizer,seed,rate,final_loss,chosen"]
    grid = {}
    for m in measurements:
        lo, hi = config.sgd_grid if m.optimizer == "sgd" else config.adam_grid
        rates = grid.setdefault(m.optimizer, log2_grid(lo, hi, config.per_octave))
        for s, row in enumerate(m.losses):
            for rate, loss in zip(rates, row):
                chosen = int(math.isclose(rate, m.best_rates[s], rel_tol=1e-4))
                lines.append(f"{m.arch},{m.kernel_size},{m.init},{m.optimizer},{s},{rate:.6g},{loss:.6g},{chosen}")
    atomic_write_text(out_dir / "runs.csv", "\n".join(lines) + "\n")
    rows = summary.pop("prediction_rows")
    pred = ["arch,kernel_size,init,optimizer,rule,predicted,measured"]
    pred += [f"{a},{q},{i},{o},{r},{p:.6g},{mv:.6g}" for a, q, i, o, r, p, mv in rows]
    atomic_write_text(out_dir / "predictions.csv", "\n".join(pred) + "\n")
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    summary["prediction_rows"] = rows
    _plot(out_dir, summary)


def _plot(out_dir: Path, summary: dict) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["prediction_rows"]
    pairs = list(summary["pairs"])
    rules = [r for r in summary["rules"]
             if r != "standard" and any(r in p["rules"] for p in summary["pairs"].values())]
    fig, axes = plt.subplots(len(pairs), len(rules), figsize=(3.2 * len(rules), 3.0 * len(pairs)), squeeze=False)
    for i, pair in enumerate(pairs):
        init, opt = pair.split("/")
        for j, rule in enumerate(rules):
            ax = axes[i][j]
            pts = [(p, m) for a, q, ii, o, r, p, m in rows if ii == init and o == opt and r == rule]
            stats = summary["pairs"][pair]["rules"].get(rule)
            if not pts or stats is None:
                ax.axis("off")
                continue
            p, m = zip(*pts)
            ax.scatter(m, p, s=12)
            lo, hi = min(min(p), min(m)) / 1.5, max(max(p), max(m)) * 1.5
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.tick_params(labelsize=7)
            r = stats["pearson_r_log"]
            ax.set_title(f"{pair}: {rule}\nr={r if r is None else round(r, 2)}, "
                         f"err={stats['mean_abs_octaves']:.2f} oct", fontsize=8)
            ax.set_xlabel("measured max lr", fontsize=8)
            ax.set_ylabel("predicted", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "scatter.png", dpi=80)
    plt.close(fig)
