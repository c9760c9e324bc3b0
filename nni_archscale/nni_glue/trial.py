"""What one ``archscale search`` trial does (importable by path: the ``ts`` engine runs it in a subprocess).

For the candidate NNI hands over: extract its graph, re-initialise it and build its optimizer by the rule, train,
and report. With a comparison the same candidate is also trained by a baseline recipe, same data, seeds, epochs,
batch size, optimizer and schedule:

* ``shared-rate`` (the default comparison): what a NAS user does without this tool: one learning rate for
  every candidate, tuned once on the base network with the same calibration, and He's init (init
  ``standard``, rate rule ``shared``);
* ``nni-default``: NNI ``Classification``'s defaults (Adam, lr 1e-3, no weight decay, PyTorch's default init).

With ``seeds`` > 1 every arm trains once per seed (init and data order change, the data split does not);
NNI is told the rule's mean accuracy over the seeds.

Defined outcomes, each reported to NNI as ``{"default": accuracy, "status": ...}`` so the strategy goes on:

* ``no-path``: the cell has no input-output path (the rule raises NoPathError): the network computes a constant,
  so it is not trained and scores chance accuracy (1 / classes);
* ``diverged``: a NaN/inf loss: training stops, chance accuracy;
* ``oom``: out of memory: training stops, chance accuracy, the CUDA cache is emptied.
Every outcome is a line in ``<out>/trials.jsonl`` (its ``mode`` the arm, its ``replica`` the seed's index);
with ``resume``, runs already there are reported from the record instead of trained again.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import NoPathError
from ..core.formats import to_nb201
from ..rules import registry
from ..rules.presets import Init
from ..results import BASELINE_DESCRIPTIONS, OURS, RECORDS, START_MODE, append_record, read_records
from ..torch_layer.fast_train import speed_for
from ..torch_layer.data import load_dataset
from ..torch_layer.hook import HookConfig
from ..torch_layer.rate_choice import Reference
from ..torch_layer.param_groups import build_param_groups, make_optimizer
from ..torch_layer.train import TrainResult, is_oom, pick_device, train_classifier
from .adapters import graph_from_nb201_sample, is_nb201_sample, prepare_candidate
from .calibration import measurement_batch

log = logging.getLogger("nni_archscale")

#: NNI Classification's defaults: the recipe of ``--compare nni-default``.
DEFAULT_RECIPE = {"optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0}
#: the comparison arms (``--compare``): record modes, the first the default comparison
BASELINES = tuple(BASELINE_DESCRIPTIONS)


def arch_key(sample: dict | None, model: torch.nn.Module | None = None) -> str:
    """A stable name for a candidate: the NAS-Bench-201 string for NB201 samples, else the sorted sample."""
    if sample and is_nb201_sample(sample):
        g = graph_from_nb201_sample(sample)
        return to_nb201(g)
    if sample:
        return ";".join(f"{k}={sample[k]}" for k in sorted(sample))
    return type(model).__name__ if model is not None else "unknown"


def _seed_for(seed: int, arch: str, replica: int = 0) -> int:
    """The candidate's training seed (init and data order) for replica ``replica`` of run seed ``seed``."""
    return ((seed + replica) * 1_000_003 + int(hashlib.sha1(arch.encode()).hexdigest()[:8], 16)) % (2**31)


def compare_arm(compare) -> str | None:
    """The baseline arm a ``compare`` setting names (``True`` is the default comparison, ``shared-rate``)."""
    if compare in (None, False, ""):
        return None
    arm = BASELINES[0] if compare is True else compare
    if arm not in BASELINES:
        raise ValueError(f"unknown comparison {compare!r}; use one of {', '.join(BASELINES)}")
    return arm


def _record(cfg: dict, arch: str, mode: str, result: TrainResult | None, status: str, accuracy: float,
            extra: dict) -> dict:
    rec = {"arch": arch, "mode": mode, "status": status, "accuracy": accuracy, "run": cfg.get("run_id"),
           "time": time.time(), **extra}
    if result is not None:
        rec.update(train_loss=None if result.train_loss != result.train_loss else result.train_loss,
                   epochs=result.epochs, steps=result.steps, seconds=round(result.seconds, 4),
                   samples_per_second=round(result.samples_per_second, 1), message=result.message,
                   history=result.history)
    return rec


@dataclass(frozen=True)
class TrialContext:
    """What every arm and seed of one candidate's trial shares: the data on its device, the budget (``epochs`` of
    ``batch_size``, ``steps_total`` steps), the trial's ``cfg`` and the candidate's ``arch`` key (for its records),
    the accuracy of chance (a candidate with no path scores it), the base network's ``reference`` and the
    ``measure_batch`` of the measured rule, and the fast path's ``speed`` options (None: the plain loop)."""

    data: Any
    device: torch.device
    epochs: int
    batch_size: int
    steps_total: int
    cfg: dict
    arch: str
    chance: float
    reference: Reference | None = None
    measure_batch: Any = None
    speed: Any = None


