"""GPU check (prepared for sessions that have a CUDA device): NAS-Bench-201 candidate training throughput at
CIFAR size, with and without the archscale hook, and the wall time of a 20-candidate search.

    python benchmarks/gpu_check.py                    # defaults: C=16, N=5 (the benchmark's network), batch 256
    python benchmarks/gpu_check.py --quick            # smaller: C=16, N=1, fewer steps, 5-candidate search
    python benchmarks/gpu_check.py --json out.json    # also write the figures as JSON

What is measured, all in one process on one device, side by side:

* throughput (images/s) of SGD training steps on synthetic CIFAR-size data (3x32x32, 10 classes) that already
  lives on the device, for several NAS-Bench-201 candidates, each in four variants: hook off / on (the hook:
  per-candidate re-initialisation and param groups from the rule; "off" is PyTorch's default init with one
  learning rate) x fp32 / bf16 autocast + channels_last. The hook changes init and optimizer groups only, so
  on/off should match within noise; bf16 + channels_last is the speed-up a GPU run should use;
* the hook's own cost per candidate (ms, graph -> init + groups), vs one epoch of CIFAR-10 (50,000 images) at
  the measured throughput;
* the wall time of a 20-candidate ``archscale search`` (sequential engine, on the device): digits by default,
  CIFAR-10 with ``--data-dir``.
* the maximal-learning-rate grid of ``archscale experiment lr-prediction`` (all rates and seeds batched) on the
  device against the CPU, on the same data and seeds: final losses, chosen rates, and wall time of each.

With no CUDA device it prints why and exits 0 (CPU-only CI runs exactly that path).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

OPS = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")
EDGES = ("cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=16, help="stem channels C (NAS-Bench-201: 16)")
    p.add_argument("--cells", type=int, default=5, help="cells per stage N (NAS-Bench-201: 5)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--candidates", type=int, default=4, help="candidates timed for throughput")
    p.add_argument("--steps", type=int, default=40, help="timed training steps per variant")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (cudnn autotuning, caches)")
    p.add_argument("--search-trials", type=int, default=20)
    p.add_argument("--search-epochs", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="CIFAR-10 directory for the search (default: digits)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="N=1, 20 steps, 5-candidate search")
    p.add_argument("--no-search", action="store_true", help="skip the search timing")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.cells, args.steps, args.warmup, args.search_trials = 1, 20, 5, 5
    return args


def cuda_device(requested: str):
    """The CUDA device to use, or None (with the reason printed) when there is none."""
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device is available (torch.cuda.is_available() is False); nothing to measure. "
              "Run this script in a session that has a GPU.")
        return None
    dev = torch.device(requested)
    if dev.type != "cuda":
        print(f"gpu_check: --device {requested!r} is not a CUDA device; nothing to measure.")
        return None
    return dev


def random_samples(k: int, seed: int) -> list[dict]:
    """``k`` distinct NAS-Bench-201 samples, each with an input-output path through at least one conv."""
    from nni_archscale.nni_glue.adapters import graph_from_nb201_sample
    from nni_archscale.paths import path_statistics

    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < k:
        s = {e: rng.choice(OPS) for e in EDGES}
        key = tuple(s.values())
        if key in seen or not any(v.startswith("conv") for v in key):
            continue
        if path_statistics(graph_from_nb201_sample(s)).output_num_paths == 0:
            continue  # no input-output path: nothing to train (the search reports these as no-path)
        seen.add(key)
        out.append(s)
    return out


def throughput(model, optimizer, x, y, steps: int, warmup: int, bf16: bool) -> float:
    """Images per second of ``steps`` SGD steps on device-resident batches (after ``warmup`` steps)."""
    import torch
    import torch.nn.functional as F

    n = len(x)
    bs = int(y.shape[1])

    def step(i):
        xb, yb = x[i % n], y[i % n]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            out = model(xb)
            logits = out[-1] if isinstance(out, tuple) else out
            loss = F.cross_entropy(logits.float(), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    model.train()
    for i in range(warmup):
        step(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    torch.cuda.synchronize()
    return steps * bs / (time.perf_counter() - t0)


def measure_candidates(args, dev) -> tuple[list[dict], list[float]]:
    import torch

    from nni_archscale.nni_glue.adapters import prepare_candidate
    from nni_archscale.nni_glue.calibration import build_nb201
    from nni_archscale.torch_layer.hook import HookConfig
    from nni_archscale.torch_layer.param_groups import build_param_groups, make_optimizer

    torch.backends.cudnn.benchmark = True
    g = torch.Generator(device="cpu").manual_seed(args.seed)
    batches = 8  # distinct batches cycled through: data already on the device, no loader in the loop
    x = torch.randn(batches, args.batch_size, 3, 32, 32, generator=g).to(dev)
    y = torch.randint(0, 10, (batches, args.batch_size), generator=g).to(dev)
    rows, hook_ms = [], []
    for ci, sample in enumerate(random_samples(args.candidates, args.seed)):
        for hook in (False, True):
            for fast in (False, True):
                torch.manual_seed(args.seed + ci)
                model = build_nb201(args.width, args.cells, 10, sample)
                if hook:
                    t0 = time.perf_counter()
                    prepared = prepare_candidate(model, HookConfig(base_lr=0.1, preset="paper"), sample=sample,
                                                 adapter="nb201-sample")
                    hook_ms.append((time.perf_counter() - t0) * 1e3)
                    model.to(dev)
                    opt = prepared.make_optimizer()
                else:
                    model.to(dev)
                    opt = make_optimizer("sgd", build_param_groups(model, 0.1, weight_decay=5e-4))
                if fast:
                    model = model.to(memory_format=torch.channels_last)
                # channels_last inputs for the fast variant: each (bs, 3, 32, 32) batch in NHWC layout
                xs = [xb.contiguous(memory_format=torch.channels_last) for xb in x] if fast else list(x)
                ips = throughput(model, opt, xs, y, args.steps, args.warmup, bf16=fast)
                rows.append({"candidate": ci, "arch": "|".join(sample[e] for e in EDGES), "hook": hook,
                             "variant": "bf16+channels_last" if fast else "fp32", "images_per_s": round(ips, 1)})
                del model, opt
                torch.cuda.empty_cache()
    return rows, hook_ms


def time_search(args, dev) -> dict:
    from nni_archscale.nni_glue.search import SearchOptions, run_search

    dataset = "cifar10" if args.data_dir else "digits"
    with tempfile.TemporaryDirectory(prefix="gpu-check-search-") as tmp:
        opts = SearchOptions(dataset=dataset, data_dir=args.data_dir, trials=args.search_trials,
                             epochs=args.search_epochs, batch_size=args.batch_size, engine="sequential",
                             device=str(dev), strategy="random", width=args.width, cells_per_stage=args.cells,
                             out=str(Path(tmp) / "out"), base_lr=0.1, seed=args.seed, progress=False,
                             cache_path=str(Path(tmp) / "cal.json"))
        t0 = time.perf_counter()
        summary = run_search(opts, report=lambda *_: None)
        wall = time.perf_counter() - t0
    return {"dataset": dataset, "trials": args.search_trials, "epochs": args.search_epochs, "wall_s": round(wall, 1),
            "search_seconds": summary.get("search_seconds"), "statuses": summary.get("statuses"),
            "best_accuracy": summary.get("best_accuracy")}


def grid_check(dev, width: int = 64, quick: bool = False) -> dict:
    """One maximal-rate grid (cell 2_12_112_1112, 2 seeds x 12 rates, synthetic 196-feature data) on the CPU and
    on ``dev``: the losses must agree to float32 accumulation error and the chosen rates must match."""
    import torch

    from nni_archscale.experiments.batched import CellNetSpec
    from nni_archscale.experiments.cellnet_init import layer_variances
    from nni_archscale.experiments.maxlr import train_grid
    from nni_archscale.torch_layer.calibrate import log2_grid
    from nni_archscale.formats import from_paper_code

    g = torch.Generator().manual_seed(0)
    n = 512 if quick else 3000
    x = torch.randn(n, 196, generator=g)
    y = (x[:, :10].argmax(1)).long()
    spec = CellNetSpec(from_paper_code("2_12_112_1112"), 196, width, 10)
    rates = log2_grid(2.0**-4, 2.0**(7 / 4), 2)
    out = {}
    for name, device in (("cpu", torch.device("cpu")), ("cuda", dev)):
        t0 = time.perf_counter()
        res = train_grid(spec, layer_variances(spec, "exact"), x.to(device), y.to(device), rates, [0, 1], "sgd", 32)
        if device.type == "cuda":
            torch.cuda.synchronize()
        out[name] = (res, time.perf_counter() - t0)
    (cpu, t_cpu), (gpu, t_gpu) = out["cpu"], out["cuda"]
    import numpy as np

    cpu_ok, gpu_ok = np.isfinite(cpu.losses), np.isfinite(gpu.losses)
    finite = cpu_ok & gpu_ok
    diff = float(np.max(np.abs(cpu.losses[finite] - gpu.losses[finite]))) if finite.any() else float("nan")
    return {"max_abs_loss_diff": diff, "same_divergence": bool((cpu_ok == gpu_ok).all()),
            "cpu_best_rates": cpu.best_rates, "cuda_best_rates": gpu.best_rates, "cpu_s": round(t_cpu, 2),
            "cuda_s": round(t_gpu, 2)}


def main(argv=None) -> int:
    args = parse_args(argv)
    dev = cuda_device(args.device)
    if dev is None:
        return 0
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch

    from common import print_table

    name = torch.cuda.get_device_name(dev)
    print(f"gpu_check: {name}; torch {torch.__version__}; NAS-Bench-201 C={args.width} N={args.cells}, "
          f"batch {args.batch_size}, 3x32x32 synthetic data on the device")
    rows, hook_ms = measure_candidates(args, dev)
    table = []
    for ci in sorted({r["candidate"] for r in rows}):
        rs = {(r["hook"], r["variant"]): r["images_per_s"] for r in rows if r["candidate"] == ci}
        arch = next(r["arch"] for r in rows if r["candidate"] == ci)
        off32, on32 = rs[(False, "fp32")], rs[(True, "fp32")]
        offbf, onbf = rs[(False, "bf16+channels_last")], rs[(True, "bf16+channels_last")]
        table.append([ci, arch, off32, on32, on32 / off32, offbf, onbf, onbf / offbf, onbf / on32])
    print_table("training throughput, images/s (hook on/off measured side by side; ratio on/off ~ 1 expected)",
                ["cand", "cell ops (0_1|0_2|1_2|0_3|1_3|2_3)", "fp32 off", "fp32 on", "on/off", "bf16cl off",
                 "bf16cl on", "on/off", "bf16cl/fp32"], table)
    mean_ips = sum(r["images_per_s"] for r in rows if r["hook"] and r["variant"] != "fp32") / max(1, len(table))
    epoch_s = 50_000 / mean_ips if mean_ips else float("nan")
    hook_mean = sum(hook_ms) / len(hook_ms) if hook_ms else float("nan")
    print_table("hook cost per candidate", ["hook ms (mean)", "hook ms (max)", "CIFAR-10 epoch s (bf16cl, hook on)",
                                            "hook / epoch"],
                [[hook_mean, max(hook_ms) if hook_ms else float("nan"), epoch_s, hook_mean / 1e3 / epoch_s]])
    figures = {"device": name, "torch": torch.__version__, "width": args.width, "cells": args.cells,
               "batch_size": args.batch_size, "throughput": rows, "hook_ms": hook_ms,
               "cifar10_epoch_s_bf16cl": epoch_s}
    grid = grid_check(dev, quick=args.quick)
    figures["maxlr_grid"] = grid
    print_table("maximal-rate grid (lr-prediction), CPU vs CUDA on the same data and seeds",
                ["max |loss diff|", "same divergence", "CPU best rates", "CUDA best rates", "CPU s", "CUDA s"],
                [[grid["max_abs_loss_diff"], grid["same_divergence"], grid["cpu_best_rates"],
                  grid["cuda_best_rates"], grid["cpu_s"], grid["cuda_s"]]])
    if not args.no_search:
        search = time_search(args, dev)
        figures["search"] = search
        print_table(f"{search['trials']}-candidate search (sequential engine, {search['dataset']}, "
                    f"{search['epochs']} epoch(s) each, fp32 trainer)",
                    ["wall s", "search s", "per candidate s", "statuses", "best acc"],
                    [[search["wall_s"], search["search_seconds"], search["wall_s"] / search["trials"],
                      json.dumps(search["statuses"]), search["best_accuracy"]]])
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"gpu_check: figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
