"""Which learning-rate rule predicts the maximal rate on NNI's own model spaces (issue 13's evidence).

For random samples of NNI hub spaces (``nni_archscale.nni_glue.spaces``), each network is initialised the way
the product initialises it (``prepare_candidate`` with preset ``paper``: the cell rule for NAS-Bench-201, the fx
graph's in-degree init elsewhere, mean-field readout), then trained for one epoch with *one* learning rate at
every rate of a log grid refined to a quarter octave (:func:`~nni_archscale.torch_layer.calibrate.refine_rate`,
the product's calibration: the largest rate within 2% of the lowest final training loss). That is the network's
measured maximal rate. Predictors, each computed once at initialisation:

* ``shared``: one rate for every network (the honest baseline: what a user tunes once);
* ``paper-whole``: eq. 8/9 over every path of the whole network (the fx adapter; what the product applied to
  hub spaces before this experiment);
* ``paper-cell`` (NAS-Bench-201 only): eq. 8 over one cell's paths (the paper's §4.3 reading; the product's
  NB201 rule);
* ``segmented``: eq. 8/9 inside the blocks that normalisation layers delimit
  (:mod:`nni_archscale.torch_layer.segments`);
* ``measured``: the first step's change of the readout's input per unit rate, under the optimizer's first update
  (:mod:`nni_archscale.torch_layer.measured_rate`).

Scoring (stated before the runs, see ``reports/spaces-maxlr/PREREGISTRATION.md``): every predictor gives a rate
up to a constant ``c``; a sample's error is ``|log2(c_-i * prediction) - log2(measured)|`` in octaves, where
``c_-i`` is fitted on the *other* samples of the space (the median log residual: leave-one-out, so no predictor
sees the sample it is scored on). ``shared`` is the same with a constant prediction. The default per space and
optimizer is decided by :func:`nni_archscale.experiments.decision.decide`.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ArchScaleError
from ..results import atomic_write_text
from ..stats import pearson

PREDICTORS = ("shared", "paper-whole", "paper-cell", "segmented", "measured")
#: coarse grids (one octave apart) per optimizer; the refinement widens them when the best rate is at an end
GRIDS = {"sgd": (2.0 ** -7, 2.0 ** 2), "adam": (2.0 ** -13, 2.0 ** -5)}


@dataclass
class Config:
    spaces: tuple[str, ...] = ("nb201", "darts", "mobilenetv3")
    samples: int = 20
    optimizers: tuple[str, ...] = ("sgd", "adam")
    epochs: int = 1
    batch_size: int = 64
    #: samples measured again from a second init seed: the seed-to-seed noise of the measurement itself
    noise_samples: int = 4
    seed: int = 0
    threads: int = 1
    limit: int | None = None
    space_options: dict = field(default_factory=dict)


def loo_offsets(log_pred: np.ndarray, log_meas: np.ndarray) -> np.ndarray:
    """Each sample's constant ``log2 c_-i``, fitted on the other samples (their median log residual)."""
    resid = log_meas - log_pred
    return np.array([np.median(np.delete(resid, i)) for i in range(len(resid))])


def loo_errors(log_pred: np.ndarray, log_meas: np.ndarray) -> np.ndarray:
    """Absolute octave errors with the constant fitted on the other samples (:func:`loo_offsets`)."""
    return np.abs(log_pred + loo_offsets(log_pred, log_meas) - log_meas)


