"""Which learning-rate rule predicts the maximal rate on NNI's own model spaces (issue 13's evidence).

For random samples of NNI hub spaces (``nni_archscale.nni_glue.spaces``), each network is initialised the way
the product initialises it (``prepare_candidate`` with init ``paper``: the cell rule for NAS-Bench-201, the fx
graph's in-degree init elsewhere, mean-field readout), then trained for one epoch with *one* learning rate at
every rate of a log grid refined to a quarter octave (:func:`~nni_archscale.torch_layer.rate_grid.refine_rate`,
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

Scoring: every predictor gives a rate up to a constant ``c``; a sample's error is ``|log2(c_-i * prediction) -
log2(measured)|`` in octaves, where ``c_-i`` is fitted on the *other* samples of the space, the same way for every
predictor (``shared``, a constant prediction, included): their mean log2 residual (``constant="loo-mean"``, the
default since issue 23.5). A predictor replaces one shared rate only if its paired difference passes the 2-SE
rule read as a one-sided z test, Holm-corrected across every decision of the run
(:func:`nni_archscale.experiments.decision.holm_decisions`). The pre-registered scoring
(``reports/spaces-maxlr/PREREGISTRATION.md``) fitted the *median* log residual and applied the 2-SE rule to each
decision alone (``constant="loo-median", holm=False``, kept to regenerate its figures): on quarter-octave rates
the leave-one-out median jumps by a grid step in a way that depends on the predictor, and it manufactured the one
win that scoring found (:func:`rescore`; the report's "Re-scored (issue 23.5)").
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
from ..stats import loo_centres, pearson
from ..torch_layer.sweep import MaximalRate, Sweep
from .decision import ALPHA, CONSTANTS, refitted_errors
from .hand_written import write_keeping_reading

#: the baseline every predictor is compared with: one shared rate (the registry's rule of that name)
BASELINE = "shared"
PREDICTORS = (BASELINE, "paper-whole", "paper-cell", "segmented", "measured")
#: the product's calibration criterion: the largest rate within 2% of the lowest final training loss
OBJECTIVE = MaximalRate(tolerance=0.02)
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


#: the scoring the statement fixed before the runs (superseded by the default, see the module docstring)
PREREGISTERED = {"constant": "loo-median", "holm": False}
#: where the hand-written part of a report begins: kept when the report is regenerated (:func:`rescore`)
HAND_WRITTEN = "## Reading (written after the runs)"


def _centre(constant: str) -> str:
    """``"mean"`` or ``"median"`` for a constant fit's name (:data:`nni_archscale.experiments.decision.CONSTANTS`)."""
    if constant not in CONSTANTS:
        raise ArchScaleError(f"unknown constant fit {constant!r}; use one of {', '.join(CONSTANTS)}")
    return CONSTANTS[constant]


def loo_offsets(log_pred: np.ndarray, log_meas: np.ndarray, constant: str = "loo-mean") -> np.ndarray:
    """Each sample's constant ``log2 c_-i``, fitted on the other samples: the mean (``"loo-mean"``) or the median
    (``"loo-median"``, the pre-registered fit) of their log2 residuals (:func:`nni_archscale.stats.loo_centres`)."""
    return loo_centres(np.asarray(log_meas, float) - np.asarray(log_pred, float), _centre(constant))


def loo_errors(log_pred: np.ndarray, log_meas: np.ndarray, constant: str = "loo-mean") -> np.ndarray:
    """Absolute octave errors with the constant fitted on the other samples
    (:func:`nni_archscale.experiments.decision.refitted_errors`, the fit of :func:`loo_offsets`)."""
    return refitted_errors(log_pred, log_meas, constant)


def in_sample_errors(log_pred: np.ndarray, log_meas: np.ndarray, constant: str = "loo-mean") -> np.ndarray:
    """Absolute octave errors with the constant fitted on *all* samples, the sample scored included (the same
    centre as ``constant``: mean or median of the log2 residuals): the reference that shows what leaving one
    out costs each predictor."""
    resid = np.asarray(log_meas, float) - np.asarray(log_pred, float)
    centre = np.mean(resid) if _centre(constant) == "mean" else np.median(resid)
    return np.abs(resid - centre)