def run_candidate(model: torch.nn.Module, sample: dict | None, cfg: dict,
                  report_intermediate: Callable[[float], None] | None = None) -> list[dict]:
    """Train one candidate by the rule (and by the baseline arm with ``compare``), once per seed; append and
    return the records, the rule's first.

    ``cfg`` keys: out_dir, dataset, data_dir, limit, epochs, batch_size, seed, seeds (replicas, default 1),
    device, hook (HookConfig dict), compare (None, ``shared-rate`` or ``nni-default``), shared_lr (the tuned
    shared rate, needed by ``shared-rate``), resume, run_id, threads (torch intra-op threads; absent or None:
    torch's default).
    """
    out = Path(cfg["out_dir"])
    records_path = out / RECORDS
    arch = arch_key(sample, model)
    baseline = compare_arm(cfg.get("compare"))
    if baseline == "shared-rate" and not cfg.get("shared_lr"):
        raise ValueError("the shared-rate comparison needs cfg['shared_lr'], the rate tuned on the base network")
    replicas = max(1, int(cfg.get("seeds") or 1))
    # the hook's options, checked before any data loads (a bad weight decay or batch size is refused here, by
    # HookConfig, naming the option); a rule that needs the training batch size gets the one this trial trains with
    hook_options = dict(cfg.get("hook") or {})
    if hook_options.get("batch_size") is None:
        hook_options["batch_size"] = cfg.get("batch_size", 128)
    hook = HookConfig.of(hook_options)
    modes = [OURS] + ([baseline] if baseline else [])
    done: dict[tuple[str, int], dict] = {}
    if cfg.get("resume"):
        for r in read_records(records_path):
            if r.get("arch") == arch and r.get("mode") in modes and r.get("run") == cfg.get("run_id"):
                done[(r["mode"], int(r.get("replica", 0)))] = r
    device = pick_device(cfg.get("device"))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    data = load_dataset(cfg.get("dataset", "digits"), cfg.get("data_dir"), cfg.get("limit"),
                        int(cfg.get("seed", 0))).to(device)
    epochs, batch_size = int(cfg.get("epochs", 1)), int(cfg.get("batch_size", 128))
    steps_total = epochs * -(-len(data.train) // batch_size)
    speed = speed_for(device, **(cfg.get("speed") or {}))
    chance = 1.0 / data.num_classes
    pristine = copy.deepcopy(model)  # every arm and seed starts from the network NNI built
    records: list[dict] = []
    arms = {OURS: hook}
    if baseline == "shared-rate":
        # He's init and one rate (the tuned shared rate), same optimizer and schedule
        arms[baseline] = replace(hook, init=Init.STANDARD.value, base_lr=float(cfg["shared_lr"]),
                                 rate_rule=registry.SHARED.name)
    # the base network's measurements (the measured and segmented rules) and the batch the measured rule uses,
    # on the CPU where the hook runs (the model moves to the device after it is prepared)
    reference = Reference.from_dict(cfg.get("reference"))
    measure_batch = None
    if reference is not None and reference.change is not None:
        measure_batch = measurement_batch(load_dataset(cfg.get("dataset", "digits"), cfg.get("data_dir"),
                                                       cfg.get("limit"), int(cfg.get("seed", 0))),
                                          int(cfg.get("seed", 0)))
    ctx = TrialContext(data, device, epochs, batch_size, steps_total, cfg, arch, chance, reference, measure_batch,
                       speed)

    for mode in modes:
        for replica in range(replicas):
            if (mode, replica) in done:
                records.append(done[(mode, replica)])
                continue
            seed = _seed_for(int(cfg.get("seed", 0)), arch, replica)
            # a "start" record first: if this process is killed mid-training, the run is reported as failed
            append_record(records_path, {"arch": arch, "mode": START_MODE, "arm": mode, "replica": replica,
                                         "status": "started", "run": cfg.get("run_id"), "time": time.time(),
                                         "pid": os.getpid(), "sample": sample})
            net = model if (mode, replica) == (OURS, 0) else copy.deepcopy(pristine)
            extra: dict[str, Any] = {"sample": sample, "replica": replica, "seed": seed,
                                     "speed": speed.describe(device, steps_total) if speed else "plain loop"}
            cb = None
            if report_intermediate and mode == OURS and replica == 0:
                cb = lambda e, m: report_intermediate(m.get("val_acc", 0.0))  # noqa: E731
            if mode == "nni-default":
                _reset_default_init(net, seed, replica)
                rec = _train_default(net, ctx, seed, extra)
            else:
                rec = _train_prepared(net, sample, arms[mode], ctx, mode, seed, extra, cb)
            append_record(records_path, rec)
            records.append(rec)
    return records


def _reset_default_init(model: torch.nn.Module, seed: int, replica: int) -> None:
    """Replica 0 keeps the init NNI built; other replicas redraw PyTorch's default init from their own seed."""
    if replica == 0:
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()


def _train_prepared(model, sample, hook: HookConfig, ctx: TrialContext, mode: str, seed: int, extra: dict,
                    on_epoch=None) -> dict:
    """Re-initialise ``model`` and set its rates by ``hook`` (the rule, or the shared-rate baseline), train it,
    and return its record."""
    gen = torch.Generator().manual_seed(seed)
    try:
        prepared = prepare_candidate(model, hook, sample=sample, generator=gen, batch=ctx.measure_batch,
                                     reference=ctx.reference)
    except NoPathError as exc:
        return _record(ctx.cfg, ctx.arch, mode, None, "no-path", ctx.chance, {**extra, "message": str(exc)})
    s = prepared.scaling
    extra = dict(extra, learning_rate=prepared.learning_rate, num_paths=s.num_paths,
                 depth_power_sum=s.learning_rate.depth_power_sum, hook_ms=round(prepared.seconds * 1e3, 3),
                 adapter=prepared.adapter, graph=prepared.graph.to_text(), hook_summary=prepared.summary(),
                 rate_rule=prepared.rate_rule, notes=list(prepared.notes),
                 groups=[{"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"]}
                         for g in prepared.groups])

    def build(_model):
        opt = prepared.make_optimizer()
        return opt, prepared.make_scheduler(opt, ctx.steps_total)

    result = _train(model, ctx, build, seed, on_epoch)
    return _record(ctx.cfg, ctx.arch, mode, result, result.status, result.accuracy, extra)


