"""``archscale fairness``: how far one shared rate is from each candidate's own best rate at the search's budget
(the headroom), and how much of that each rate rule recovers. The steps are :mod:`.engine`'s; the reading and
scoring :mod:`.curves`' and :mod:`.score`'s; the files :mod:`.report`'s.

Arms (each rule under the product's init, read off the grid; ``level`` says where its constant comes from):

* every registered rate rule that applies to the space's family (:mod:`nni_archscale.rules.registry`), plus, for
  NAS-Bench-201, the paper's path sum over the whole network (``graph-whole``, the fx adapter) beside its one-cell
  count (``graph``), and the family's current default (``default``);
* each at three levels: ``product`` (the base network's best rate at this budget, what ``calibrate --objective
  accuracy`` finds), ``maxlr`` (the paper's one-epoch maximal rate of the base network, the current
  calibration), ``population`` (the best mean accuracy over a small sample of candidates), and ``hindsight`` (the
  best level for these candidates, fitted the same way for every arm and cross-fitted over seeds): regret at
  ``hindsight`` is the rule's *shape* alone, the rest of its regret is *level*;
* trained separately: He's init at its shared rate (the ``--compare shared-rate`` baseline: the one-epoch maximal
  rate of the base network under He's init) and the benchmark recipe (PyTorch's default init at a fixed rate).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import ExtractionError, NoPathError, RuleError
from ..results import atomic_write_text
from ..rules.registry import AUTO, FEATURE, REGISTRY, SHARED, stored_options
from ..stats import kendall_tau
from .candidates import BASE_KEY, CandidateSpec, sample_dag_cells, sample_nb201, sample_space
from .curves import best_rate, crossfit_shift, off_grid, oracle, population_shift, read_arm, seed_noise_at_oracle
from .engine import (FairnessError, FairnessOptions, Runner, base_spec, build_candidate, grid_curve, initial_grid,
                     train_until_interior, write_run_file)
from .engine import payload as worker_payload
from .score import Arm, arm_metrics, decide_all, noise_floor, paired_difference, top_quarter

LEVELS = ("product", "maxlr", "population", "hindsight")
CANDIDATES_FILE = "candidates.json"


def family_of(space: str) -> str:
    from ..nni_glue.adapters import space_family

    return "dag-cell" if space == "dagcell" else space_family(space)


def choose_candidates(opts: FairnessOptions, num_classes: int) -> tuple[list[CandidateSpec], str]:
    if opts.space == "dagcell":
        return sample_dag_cells(opts.candidates, opts.sample_seed), "uniform over the 5-node cells with a path"
    if opts.space == "nb201" and not opts.space_options:
        return sample_nb201(opts.candidates, opts.sample_seed, opts.published)
    return (sample_space(opts.space, opts.candidates, opts.sample_seed + 1, opts.space_options, num_classes),
            f"NNI's space.random at seeds from {opts.sample_seed + 1}")


# ------------------------------------------------------------------------------------------------ base rates
def maxlr_rate(opts: FairnessOptions, payload: dict, data, init: dict, seed: int = 0) -> dict:
    """The paper's calibration on the base network (one epoch, one rate for all parameters, the largest rate
    within 2% of the lowest final training loss, refined to a quarter octave): what ``archscale calibrate`` does,
    here for any space the fairness run takes. ``init``: the hook's init (``{"init": ...}``)."""
    import torch

    from ..nni_glue.adapters import prepare_candidate
    from ..torch_layer.rate_grid import final_loss, log_grid, refine_rate
    from ..torch_layer.hook import HookConfig
    from ..torch_layer.train import train_classifier

    in_features = int(np.prod(data.train.x.shape[1:]))

    def train_one(lr: float):
        model, sample = build_candidate(payload, base_spec(opts).to_dict(), data.num_classes, in_features)
        cfg = HookConfig(**{**payload["hook"], **init, "base_lr": lr, "rate_rule": SHARED.name,
                            "scheduler": "none"})
        prepared = prepare_candidate(model, cfg, sample=sample, generator=torch.Generator().manual_seed(seed),
                                     adapter="auto" if sample is not None else "fx")
        losses: list[float] = []
        result = train_classifier(model, data.train, None, prepared.make_optimizer(), epochs=1,
                                  batch_size=opts.batch_size, seed=seed, num_classes=data.num_classes,
                                  on_step=lambda s, v: losses.append(v))
        return final_loss(losses), result.status

    found = refine_rate(train_one, log_grid(1e-3, 10.0, 9))
    return {"rate": float(found.rate), "resolution_octaves": found.resolution_octaves,
            "losses": {f"{k:.6g}": v for k, v in found.losses.items()}}