def predictions(name: str, sample: dict, model, batch, optimizer: str) -> dict[str, float]:
    """Every predictor's rate (up to its constant) for an initialised ``model``."""
    from ..nni_glue.adapters import nni_leaf, prepare_candidate
    from ..torch_layer.hook import HookConfig
    from ..torch_layer.measured_rate import first_step_change
    from ..torch_layer.segments import segment_rate_factor

    # the graph rules' own values (eq. 8/9), before the hook's 4-octave guard would clamp them
    cfg = HookConfig(base_lr=1.0, init="paper", optimizer=optimizer, rate_rule="graph")
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
    """One learning rate for every parameter; the product's refined calibration over the optimizer's grid, read
    by :data:`OBJECTIVE`."""
    import torch

    from ..torch_layer.rate_grid import final_loss, refine_rate
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
        found = refine_rate(train_one, grid, tolerance=OBJECTIVE.tolerance, progress=progress)
    model.load_state_dict(state)
    return found


def run(config: Config, out_dir: Path, progress: Callable[[str], None] = print) -> dict:
    """Measure every sample of every space on the engine (:class:`~nni_archscale.torch_layer.sweep.Sweep`: the
    samples x the (optimizer, init seed) settings, each by :func:`measure_max_rate`; records appended to
    ``records.jsonl`` as they finish, so an interrupted run loses nothing and resumes), then analyse and write
    ``summary.json``, ``README.md``, a plot and ``run.json`` (commit, clean tree, start and finish times)."""
    import torch

    from ..errors import NoPathError
    from ..nni_glue.calibration import measurement_batch
    from ..nni_glue.spaces import SampleRejected
    from ..torch_layer.data import load_dataset
    from ..provenance import provenance, write_run_record

    prov = provenance()
    out_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(out_dir, "space-lr", asdict(config), prov)
    torch.set_num_threads(config.threads)
    data = load_dataset("digits", None, config.limit, config.seed)
    batch = measurement_batch(data, config.seed, config.batch_size)
    records_path = out_dir / "records.jsonl"
    # the engine: samples x (optimizer, init seed) settings, each a refined grid; records.jsonl kept as they finish
    # and read back on resume
    kept = 0
    sweep = Sweep(records_path, key_of=lambda r: (r["space"], r["seed"], r["optimizer"], r["init_seed"]),
                  read=_read, append=_append,
                  on_record=lambda rec: progress(
                      f"space-lr: {rec['space']} #{kept} (seed {rec['seed']}, init {rec['init_seed']}) "
                      f"{rec['optimizer']}: maximal rate {rec['max_lr']:.4g} ({len(rec['losses'])} runs, "
                      f"{rec['seconds']:.0f} s)"))

    def one(name: str, seed: int, optimizer: str, init_seed: int) -> dict:
        # a fresh network for every measurement: the same sample, initialised from init_seed
        sample, model = _initialised_with(name, seed, init_seed, config, data.num_classes)
        t = time.perf_counter()
        preds = predictions(name, sample, model, batch, optimizer)
        found = measure_max_rate(model, data, optimizer, config, init_seed)
        return {"space": name, "seed": seed, "init_seed": init_seed, "optimizer": optimizer,
                "sample": dict(sample), "max_lr": found.rate,
                "resolution_octaves": found.resolution_octaves, "widened": found.widened,
                "losses": {str(k): (v if math.isfinite(v) else None) for k, v in found.losses.items()},
                "predictions": preds, "seconds": round(time.perf_counter() - t, 2)}

    t0 = time.perf_counter()
    for name in config.spaces:
        kept = 0
        seed = config.seed
        while kept < config.samples:
            seed += 1
            try:
                _initialised_with(name, seed, seed, config, data.num_classes)
            except SampleRejected as exc:
                progress(f"space-lr: {name} seed {seed}: skipped, NNI rejects the sample ({exc})")
                continue
            except NoPathError as exc:  # the network computes a constant: it has no maximal rate to measure
                progress(f"space-lr: {name} seed {seed}: skipped, no input-output path ({exc})")
                continue
            kept += 1
            init_seeds = [seed] + ([seed + 10_000] if kept <= config.noise_samples else [])
            sweep.run(one, [((name, seed, optimizer, init_seed), (name, seed, optimizer, init_seed))
                            for optimizer in config.optimizers for init_seed in init_seeds])
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