def predictions(name: str, sample: dict, model, batch, optimizer: str) -> dict[str, float]:
    """Every predictor's rate (up to its constant) for an initialised ``model``."""
    from ..nni_glue.adapters import nni_leaf, prepare_candidate
    from ..torch_layer.hook import HookConfig
    from ..torch_layer.measured_rate import first_step_change
    from ..torch_layer.segments import segment_rate_factor

    # the graph rules' own values (eq. 8/9), before the hook's 4-octave guard would clamp them
    cfg = HookConfig(base_lr=1.0, preset="paper", optimizer=optimizer, rate_rule="graph")
    probe = copy.deepcopy(model)
    out = {"shared": 1.0,
           "paper-whole": prepare_candidate(probe, cfg, sample={}, adapter="fx").scaling.learning_rate.value,
           "segmented": segment_rate_factor(model, leaf=nni_leaf),
           "measured": 1.0 / first_step_change(model, batch[0], batch[1], optimizer)}
    if name == "nb201":
        out["paper-cell"] = prepare_candidate(copy.deepcopy(model), cfg, sample=sample,
                                              adapter="nb201-sample").scaling.learning_rate.value
    return out


def measure_max_rate(model, data, optimizer: str, config: Config, seed: int,
                     progress: Callable[[float, float, str], None] | None = None):
    """One learning rate for every parameter; the product's refined calibration over the optimizer's grid."""
    import torch

    from ..torch_layer.calibrate import final_loss, refine_rate
    from ..torch_layer.param_groups import build_param_groups, make_optimizer
    from ..torch_layer.train import train_classifier

    state = copy.deepcopy(model.state_dict())

    def train_one(lr: float):
        model.load_state_dict(state)
        groups = build_param_groups(model, lr, weight_decay=5e-4 if optimizer == "sgd" else 0.0)
        opt = make_optimizer(optimizer, groups, 0.9, True)
        losses: list[float] = []
        result = train_classifier(model, data.train, None, opt, epochs=config.epochs, batch_size=config.batch_size,
                                  seed=seed, num_classes=data.num_classes, on_step=lambda s, v: losses.append(v))
        if result.status != "ok":
            return final_loss(losses), result.status
        return training_set_loss(model, data.train), result.status

    lo, hi = GRIDS[optimizer]
    grid = [2.0 ** k for k in range(round(math.log2(lo)), round(math.log2(hi)) + 1)]
    with torch.random.fork_rng(devices=[]):
        found = refine_rate(train_one, grid, progress=progress)
    model.load_state_dict(state)
    return found


def run(config: Config, out_dir: Path, progress: Callable[[str], None] = print) -> dict:
    """Measure every sample of every space (records appended to ``records.jsonl`` as they finish, so an
    interrupted run loses nothing and resumes), then analyse and write ``summary.json``, ``README.md``, a plot
    and ``run.json`` (commit, clean tree, start and finish times)."""
    import torch

    from ..errors import NoPathError
    from ..nni_glue.calibration import measurement_batch
    from ..nni_glue.spaces import SampleRejected
    from ..torch_layer.data import load_dataset
    from .provenance import provenance, write_run_record

    prov = provenance()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(out_dir, "space-lr", asdict(config), prov)
    torch.set_num_threads(config.threads)
    data = load_dataset("digits", None, config.limit, config.seed)
    batch = measurement_batch(data, config.seed, config.batch_size)
    records_path = out_dir / "records.jsonl"
    done = {(r["space"], r["seed"], r["optimizer"], r["init_seed"]) for r in _read(records_path)}
    t0 = time.perf_counter()
    for name in config.spaces:
        kept = 0
        seed = config.seed
        while kept < config.samples:
            seed += 1
            try:
                sample, model = _initialised_with(name, seed, seed, config, data.num_classes)
            except SampleRejected as exc:
                progress(f"space-lr: {name} seed {seed}: skipped, NNI rejects the sample ({exc})")
                continue
            except NoPathError as exc:  # the network computes a constant: it has no maximal rate to measure
                progress(f"space-lr: {name} seed {seed}: skipped, no input-output path ({exc})")
                continue
            kept += 1
            init_seeds = [seed] + ([seed + 10_000] if kept <= config.noise_samples else [])
            for optimizer in config.optimizers:
                for init_seed in init_seeds:
                    if (name, seed, optimizer, init_seed) in done:
                        continue
                    # a fresh network for every measurement: the same sample, initialised from init_seed
                    sample, model = _initialised_with(name, seed, init_seed, config, data.num_classes)
                    t = time.perf_counter()
                    preds = predictions(name, sample, model, batch, optimizer)
                    found = measure_max_rate(model, data, optimizer, config, init_seed)
                    rec = {"space": name, "seed": seed, "init_seed": init_seed, "optimizer": optimizer,
                           "sample": dict(sample), "max_lr": found.rate,
                           "resolution_octaves": found.resolution_octaves, "widened": found.widened,
                           "losses": {str(k): (v if math.isfinite(v) else None) for k, v in found.losses.items()},
                           "predictions": preds, "seconds": round(time.perf_counter() - t, 2)}
                    _append(records_path, rec)
                    progress(f"space-lr: {name} #{kept} (seed {seed}, init {init_seed}) {optimizer}: maximal rate "
                             f"{found.rate:.4g} ({len(found.losses)} runs, {rec['seconds']:.0f} s)")
    seconds = time.perf_counter() - t0
    summary = analyse(config, _read(records_path))
    summary["seconds"] = round(seconds, 1)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_dir / "README.md", report(summary))
    plot(summary, out_dir / "measured-vs-predicted.png")
    write_run_record(out_dir, "space-lr", asdict(config), prov, finished=True, seconds=round(seconds, 1))
    return summary