def cached(out: Path, name: str, compute: Callable[[], dict]) -> dict:
    """``compute()``, kept in ``out/<name>.json`` so that a resumed run reuses it."""
    path = out / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    atomic_write_text(path, json.dumps(value, indent=2))
    return value


# ------------------------------------------------------------------------------------------------ rule rates
def rule_rates(opts: FairnessOptions, payload: dict, specs: list[CandidateSpec], data, levels: dict[str, float],
               family: str, report: Callable[[str], None]) -> tuple[dict, dict]:
    """``(rates, notes)``: ``rates[arm][level][key]`` = the rate the arm's rule gives each candidate with the
    base rate of each level, computed by the hook itself (prepare_candidate with that rule), and the notes."""
    import torch

    from ..nni_glue.adapters import prepare_candidate, resolve_rate_rule
    from ..nni_glue.calibration import measurement_batch, model_reference
    from ..torch_layer.hook import HookConfig

    in_features = int(np.prod(data.train.x.shape[1:]))
    hook = payload["hook"]
    batch = measurement_batch(data, opts.seed)
    base_model, base_sample = build_candidate(payload, base_spec(opts).to_dict(), data.num_classes, in_features)
    reference = model_reference(base_model, base_sample, data, HookConfig(**hook), opts.seed)
    # "feature" only picks feature-sgd or feature-adam by optimizer: both are arms already
    names = list(opts.rules) if opts.rules else [n for n, r in REGISTRY.items()
                                                 if r.applies_to(family) and r is not FEATURE]
    if opts.space == "nb201" and (not opts.rules or "graph-whole" in opts.rules):
        names.append("graph-whole")
    default = resolve_rate_rule(HookConfig(**{**hook, "rate_rule": AUTO}), family)
    rates: dict = {}
    notes: dict = {"default": default}
    for name in names:
        rule, adapter = ("graph", "fx") if name == "graph-whole" else (name, None)
        per_level = {}
        try:
            for level, c in levels.items():
                out = {}
                for spec in specs:
                    model, sample = build_candidate(payload, spec.to_dict(), data.num_classes, in_features)
                    cfg = HookConfig(**{**hook, "base_lr": c, "rate_rule": rule})
                    try:
                        prepared = prepare_candidate(model, cfg, sample=sample, batch=batch, reference=reference,
                                                     generator=torch.Generator().manual_seed(opts.seed),
                                                     adapter=adapter or ("auto" if sample is not None else "fx"))
                    except (RuleError, ExtractionError, NoPathError) as exc:
                        raise type(exc)(f"candidate {spec.key}: {exc}") from exc
                    out[spec.key] = float(prepared.learning_rate)
                per_level[level] = out
        except (RuleError, ExtractionError, NoPathError) as exc:
            notes[name] = f"not applicable: {exc}"
            report(f"archscale fairness: rule {name} left out: {exc}")
            continue
        rates[name] = per_level
    return rates, notes