def write_space_reports(summary: dict, records: list[dict], out_dir: Path, plots: bool = True) -> None:
    """One report per space (``<space>.md``) with its own plot (``<space>.png``; ``plots=False`` leaves the PNGs
    as they are): its rows of the summary, its decisions and every sample's measured rate beside each predictor's
    (constant fitted as in scoring; under both scorings when the summary holds the pre-registered one too)."""
    scorings = ([("corrected ", summary), ("pre-registered ", summary["preregistered"])]
                if "preregistered" in summary else [("", summary)])
    for space in summary["config"]["spaces"]:
        keys = [k for k in summary["results"] if k.startswith(space + "/")]
        if not keys:
            continue
        sub = {**summary, "results": {k: summary["results"][k] for k in keys}}
        if "preregistered" in summary:
            pre = summary["preregistered"]
            sub["preregistered"] = {**pre, "results": {k: pre["results"][k] for k in keys if k in pre["results"]}}
        text = report(sub).replace("# Maximal learning rates on NNI's model spaces",
                                   f"# Maximal learning rates on NNI's {space} space", 1)
        lines = [text, f"![measured vs predicted]({space}.png)", ""]
        for label, scored in scorings:
            constant = _scoring(scored)["constant"]
            lines += [f"Every sample, {label}scoring (maximal rate measured; predictors scaled by their leave-one-out "
                      f"constant, `{constant}`):", "",
                      "| seed | optimizer | measured | " + " | ".join(PREDICTORS) + " |",
                      "|---|---|---|" + "---|" * len(PREDICTORS)]
            lines += _sample_rows(records, space, summary["config"]["optimizers"], constant) + [""]
        atomic_write_text(out_dir / f"{space}.md", "\n".join(lines[:-1]) + "\n")
        if plots:
            plot_records([r for r in records if r["space"] == space], out_dir / f"{space}.png")


def _sample_rows(records: list[dict], space: str, optimizers, constant: str) -> list[str]:
    """One table row per sample: its measured rate and every predictor's rate scaled by its leave-one-out
    constant (:func:`loo_offsets`)."""
    lines = []
    for opt in optimizers:
        rs = [r for r in records if r["space"] == space and r["optimizer"] == opt and r["init_seed"] == r["seed"]]
        if len(rs) < 3:
            continue
        meas = np.log2([r["max_lr"] for r in rs])
        scaled = {}
        for p in PREDICTORS:
            if all(p in r["predictions"] for r in rs):
                pred = np.log2([r["predictions"][p] for r in rs])
                scaled[p] = [float(v) for v in 2 ** (pred + loo_offsets(pred, meas, constant))]
        for i, r in enumerate(rs):
            cells = [f"{scaled[p][i]:.3g}" if p in scaled else "" for p in PREDICTORS]
            lines.append(f"| {r['seed']} | {opt} | {r['max_lr']:.3g} | " + " | ".join(cells) + " |")
    return lines


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
    prepare_candidate(model, HookConfig(base_lr=1.0, init="paper", rate_rule="shared"), sample=sample,
                      generator=torch.Generator().manual_seed(init_seed))  # auto: the NB201 cell rule, else fx
    return sample, model