def combine(parts: list[Path], out_dir: Path) -> dict:
    """Score the records of several finished runs (e.g. one per core) together: ``out_dir`` gets their records
    (``records.jsonl``), the summary, report and plot, and ``parts.json`` naming each part's ``run.json``."""
    runs, records, spaces = [], [], []
    for part in parts:
        run_file = part / "run.json"
        if not run_file.exists():
            raise ArchScaleError(f"{part} has no run.json: not a space-lr run directory")
        rec = json.loads(run_file.read_text())
        if not rec.get("finished"):
            raise ArchScaleError(f"the run in {part} did not finish (run.json has no finish time); resume it first")
        runs.append({"dir": str(part), **{k: rec.get(k) for k in ("commit", "clean", "started", "finished")}})
        spaces += [s for s in rec["config"]["spaces"] if s not in spaces]
        records += _read(part / "records.jsonl")
        cfg = rec["config"]
    cfg = dict(cfg, spaces=tuple(spaces))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "records.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    summary = analyse(cfg, records)
    summary["parts"] = runs
    summary["seconds"] = None
    atomic_write_text(out_dir / "parts.json", json.dumps(runs, indent=2) + "\n")
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_dir / "README.md", report(summary))
    plot(summary, out_dir / "measured-vs-predicted.png")
    write_space_reports(summary, records, out_dir)
    return summary


def write_space_reports(summary: dict, records: list[dict], out_dir: Path) -> None:
    """One report per space (``<space>.md``) with its own plot (``<space>.png``): its rows of the summary,
    its decisions and every sample's measured rate beside each predictor's (constant fitted as in scoring)."""
    for space in summary["config"]["spaces"]:
        keys = [k for k in summary["results"] if k.startswith(space + "/")]
        if not keys:
            continue
        sub = {**summary, "results": {k: summary["results"][k] for k in keys}}
        text = report(sub).replace("# Maximal learning rates on NNI's model spaces",
                                   f"# Maximal learning rates on NNI's {space} space", 1)
        lines = [text, f"![measured vs predicted]({space}.png)", "",
                 "Every sample (maximal rate measured; predictors scaled by their leave-one-out constant):", "",
                 "| seed | optimizer | measured | " + " | ".join(PREDICTORS) + " |",
                 "|---|---|---|" + "---|" * len(PREDICTORS)]
        for opt in summary["config"]["optimizers"]:
            rs = [r for r in records if r["space"] == space and r["optimizer"] == opt and r["init_seed"] == r["seed"]]
            if len(rs) < 3:
                continue
            meas = np.log2([r["max_lr"] for r in rs])
            scaled = {}
            for p in PREDICTORS:
                if all(p in r["predictions"] for r in rs):
                    pred = np.log2([r["predictions"][p] for r in rs])
                    scaled[p] = [float(v) for v in 2 ** (pred + loo_offsets(pred, meas))]
            for i, r in enumerate(rs):
                cells = [f"{scaled[p][i]:.3g}" if p in scaled else "" for p in PREDICTORS]
                lines.append(f"| {r['seed']} | {opt} | {r['max_lr']:.3g} | " + " | ".join(cells) + " |")
        atomic_write_text(out_dir / f"{space}.md", "\n".join(lines) + "\n")
        plot_records([r for r in records if r["space"] == space], out_dir / f"{space}.png")


