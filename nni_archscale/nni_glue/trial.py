"""What one ``archscale search`` trial does (importable by path: the ``ts`` engine runs it in a subprocess).

For the candidate NNI hands over: extract its graph, re-initialise it and build its optimizer by the rule, train,
and report. With ``compare``, the untouched copy of the same candidate (PyTorch's default init, as NNI built it)
is also trained with NNI's default recipe (``Classification``'s defaults: Adam, lr 1e-3, no weight decay), same
data order seed, same epochs and batch size.

Defined outcomes, each reported to NNI as ``{"default": accuracy, "status": ...}`` so the strategy goes on:

* ``no-path``: the cell has no input-output path (the rule raises NoPathError): the network computes a constant,
  so it is not trained and scores chance accuracy (1 / classes);
* ``diverged``: a NaN/inf loss: training stops, chance accuracy;
* ``oom``: out of memory: training stops, chance accuracy, the CUDA cache is emptied.
Every outcome is a line in ``<out>/trials.jsonl``; with ``resume``, candidates already there are reported
from the record instead of trained again.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import NoPathError
from ..formats import to_nb201
from ..results import RECORDS, START_MODE, append_record, read_records
from ..torch_layer.data import load_dataset
from ..torch_layer.hook import HookConfig
from ..torch_layer.param_groups import build_param_groups, make_optimizer, make_scheduler
from ..torch_layer.train import TrainResult, is_oom, pick_device, train_classifier
from .adapters import graph_from_nb201_sample, is_nb201_sample, prepare_candidate

log = logging.getLogger("nni_archscale")

#: NNI Classification's defaults: the "default recipe" of --compare.
DEFAULT_RECIPE = {"optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0.0}


def arch_key(sample: dict | None, model: torch.nn.Module | None = None) -> str:
    """A stable name for a candidate: the NAS-Bench-201 string for NB201 samples, else the sorted sample."""
    if sample and is_nb201_sample(sample):
        g = graph_from_nb201_sample(sample)
        return to_nb201(g)
    if sample:
        return ";".join(f"{k}={sample[k]}" for k in sorted(sample))
    return type(model).__name__ if model is not None else "unknown"


def _seed_for(seed: int, arch: str) -> int:
    return (seed * 1_000_003 + int(hashlib.sha1(arch.encode()).hexdigest()[:8], 16)) % (2**31)


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


def run_candidate(model: torch.nn.Module, sample: dict | None, cfg: dict,
                  report_intermediate: Callable[[float], None] | None = None) -> list[dict]:
    """Train one candidate (and its default-recipe twin with ``compare``); append and return the records.

    ``cfg`` keys: out_dir, dataset, data_dir, limit, epochs, batch_size, seed, device, hook (HookConfig dict),
    compare, resume, run_id, threads (torch intra-op threads for this process; absent or None: torch's default).
    """
    out = Path(cfg["out_dir"])
    records_path = out / RECORDS
    arch = arch_key(sample, model)
    modes = ["archscale"] + (["default"] if cfg.get("compare") else [])
    done: dict[str, dict] = {}
    if cfg.get("resume"):
        for r in read_records(records_path):
            if r.get("arch") == arch and r.get("mode") in modes and r.get("run") == cfg.get("run_id"):
                done[r["mode"]] = r
    device = pick_device(cfg.get("device"))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg["threads"]))
    data = load_dataset(cfg.get("dataset", "digits"), cfg.get("data_dir"), cfg.get("limit"),
                        int(cfg.get("seed", 0))).to(device)
    seed = _seed_for(int(cfg.get("seed", 0)), arch)
    epochs, batch = int(cfg.get("epochs", 1)), int(cfg.get("batch_size", 128))
    steps_total = epochs * -(-len(data.train) // batch)
    chance = 1.0 / data.num_classes
    pristine = copy.deepcopy(model) if "default" in modes and "default" not in done else None
    records: list[dict] = []

    if "archscale" in done:
        records.append(done["archscale"])
    else:
        # a "start" record first: if this process is killed mid-training, the candidate is reported as failed
        append_record(records_path, {"arch": arch, "mode": START_MODE, "status": "started", "run": cfg.get("run_id"),
                                     "time": time.time(), "pid": os.getpid(), "sample": sample})
        hook = HookConfig(**cfg.get("hook", {}))
        gen = torch.Generator().manual_seed(seed)
        extra: dict[str, Any] = {"sample": sample}
        try:
            prepared = prepare_candidate(model, hook, sample=sample, generator=gen)
        except NoPathError as exc:
            rec = _record(cfg, arch, "archscale", None, "no-path", chance, {**extra, "message": str(exc)})
        else:
            s = prepared.scaling
            extra.update(learning_rate=prepared.learning_rate, num_paths=s.num_paths,
                         depth_power_sum=s.learning_rate.depth_power_sum, hook_ms=round(prepared.seconds * 1e3, 3),
                         adapter=prepared.adapter, graph=prepared.graph.to_text(), hook_summary=prepared.summary(),
                         groups=[{"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"]}
                                 for g in prepared.groups])
            def build(_model, prepared=prepared):
                opt = prepared.make_optimizer()
                return opt, prepared.make_scheduler(opt, steps_total)

            cb = (lambda e, m: report_intermediate(m.get("val_acc", 0.0))) if report_intermediate else None
            result = _train(model, data, device, build, epochs, batch, seed, cb)
            rec = _record(cfg, arch, "archscale", result, result.status, result.accuracy, extra)
        append_record(records_path, rec)
        records.append(rec)

    if "default" in modes:
        if "default" in done:
            records.append(done["default"])
        else:
            def build(m):
                groups = build_param_groups(m, DEFAULT_RECIPE["learning_rate"],
                                            weight_decay=DEFAULT_RECIPE["weight_decay"])
                return make_optimizer(DEFAULT_RECIPE["optimizer"], groups), None

            result = _train(pristine, data, device, build, epochs, batch, seed, None)
            rec = _record(cfg, arch, "default", result, result.status, result.accuracy,
                          {"sample": sample, "learning_rate": DEFAULT_RECIPE["learning_rate"]})
            append_record(records_path, rec)
            records.append(rec)
    return records


def _train(model, data, device, build, epochs, batch, seed, on_epoch) -> TrainResult:
    """Move the model, build its optimizer (``build(model) -> (optimizer, scheduler)``) and train it; running out
    of memory at any of these steps is the defined outcome ``oom``, not a crash."""
    try:
        model.to(device)
        opt, sched = build(model)
        return train_classifier(model, data.train, data.val, opt, epochs=epochs, batch_size=batch, scheduler=sched,
                                seed=seed, num_classes=data.num_classes, on_epoch=on_epoch)
    except BaseException as exc:  # OOM outside the loop (moving the model, building the optimizer)
        if not is_oom(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return TrainResult("oom", 1.0 / data.num_classes, float("nan"), 0, 0, 0.0, 0.0, f"out of memory: {exc}")


def search_trial(model: torch.nn.Module, config: dict) -> None:
    """The ``FunctionalEvaluator`` function of ``archscale search``: train and report to NNI."""
    import nni

    from .adapters import current_sample

    sample = current_sample()
    records = run_candidate(model, sample, config, report_intermediate=nni.report_intermediate_result)
    ours = records[0]
    metric = {"default": float(ours["accuracy"]), "status": ours["status"]}
    if ours.get("learning_rate") is not None:
        metric["learning_rate"] = float(ours["learning_rate"])
    if len(records) > 1:
        metric["default_recipe_accuracy"] = float(records[1]["accuracy"])
    if ours["status"] != "ok":
        log.warning("archscale: candidate %s: %s (%s)", ours["arch"], ours["status"], ours.get("message", ""))
    nni.report_final_result(metric)