def _read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def analyse(config: Config | dict, records: list[dict], constant: str = "loo-mean", holm: bool = True) -> dict:
    """Leave-one-out octave errors per space, optimizer and predictor (each predictor's constant fitted by
    ``constant``, :func:`loo_errors`); the decisions, Holm-corrected across all of them with ``holm`` (the
    default) or each alone (the pre-registered reading, :data:`PREREGISTERED`); the seed-to-seed noise."""
    from .decision import decide, holm_decisions

    cfg = asdict(config) if isinstance(config, Config) else dict(config)
    results: dict = {}
    raw: dict = {}
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
                err = loo_errors(pred, meas, constant)
                errors[p] = err
                r_log = pearson(pred, meas, constant="std")
                entry["predictors"][p] = {"mean_abs_octaves": float(err.mean()),
                                          "se": float(err.std(ddof=1) / math.sqrt(len(err))),
                                          "pearson_r_log": r_log,
                                          "spread_octaves": float(np.ptp(pred)),
                                          "in_sample_mean_abs_octaves": float(in_sample_errors(pred, meas,
                                                                                               constant).mean())}
            for p, err in errors.items():
                if p != BASELINE:
                    raw[(f"{name}/{opt}", p)] = decide(list(errors[BASELINE]), list(err))
            pairs = []
            for r in records:
                if r["space"] == name and r["optimizer"] == opt and r["init_seed"] != r["seed"]:
                    first = [m for m in main if m["seed"] == r["seed"]]
                    if first:
                        pairs.append(abs(math.log2(r["max_lr"]) - math.log2(first[0]["max_lr"])))
            entry["noise"] = {"pairs": len(pairs), "mean_abs_octaves_between_inits": float(np.mean(pairs))
                              if pairs else None}
            results[f"{name}/{opt}"] = entry
    corrected = holm_decisions(raw)
    decided = corrected if holm else raw
    for key, entry in results.items():
        decisions, winners = {}, []
        for (k, p), d in decided.items():
            if k != key:
                continue
            # holm_p: Holm-adjusted over every decision of the run, reported even where the decision ignores it
            decisions[p] = {"mean_difference": float(d.mean_difference), "standard_error": float(d.standard_error),
                            "p_one_sided": float(d.p_value), "holm_p": float(corrected[(k, p)].adjusted_p),
                            "replaces_shared": bool(d.replace), "text": d.describe("shared", p)}
            if d.replace:
                winners.append((entry["predictors"][p]["mean_abs_octaves"], p))
        entry["decisions"] = decisions
        entry["default"] = min(winners)[1] if winners else "shared"
    scoring = {"constant": constant, "holm": holm, "alpha": ALPHA, "decisions": len(decided)}
    return {"config": cfg, "scoring": scoring, "results": results, "records": len(records)}


def _scoring(summary: dict) -> dict:
    """The scoring a summary was made with; summaries written before issue 23.5 are the pre-registered one."""
    return summary.get("scoring", PREREGISTERED)


def report(summary: dict) -> str:
    """The report of a summary: its scoring's tables and decisions; when it also holds the pre-registered scoring
    (:func:`rescore`), the two side by side first ("Re-scored (issue 23.5)"), then the pre-registered figures."""
    cfg = summary["config"]
    lines = ["# Maximal learning rates on NNI's model spaces: which rule predicts them?", "",
             __doc__.split("\n\n", 1)[1].strip(), "",
             f"Setup: digits (3x8x8), {cfg['samples']} samples per space, one epoch, batch {cfg['batch_size']}, "
             f"SGD (Nesterov momentum 0.9, weight decay 5e-4) and Adam."
             + "".join(f" Part {p['dir']}: commit {p['commit']}, clean tree {p['clean']}, started {p['started']}, "
                       f"finished {p['finished']}." for p in summary.get("parts", [])), ""]
    if "preregistered" in summary:
        lines += rescored_section(summary["preregistered"], summary)
        lines += ["## As pre-registered (superseded by the re-scoring above)", "",
                  "The figures the statement's scoring gave, unchanged (leave-one-out *median* constant, each "
                  "decision alone); regenerate them with `analyse(config, records, constant=\"loo-median\", "
                  "holm=False)`.", ""]
        lines += _result_lines(summary["preregistered"])
    else:
        lines += _result_lines(summary)
    return "\n".join(lines) + "\n"


def _result_lines(summary: dict) -> list[str]:
    """The table of errors and the decisions of one scoring."""
    scoring = _scoring(summary)
    fit = "leave-one-out" if scoring["constant"] == "loo-median" else f"leave-one-out, `{scoring['constant']}`"
    lines = [f"| space / optimizer | predictor | mean abs error (octaves, {fit}) | SE | r (log-log) | "
             "spread of predictions (octaves) |", "|---|---|---|---|---|---|"]
    for key, entry in summary["results"].items():
        for p, st in entry["predictors"].items():
            r = "n/a" if st["pearson_r_log"] is None else f"{st['pearson_r_log']:.2f}"
            lines.append(f"| {key} | `{p}` | {st['mean_abs_octaves']:.2f} | {st['se']:.2f} | {r} | "
                         f"{st['spread_octaves']:.1f} |")
    if scoring["holm"]:
        rule = (f"the 2-SE rule as a one-sided z test at {scoring['alpha']:.5f}, Holm-corrected across all "
                f"{scoring['decisions']} decisions: a predictor replaces one shared rate only when its Holm-adjusted "
                f"p is below {scoring['alpha']:.5f}")
    else:
        rule = ("the pre-registered rule: a predictor replaces one shared rate only when its error is lower by more "
                "than twice the paired standard error")
    lines += ["", f"Decisions ({rule}):", ""]
    for key, entry in summary["results"].items():
        noise = entry["noise"]["mean_abs_octaves_between_inits"]
        noise_text = f"{noise:.2f} octaves over {entry['noise']['pairs']} samples" if noise is not None else "n/a"
        lines.append(f"- **{key}: default `{entry['default']}`** (seed-to-seed noise of the measured maximal rate: "
                     f"{noise_text})")
        for d in entry["decisions"].values():
            lines.append(f"  - {d['text']}")
    return lines