# ------------------------------------------------------------------------------------------------ the run
def run_fairness(opts: FairnessOptions, out: str | Path, resume: bool = False, progress: bool = True,
                 report: Callable[[str], None] = print) -> dict:
    """Run (or resume) a fairness benchmark into ``out`` and write its report; returns the summary."""
    from ..torch_layer.data import load_dataset

    opts.validate()
    out = Path(out)
    if str(out).strip() in ("", "."):
        raise FairnessError("--out must name a folder for the run (not the current directory)")
    out.mkdir(parents=True, exist_ok=True)
    run = write_run_file(out, opts, resume)
    t0 = time.perf_counter()
    data = load_dataset(opts.dataset, opts.data_dir, opts.limit, opts.seed)
    payload = worker_payload(opts)
    family = family_of(opts.space)

    def pick():
        specs, how = choose_candidates(opts, data.num_classes)
        return {"how": how, "candidates": [s.to_dict() for s in specs]}

    chosen = cached(out, "candidates", pick)
    specs = [CandidateSpec.from_dict(d) for d in chosen["candidates"]]
    report(f"archscale fairness: {len(specs)} candidates of {opts.space} ({chosen['how']}), {opts.seeds} seeds, "
           f"{opts.epochs} epoch(s) of {opts.dataset} at batch {opts.batch_size}")
    hook = payload["hook"]
    own = {"init": hook["init"]}
    cal = cached(out, "calibration", lambda: {
        "maxlr": maxlr_rate(opts, payload, data, own, opts.seed),
        "he_maxlr": maxlr_rate(opts, payload, data, {"init": "standard"}, opts.seed)})
    c_maxlr, c_he = cal["maxlr"]["rate"], cal["he_maxlr"]["rate"]
    report(f"archscale fairness: one-epoch maximal rate of the base network {c_maxlr:.4g} (He's init {c_he:.4g})")

    runner = Runner(opts, out, progress)
    try:
        base = base_spec(opts)
        grids = cached(out, "base_grid", lambda: {BASE_KEY: initial_grid(c_maxlr, [])})
        grids = train_until_interior(runner, [base], {BASE_KEY: list(grids[BASE_KEY])}, report)
        base_curve = grid_curve(runner, base, grids[BASE_KEY])
        c_product = best_rate(base_curve)
        report(f"archscale fairness: the base network's best rate at this budget {c_product:.4g}")
        rates, rule_notes = rule_rates(opts, payload, specs, data, {"product": c_product, "maxlr": c_maxlr}, family,
                                       report)
        need = {s.key: [r for arm in rates.values() for lv in arm.values() for k, r in lv.items() if k == s.key]
                for s in specs}
        cand_grids = {s.key: initial_grid(c_product, need[s.key] + [c_maxlr]) for s in specs}
        cand_grids = train_until_interior(runner, specs, cand_grids, report)
        other = [(s, "he", c_he, r) for s in specs for r in range(opts.seeds)]
        if opts.benchmark_lr is not None:
            other += [(s, "benchmark", opts.benchmark_lr, r) for s in specs for r in range(opts.seeds)]
        runner.run(other)
        curves = [grid_curve(runner, s, cand_grids[s.key]) for s in specs]
        trained = {"he": c_he, **({"benchmark": opts.benchmark_lr} if opts.benchmark_lr is not None else {})}
        trained_acc = {m: np.array([np.mean([runner.accuracy(s.key, m, r, k) for k in range(opts.seeds)])
                                    for s in specs]) for m, r in trained.items()}
        train_stats = {"trained_now": runner.trained, "seconds_in_training": round(runner.train_seconds, 1)}
    finally:
        runner.close()
    summary = analyse(opts, specs, curves, rates, rule_notes, trained, trained_acc,
                      {"maxlr": c_maxlr, "product": c_product, "he_maxlr": c_he}, base_curve, chosen["how"])
    summary["cost"] = {"trainings": sum(len(c.log_rates) * c.seeds for c in curves) + len(base_curve.log_rates)
                       * base_curve.seeds + sum(len(specs) * opts.seeds for _ in trained), **train_stats,
                       "wall_seconds_this_session": round(time.perf_counter() - t0, 1)}
    summary["run"] = {k: run.get(k) for k in ("commit", "clean", "started")}
    from .report import write_report

    write_report(out, summary, curves, runner.done)
    return summary


def reanalyse(out: str | Path) -> dict:
    """Rewrite a finished run's ``summary.json``, ``runs.csv``, report and plots from what its folder holds, with no
    training: every curve from ``records.jsonl`` (a candidate's grid is the lattice points it was trained at), the
    candidates from ``candidates.json``, and from the old ``summary.json`` what is not a training: the rates each
    rule gave each candidate (the hook computes them on the built networks, :func:`rule_rates`), the rule notes,
    the base rates (``constants``), the sampling's description, the run's provenance and its cost."""
    out = Path(out)
    old = json.loads((out / "summary.json").read_text())
    opts = FairnessOptions(**old["options"])  # as stored: the summary repeats them
    specs = [CandidateSpec.from_dict(d) for d in json.loads((out / CANDIDATES_FILE).read_text())["candidates"]]
    # the runner reads the records only; its hook options in today's words (an earlier run stored "preset")
    runner = Runner(replace(opts, hook=stored_options(opts.hook)), out, progress=False)
    try:
        grids: dict[str, set] = {}
        for key, mode, index, _ in runner.done:
            if mode == "grid":
                grids.setdefault(key, set()).add(round(index))
        base = base_spec(opts)
        base_curve = grid_curve(runner, base, sorted(grids[BASE_KEY]))
        curves = [grid_curve(runner, s, sorted(grids[s.key])) for s in specs]
        constants = old["constants"]
        trained = {"he": constants["he_maxlr"],
                   **({"benchmark": opts.benchmark_lr} if opts.benchmark_lr is not None else {})}
        trained_acc = {m: np.array([np.mean([runner.accuracy(s.key, m, r, k) for k in range(opts.seeds)])
                                    for s in specs]) for m, r in trained.items()}
    finally:
        runner.close()
    keys = [s.key for s in specs]
    rates = {name: {lv: dict(zip(keys, values)) for lv, values in per.items()} for name, per in old["rates"].items()}
    notes = {"default": old["default_rule"], **old["rule_notes"]}
    summary = analyse(opts, specs, curves, rates, notes, trained, trained_acc, constants, base_curve,
                      old["how_sampled"])
    summary["cost"], summary["run"] = old["cost"], old["run"]
    from .report import write_report

    write_report(out, summary, curves, runner.done)
    return summary