def _train_default(model, ctx: TrialContext, seed: int, extra: dict) -> dict:
    """NNI Classification's defaults (:data:`DEFAULT_RECIPE`) on the network as built."""

    def build(m):
        groups = build_param_groups(m, DEFAULT_RECIPE["learning_rate"], weight_decay=DEFAULT_RECIPE["weight_decay"])
        return make_optimizer(DEFAULT_RECIPE["optimizer"], groups), None

    result = _train(model, ctx, build, seed, None)
    return _record(ctx.cfg, ctx.arch, "nni-default", result, result.status, result.accuracy,
                   {**extra, "learning_rate": DEFAULT_RECIPE["learning_rate"]})


def _train(model, ctx: TrialContext, build, seed: int, on_epoch=None) -> TrainResult:
    """Move the model, build its optimizer (``build(model) -> (optimizer, scheduler)``) and train it at the
    trial's budget (``ctx.speed``: the fast path's options, :mod:`..torch_layer.fast_train`; None: the plain loop);
    running out of memory at any of these steps is the defined outcome ``oom``, not a crash."""
    data = ctx.data
    try:
        model.to(ctx.device)
        opt, sched = build(model)
        return train_classifier(model, data.train, data.val, opt, epochs=ctx.epochs, batch_size=ctx.batch_size,
                                scheduler=sched, seed=seed, num_classes=data.num_classes, on_epoch=on_epoch,
                                speed=ctx.speed if ctx.speed is not None else False)
    except BaseException as exc:  # OOM outside the loop (moving the model, building the optimizer)
        if not is_oom(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return TrainResult("oom", 1.0 / data.num_classes, float("nan"), 0, 0, 0.0, 0.0, f"out of memory: {exc}")


def search_trial(model: torch.nn.Module, config: dict) -> None:
    """The ``FunctionalEvaluator`` function of ``archscale search``: train and report to NNI (the rule's mean
    accuracy over the seeds; the baseline's mean beside it)."""
    import nni

    from .adapters import current_sample

    sample = current_sample()
    records = run_candidate(model, sample, config, report_intermediate=nni.report_intermediate_result)
    ours = [r for r in records if r["mode"] == OURS]
    others = [r for r in records if r["mode"] != OURS]
    metric = {"default": sum(float(r["accuracy"]) for r in ours) / len(ours), "status": ours[0]["status"]}
    if ours[0].get("learning_rate") is not None:
        metric["learning_rate"] = float(ours[0]["learning_rate"])
    if others:
        metric["baseline_accuracy"] = sum(float(r["accuracy"]) for r in others) / len(others)
    bad = [r for r in ours if r["status"] != "ok"]
    if bad:
        log.warning("archscale: candidate %s: %s (%s)", bad[0]["arch"], bad[0]["status"], bad[0].get("message", ""))
    nni.report_final_result(metric)