def rescored_section(original: dict, corrected: dict) -> list[str]:
    """"Re-scored (issue 23.5)": the pre-registered scoring (``original``) and the corrected one (``corrected``)
    side by side, per predictor and per decision, and which decisions survive the correction."""
    lines = ["## Re-scored (issue 23.5)", "",
             "**The corrected scoring supersedes the pre-registered one.** The statement (`PREREGISTRATION.md`) "
             "fitted each predictor's constant by the leave-one-out *median* of its log2 residuals. The maximal "
             "rates are quantised to a quarter octave, so many residuals tie, and the median of the other samples "
             "jumps by a grid step depending on which side of the median the left-out sample lies: when it does, "
             "every sample is scored against a constant pushed away from it. Whether it jumps depends on how many "
             "of a predictor's residuals tie at the median, i.e. on the predictor, not on how well it tracks the "
             "rates. The last column of the first table shows what leaving one out costs each predictor (its "
             "leave-one-out error minus its error with the constant fitted on all samples): with the median it "
             "differs from predictor to predictor, with the mean it is about the same for all. The correction fits "
             "the constant the same way for every predictor by the leave-one-out *mean* (which moves smoothly, by "
             "(mean - x_i) / (n - 1)), and, since the statement lists "
             f"{corrected['scoring']['decisions']} decisions, reads its rule (\"more than twice the paired standard "
             f"error\") as a one-sided z test at 1 - Phi(2) = {ALPHA:.5f} with Holm's step-down correction across "
             "all of them (Holm 1979). The pre-registered figures are kept below, unchanged.", "",
             "| space / optimizer | predictor | error, pre-registered (LOO median) | error, corrected (LOO mean) | "
             "in-sample error, median / mean | cost of leaving one out, median / mean |",
             "|---|---|---|---|---|---|"]
    for key, entry in corrected["results"].items():
        old = original["results"].get(key, {"predictors": {}})
        for p, st in entry["predictors"].items():
            o = old["predictors"].get(p)
            old_text = f"{o['mean_abs_octaves']:.2f} ± {o['se']:.2f}" if o else "n/a"
            ins = f"{o['in_sample_mean_abs_octaves']:.2f}" if o else "n/a"
            cost = f"{o['mean_abs_octaves'] - o['in_sample_mean_abs_octaves']:+.2f}" if o else "n/a"
            lines.append(f"| {key} | `{p}` | {old_text} | {st['mean_abs_octaves']:.2f} ± {st['se']:.2f} | "
                         f"{ins} / {st['in_sample_mean_abs_octaves']:.2f} | "
                         f"{cost} / {st['mean_abs_octaves'] - st['in_sample_mean_abs_octaves']:+.2f} |")
    lines += ["", "Each decision (paired difference = shared's error minus the challenger's, octaves; positive: the "
              "challenger is better; SE its standard error over samples; p one-sided):", "",
              "| space / optimizer | challenger | pre-registered: difference (SE) | verdict | same, Holm p | "
              "corrected: difference (SE) | z | p | Holm p | verdict |", "|---|---|---|---|---|---|---|---|---|---|"]
    survivors, withdrawn = [], []
    for key, entry in corrected["results"].items():
        for p, d in entry["decisions"].items():
            o = original["results"].get(key, {"decisions": {}})["decisions"].get(p)
            z = f"{d['mean_difference'] / d['standard_error']:+.2f}" if d["standard_error"] > 0 else "n/a"
            new_verdict = "replaces shared" if d["replaces_shared"] else "shared stays"
            if o:
                old_verdict = "replaces shared" if o["replaces_shared"] else "shared stays"
                old_text = (f"{o['mean_difference']:+.3f} ({o['standard_error']:.3f}) | {old_verdict} | "
                            f"{o['holm_p']:.3f}")
                if o["replaces_shared"] and not d["replaces_shared"]:
                    withdrawn.append(f"`{p}` on {key} (pre-registered {o['mean_difference']:+.3f} ± "
                                     f"{o['standard_error']:.3f}, whose one-sided p "
                                     f"{o['p_one_sided']:.4f} Holm's correction alone raises to "
                                     f"{o['holm_p']:.3f}; corrected {d['mean_difference']:+.3f} ± "
                                     f"{d['standard_error']:.3f}, p {d['p_one_sided']:.2f})")
            else:
                old_text = "n/a | n/a | n/a"
            if d["replaces_shared"]:
                survivors.append(f"`{p}` on {key}")
            lines.append(f"| {key} | `{p}` | {old_text} | {d['mean_difference']:+.3f} ({d['standard_error']:.3f}) | "
                         f"{z} | {d['p_one_sided']:.4f} | {d['holm_p']:.3f} | {new_verdict} |")
    defaults = ", ".join(f"{key} `{original['results'][key]['default']}` -> `{e['default']}`"
                         if key in original["results"] and original["results"][key]["default"] != e["default"]
                         else f"{key} `{e['default']}`" for key, e in corrected["results"].items())
    lines += ["", "**Which decisions survive:** " + (", ".join(survivors) if survivors else
                                                      "none: no predictor beats one shared rate after the correction")
              + "." + (" Withdrawn: " + ", ".join(withdrawn) + "." if withdrawn else ""),
              "", f"Defaults per space and optimizer (pre-registered -> corrected): {defaults}.", ""]
    return lines