def analyse(opts, specs, curves, rates, rule_notes, trained, trained_acc, constants, base_curve, how) -> dict:
    """Every arm's metrics and the decisions (see the module docstring and :mod:`.score`)."""
    orc = oracle(curves)
    keys = [s.key for s in specs]
    published = {}
    if all(s.published for s in specs):
        published = {name: np.array([s.published[name] for s in specs]) for name in specs[0].published}
    arms: list[Arm] = []
    for name, per_level in rates.items():
        prod = np.log2([per_level["product"][k] for k in keys])
        for level in LEVELS:
            if level == "product":
                lr, acc = prod, read_arm(curves, prod)
            elif level == "maxlr":
                lr = np.log2([per_level["maxlr"][k] for k in keys])
                acc = read_arm(curves, lr)
            elif level == "population":
                acc, fitted = population_shift(curves, prod, opts.population, seed=opts.seed)
                lr = prod + float(np.median(fitted))
            else:
                acc, fitted = crossfit_shift(curves, prod)
                lr = prod + float(np.mean(fitted))
            n_off = sum(off_grid(c, x) for c, x in zip(curves, lr))
            arms.append(Arm(f"{name}@{level}", name, level, np.asarray(lr), np.asarray(acc), n_off))
    for mode, rate in trained.items():
        arms.append(Arm(mode, mode, "fixed", np.full(len(keys), math.log2(rate)), trained_acc[mode], 0, True,
                        [f"{'He init' if mode == 'he' else 'PyTorch default init'} at {rate:.4g}, its own training"]))
    by_name = {a.name: a for a in arms}
    metrics = {}
    for a in arms:
        shared = by_name.get(f"shared@{a.level}") if a.level in LEVELS else by_name.get("shared@product")
        metrics[a.name] = arm_metrics(a, orc.accuracy, orc.log_rate, shared, published)
    per_seed = seed_noise_at_oracle(curves, orc)
    floor = {"all": noise_floor(per_seed), "top_quarter": noise_floor(per_seed, top_quarter(orc.accuracy))}
    # the pre-registered decisions: each rule (not shared) at the product level against shared at the product level
    default = rule_notes.get("default")
    decisions = [{"name": f"{n}@product", "difference": metrics[f"{n}@product"]["regret_vs_shared"]["difference"],
                  "se": metrics[f"{n}@product"]["regret_vs_shared"]["se"],
                  "off_grid": metrics[f"{n}@product"]["off_grid"] > 0}
                 for n in rates if n != SHARED.name]
    decided = decide_all(decisions) if decisions else []
    # the base-rate objective (issue 23 item 3): one shared rate at each level against the current calibration's
    objective = []
    if SHARED.name in rates:
        old = metrics["shared@maxlr"]["regret"]
        for level in ("product", "population"):
            diff = (orc.accuracy - by_name["shared@maxlr"].accuracy) - (orc.accuracy - by_name[f"shared@{level}"].accuracy)
            mean, se = paired_difference(diff)
            objective.append({"name": f"shared@{level} vs shared@maxlr", "difference": mean, "se": se,
                              "off_grid": metrics[f"shared@{level}"]["off_grid"] > 0, "maxlr_regret": old})
    objective = decide_all(objective) if objective else []
    headroom = metrics.get("shared@product", {}).get("regret")
    oracle_published = {n: kendall_tau(orc.accuracy.tolist(), t.tolist()) for n, t in published.items()}
    return {
        "space": opts.space, "family": family_of(opts.space), "how_sampled": how, "candidates": keys,
        "options": {k: v for k, v in opts.identity().items()}, "constants": constants,
        "default_rule": default, "rule_notes": {k: v for k, v in rule_notes.items() if k != "default"},
        "headroom": headroom, "noise_floor": floor,
        # only where the space has published accuracies (NAS-Bench-201): no empty field for the others
        **({"oracle_published_tau": oracle_published} if oracle_published else {}),
        "oracle": {"log2_rate": orc.log_rate.tolist(), "accuracy": orc.accuracy.tolist(),
                   "in_sample_accuracy": orc.in_sample.tolist(), "interior": orc.interior.tolist(),
                   "winners_curse": float(np.mean(orc.in_sample - orc.accuracy))},
        "base_curve": {"log2_rates": base_curve.log_rates.tolist(), "mean_accuracy": base_curve.mean().tolist()},
        "arms": metrics, "decisions": decided, "objective_decisions": objective,
        "rates": {name: {lv: [per[lv][k] for k in keys] for lv in per} for name, per in rates.items()},
    }