def training_set_loss(model, train, chunk: int = 256) -> float:
    """Mean cross-entropy over the whole training set after training (training mode: batch norm normalises by
    the batch, as during the epoch; no gradient). The "training loss at the end of one epoch" of the paper's
    recipe, without the noise of the last few mini-batches' losses."""
    import torch
    import torch.nn.functional as F

    total, n = 0.0, len(train)
    with torch.no_grad():
        for start in range(0, n, chunk):
            x, y = train.batch(torch.arange(start, min(n, start + chunk)))
            out = model(x)
            out = out[0] if isinstance(out, (tuple, list)) else out
            total += float(F.cross_entropy(out, y, reduction="sum"))
    loss = total / n
    return loss if math.isfinite(loss) else math.inf


def _initialised_with(name: str, seed: int, init_seed: int, config: Config, num_classes: int):
    """Sample ``seed``'s network, initialised from ``init_seed`` (the noise-floor repeat)."""
    import torch

    from ..nni_glue.adapters import prepare_candidate
    from ..nni_glue.spaces import sample_model
    from ..torch_layer.hook import HookConfig

    sample, model = sample_model(name, seed, num_classes, **config.space_options.get(name, {}))
    prepare_candidate(model, HookConfig(base_lr=1.0, preset="paper", rate_rule="shared"), sample=sample,
                      generator=torch.Generator().manual_seed(init_seed))  # auto: the NB201 cell rule, else fx
    return sample, model


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def analyse(config: Config | dict, records: list[dict]) -> dict:
    """Leave-one-out octave errors per space, optimizer and predictor; the pre-registered decision; the noise."""
    from .decision import decide

    cfg = asdict(config) if isinstance(config, Config) else dict(config)
    results: dict = {}
    for name in cfg["spaces"]:
        for opt in cfg["optimizers"]:
            main = [r for r in records if r["space"] == name and r["optimizer"] == opt and r["init_seed"] == r["seed"]]
            if len(main) < 3:
                continue
            meas = np.log2([r["max_lr"] for r in main])
            entry: dict = {"samples": len(main), "predictors": {}}
            errors: dict[str, np.ndarray] = {}
            for p in PREDICTORS:
                if not all(p in r["predictions"] for r in main):
                    continue
                pred = np.log2([r["predictions"][p] for r in main])
                err = loo_errors(pred, meas)
                errors[p] = err
                r_log = pearson(pred, meas, constant="std")
                entry["predictors"][p] = {"mean_abs_octaves": float(err.mean()),
                                          "se": float(err.std(ddof=1) / math.sqrt(len(err))),
                                          "pearson_r_log": r_log,
                                          "spread_octaves": float(np.ptp(pred))}
            decisions = {}
            winners = []
            for p, err in errors.items():
                if p == "shared":
                    continue
                d = decide(list(errors["shared"]), list(err))
                decisions[p] = {"mean_difference": float(d.mean_difference),
                                "standard_error": float(d.standard_error), "replaces_shared": bool(d.replace),
                                "text": d.describe("shared", p)}
                if d.replace:
                    winners.append((float(err.mean()), p))
            entry["decisions"] = decisions
            entry["default"] = min(winners)[1] if winners else "shared"
            pairs = []
            for r in records:
                if r["space"] == name and r["optimizer"] == opt and r["init_seed"] != r["seed"]:
                    first = [m for m in main if m["seed"] == r["seed"]]
                    if first:
                        pairs.append(abs(math.log2(r["max_lr"]) - math.log2(first[0]["max_lr"])))
            entry["noise"] = {"pairs": len(pairs), "mean_abs_octaves_between_inits": float(np.mean(pairs))
                              if pairs else None}
            results[f"{name}/{opt}"] = entry
    return {"config": cfg, "results": results, "records": len(records)}