def rescore(out_dir: Path) -> dict:
    """Re-score a finished run's records (issue 23.5) without training: ``summary.json`` gets the corrected
    scoring (the default of :func:`analyse`) under ``results`` and the pre-registered one under
    ``preregistered``; ``README.md`` and the per-space reports show both (:func:`report`). The README's
    hand-written part (from :data:`HAND_WRITTEN` on) and the plots are kept as they are."""
    records = _read(out_dir / "records.jsonl")
    if not records:
        raise ArchScaleError(f"{out_dir} has no records.jsonl: nothing to re-score")
    old = json.loads((out_dir / "summary.json").read_text())
    summary = analyse(old["config"], records)
    pre = analyse(old["config"], records, **PREREGISTERED)
    summary["preregistered"] = {"scoring": pre["scoring"], "results": pre["results"]}
    return _rewrite(out_dir, old, summary, records, space_reports=True)


def _rewrite(out_dir: Path, old: dict, summary: dict, records: list[dict], space_reports: bool) -> dict:
    """Write a re-analysed ``summary`` over the ``old`` one: its ``parts`` and ``seconds`` kept, the README
    rewritten with its hand-written part (from :data:`HAND_WRITTEN` on) kept, the per-space reports (not their
    plots) rewritten with ``space_reports``."""
    for key in ("parts", "seconds"):
        if key in old:
            summary[key] = old[key]
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_keeping_reading(out_dir / "README.md", report(summary), HAND_WRITTEN)
    if space_reports:
        write_space_reports(summary, records, out_dir, plots=False)
    return summary


def reanalyse(out_dir: Path) -> dict:
    """Rewrite a finished run's summary and reports from its ``records.jsonl`` alone (no training), under the
    scoring its summary was made with: a re-scored summary (one holding ``preregistered``) by :func:`rescore`; a
    run's or a combination's by :func:`analyse` with its own scoring (the pre-registered one for summaries written
    before issue 23.5), keeping its ``parts`` and ``seconds`` and the README's hand-written part. Plots are left
    as they are."""
    old = json.loads((out_dir / "summary.json").read_text())
    if "preregistered" in old:
        return rescore(out_dir)
    records = _read(out_dir / "records.jsonl")
    if not records:
        raise ArchScaleError(f"{out_dir} has no records.jsonl: nothing to re-analyse")
    scoring = _scoring(old)
    summary = analyse(old["config"], records, constant=scoring["constant"], holm=scoring["holm"])
    return _rewrite(out_dir, old, summary, records, space_reports="parts" in old)


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
    preds = [p for p in PREDICTORS if p != BASELINE]
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