def report(summary: dict) -> str:
    cfg = summary["config"]
    lines = ["# Maximal learning rates on NNI's model spaces: which rule predicts them?", "",
             __doc__.split("\n\n", 1)[1].strip(), "",
             f"Setup: digits (3x8x8), {cfg['samples']} samples per space, one epoch, batch {cfg['batch_size']}, "
             f"SGD (Nesterov momentum 0.9, weight decay 5e-4) and Adam."
             + "".join(f" Part {p['dir']}: commit {p['commit']}, clean tree {p['clean']}, started {p['started']}, "
                       f"finished {p['finished']}." for p in summary.get("parts", [])),
             "", "| space / optimizer | predictor | mean abs error (octaves, leave-one-out) | SE | r (log-log) | "
             "spread of predictions (octaves) |", "|---|---|---|---|---|---|"]
    for key, entry in summary["results"].items():
        for p, st in entry["predictors"].items():
            r = "n/a" if st["pearson_r_log"] is None else f"{st['pearson_r_log']:.2f}"
            lines.append(f"| {key} | `{p}` | {st['mean_abs_octaves']:.2f} | {st['se']:.2f} | {r} | "
                         f"{st['spread_octaves']:.1f} |")
    lines += ["", "Decisions (the pre-registered rule: a predictor replaces one shared rate only when its error is "
              "lower by more than twice the paired standard error):", ""]
    for key, entry in summary["results"].items():
        noise = entry["noise"]["mean_abs_octaves_between_inits"]
        noise_text = f"{noise:.2f} octaves over {entry['noise']['pairs']} samples" if noise is not None else "n/a"
        lines.append(f"- **{key}: default `{entry['default']}`** (seed-to-seed noise of the measured maximal rate: "
                     f"{noise_text})")
        for d in entry["decisions"].values():
            lines.append(f"  - {d['text']}")
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    """The scatter of every space and optimizer, from the run's ``records.jsonl`` beside ``path``."""
    plot_records(_read(path.parent / "records.jsonl"), path)


def plot_records(records: list[dict], path: Path) -> None:
    """Measured against predicted log2 rate, one panel per (space, optimizer) and predictor (the noise repeats
    left out), each predictor shifted by its in-sample median residual."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in records if r["init_seed"] == r["seed"]]
    keys = sorted({(r["space"], r["optimizer"]) for r in records})
    if not keys:
        return
    preds = [p for p in PREDICTORS if p != "shared"]
    fig, axes = plt.subplots(len(keys), len(preds), figsize=(3.2 * len(preds), 3.0 * len(keys)), squeeze=False)
    for i, (space, opt) in enumerate(keys):
        rs = [r for r in records if r["space"] == space and r["optimizer"] == opt]
        meas = np.log2([r["max_lr"] for r in rs])
        for j, p in enumerate(preds):
            ax = axes[i][j]
            if not all(p in r["predictions"] for r in rs):
                ax.set_axis_off()
                continue
            pred = np.log2([r["predictions"][p] for r in rs])
            pred = pred + np.median(meas - pred)
            ax.scatter(pred, meas, s=12)
            lo, hi = min(pred.min(), meas.min()) - 0.5, max(pred.max(), meas.max()) + 0.5
            ax.plot([lo, hi], [lo, hi], lw=0.8, color="grey")
            ax.set_title(f"{space}/{opt}: {p}", fontsize=8)
            ax.set_xlabel("predicted log2 rate", fontsize=7)
            ax.set_ylabel("measured log2 rate", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
