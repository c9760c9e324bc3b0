"""GPU check (issue 15): how fast one GPU trains NAS-Bench-201 candidates, measured so that the figures can be
trusted, within a time budget, written under --out.

    python benchmarks/gpu_check.py                    # the device run: C=16 N=5, ~7.5 min budget (--budget-s)
    python benchmarks/gpu_check.py --dry-run          # every phase on the CPU at tiny sizes (what CI tests)
    python benchmarks/gpu_check.py --quick            # N=1, fewer rounds, a 5-candidate search

Phases, in order (each writes its figures to OUT/gpu_check.json and OUT/gpu_check.md as soon as it is done, so a
run stopped by its time limit still leaves what it measured):

1. GFLOP per training image (forward + backward, torch's FlopCounterMode) of the all-conv_3x3 candidate.
2. Training steps of that candidate in several variants, INTERLEAVED: every round times one block of steps of
   each variant in turn (the order rotates each round), repeated until the phase's share of the budget is used.
   Variants: eager fp32 batch 256 (the trainer before issue 15), eager bf16 autocast + channels_last batch 1024
   twice (two separate models: the A/A pair, whose ratio says how far two identical runs differ, target
   1.00 +- 0.03), the same with the hook off (PyTorch's default init, one learning rate: the hook on/off ratio),
   and ``torch.compile`` bf16 + channels_last batch 1024 (the compile time is reported apart). Each variant's
   median images/s over the rounds, its ratio to the best variant, TFLOP/s, fraction of the card's bf16 peak
   and the time a 200-epoch CIFAR-10 run (50,000 training images) would take at that speed.
3. Concurrency: K (1, 2, 4) independent trainer processes sharing the GPU (the fast path's step, eager, batch
   256: what several ``archscale search --concurrency K`` trials do), started together behind a barrier and
   timed over the same window: aggregate images/s against K = 1.
4. The new fast path end to end (``train_classifier(..., speed=TrainSpeed(augment=True, compile=True))``):
   device-resident synthetic CIFAR-size data, crop + flip augmentation on the device, evaluation each epoch;
   compile overhead (first epoch minus a steady one), steady images/s, the 200-epoch estimate.
5. If the budget allows: the hook's cost per candidate, the CPU-vs-CUDA maximal-rate grid, a 20-candidate search.

With no CUDA device (and no --dry-run) it prints why and exits 0.

Peak: NVIDIA's H200 datasheet (nvidia.com/en-us/data-center/h200) lists BF16 Tensor Core 1,979 TFLOPS for the
SXM card and 1,671 for the NVL card, both "with sparsity": dense peaks 989.4 and 835.5 TFLOPS, the figures used
here (--peak-tflops overrides).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

OPS = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")
EDGES = ("cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3")
ALL_CONV3 = {e: "conv_3x3" for e in EDGES}
CIFAR_TRAIN, CIFAR_EPOCHS = 50_000, 200
#: dense bf16 tensor-core peaks, TFLOP/s (datasheet figures "with sparsity" halved); most specific name first
PEAK_BF16_TFLOPS = (("H200 NVL", 835.5), ("H200", 989.4), ("H100 NVL", 835.5), ("H100 PCIe", 756.0),
                    ("H100", 989.4), ("A100", 312.0))
ROOT = Path(__file__).resolve().parents[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=16, help="stem channels C (NAS-Bench-201: 16)")
    p.add_argument("--cells", type=int, default=5, help="cells per stage N (NAS-Bench-201: 5)")
    p.add_argument("--batch-size", type=int, default=256, help="the plain trainer's batch (and the concurrency "
                   "workers' and the search's)")
    p.add_argument("--big-batch", type=int, default=1024, help="the bf16 / compiled variants' batch")
    p.add_argument("--candidates", type=int, default=4, help="random candidates whose hook cost is timed")
    p.add_argument("--steps", type=int, default=0, help="steps per timed block (0: sized to --block-s)")
    p.add_argument("--block-s", type=float, default=0.5, help="seconds per timed block of one variant")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps first (cudnn autotuning, caches)")
    p.add_argument("--min-rounds", type=int, default=4)
    p.add_argument("--max-rounds", type=int, default=30)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant and compile in e2e")
    p.add_argument("--e2e-epochs", type=int, default=4, help="epochs of the end-to-end fast path (first compiles)")
    p.add_argument("--concurrency", default="1,2,4", help="numbers of trainer processes sharing the GPU")
    p.add_argument("--concurrency-seconds", type=float, default=10.0, help="timed window of each K")
    p.add_argument("--search-trials", type=int, default=20)
    p.add_argument("--search-epochs", type=int, default=1)
    p.add_argument("--data-dir", default=None, help="CIFAR-10 directory for the search (default: digits)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget-s", type=float, default=450.0, help="total wall-time budget of the run, seconds")
    p.add_argument("--peak-tflops", type=float, default=None, help="the card's dense bf16 peak (default: by name)")
    p.add_argument("--out", default=None, help="output directory (default reports/gpu/<date>-<card>/)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--quick", action="store_true", help="N=1, 2-minute budget, 5-candidate search")
    p.add_argument("--dry-run", action="store_true", help="every phase on the CPU at tiny sizes (tests)")
    p.add_argument("--no-search", action="store_true", help="skip the search timing")
    p.add_argument("--no-grid", action="store_true", help="skip the CPU-vs-CUDA grid check")
    # a concurrency worker (started by phase 3): trains until its window closes, prints one JSON line
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--worker-seconds", type=float, default=10.0, help=argparse.SUPPRESS)
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.cells, args.search_trials, args.budget_s = 1, 5, min(args.budget_s, 150.0)
        args.e2e_epochs, args.concurrency_seconds = 3, 6.0
    if args.dry_run:
        args.device, args.width, args.cells = "cpu", 4, 1
        args.batch_size, args.big_batch, args.warmup, args.steps = 8, 16, 1, 2
        args.min_rounds, args.max_rounds, args.e2e_epochs = 2, 2, 2
        args.concurrency, args.concurrency_seconds, args.candidates = "1,2", 1.0, 1
        args.search_trials, args.no_search, args.no_grid = 2, True, True
        args.budget_s = min(args.budget_s, 120.0)
    return args


def cuda_device(requested: str):
    """The CUDA device to use, or None (with the reason printed) when there is none."""
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device is available (torch.cuda.is_available() is False); nothing to measure. "
              "Run this script in a session that has a GPU (or --dry-run for the CPU rehearsal).")
        return None
    dev = torch.device(requested)
    if dev.type != "cuda":
        print(f"gpu_check: --device {requested!r} is not a CUDA device; nothing to measure.")
        return None
    return dev


def random_samples(k: int, seed: int) -> list[dict]:
    """``k`` distinct NAS-Bench-201 samples, each with an input-output path through at least one conv."""
    from nni_archscale.nni_glue.adapters import graph_from_nb201_sample
    from nni_archscale.core.paths import path_statistics

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


# --------------------------------------------------------------------------- helpers
class Clock:
    """The run's budget: phases get deadlines as fractions of it."""

    def __init__(self, budget_s: float):
        self.t0, self.budget = time.perf_counter(), budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def left(self) -> float:
        return self.budget - self.elapsed()


def sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def peak_tflops(name: str, override: float | None) -> tuple[float | None, str]:
    if override:
        return override, "--peak-tflops"
    for key, value in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return value, f"NVIDIA datasheet, {key} BF16 dense (sparsity figure / 2)"
    return None, "unknown card (pass --peak-tflops)"


def card_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower().replace("nvidia", "")).strip("-") or "card"


def build(args, sample: dict, hook: bool, seed: int):
    """The candidate at C x N, on the CPU: (model, optimizer factory input) with the hook's init and groups, or
    PyTorch's default init and one rate; returns (model, groups, hook_ms)."""
    import torch

    from nni_archscale.nni_glue.adapters import prepare_candidate
    from nni_archscale.nni_glue.calibration import build_nb201
    from nni_archscale.torch_layer.hook import HookConfig
    from nni_archscale.torch_layer.param_groups import build_param_groups

    torch.manual_seed(seed)
    model = build_nb201(args.width, args.cells, 10, sample)
    if not hook:
        return model, build_param_groups(model, 0.1, weight_decay=5e-4), None
    t0 = time.perf_counter()
    prepared = prepare_candidate(model, HookConfig(base_lr=0.1, init="paper"), sample=sample,
                                 adapter="nb201-sample", generator=torch.Generator().manual_seed(seed))
    return model, prepared.groups, (time.perf_counter() - t0) * 1e3


class Variant:
    """One way of running training steps of a model on device-resident batches (no loader, no host sync)."""

    def __init__(self, name, args, dev, batch, bf16, channels_last, compile_, hook=True, copy=0):
        import torch

        from nni_archscale.torch_layer.fast_train import TrainSpeed, prepare_fast
        from nni_archscale.torch_layer.param_groups import make_optimizer

        self.name, self.batch, self.bf16, self.dev, self.hook = name, batch, bf16, dev, hook
        model, groups, self.hook_ms = build(args, ALL_CONV3, hook, args.seed + copy)
        model.to(dev)
        self.opt = make_optimizer("sgd", groups)
        backend = "eager" if args.dry_run else "inductor"
        self.speed = TrainSpeed(bf16=bf16, channels_last=channels_last, compile=compile_, compile_backend=backend)
        self.model = model
        self.step_model, self.info = prepare_fast(model, self.opt, self.speed, dev, total_steps=10**9)
        g = torch.Generator(device="cpu").manual_seed(args.seed + 17 * copy)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.xs = [torch.randn(batch, 3, 32, 32, generator=g).to(dev).contiguous(memory_format=fmt) for _ in range(4)]
        self.ys = [torch.randint(0, 10, (batch,), generator=g).to(dev) for _ in range(4)]
        self.i = 0
        self.ips: list[float] = []
        self.warmup_s = 0.0

    def steps(self, k: int) -> None:
        import torch
        import torch.nn.functional as F

        for _ in range(k):
            x, y = self.xs[self.i % 4], self.ys[self.i % 4]
            self.i += 1
            with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.bf16):
                out = self.step_model(x)
            out = out[-1] if isinstance(out, tuple) else out
            loss = F.cross_entropy(out.float(), y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def timed(self, k: int) -> float:
        sync(self.dev)
        t0 = time.perf_counter()
        self.steps(k)
        sync(self.dev)
        return k * self.batch / (time.perf_counter() - t0)


def flops_per_image(args, dev) -> float:
    """Training FLOPs (forward + backward) per image of the all-conv_3x3 candidate, by FlopCounterMode."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    model, _, _ = build(args, ALL_CONV3, False, args.seed)
    model.to(dev)
    x = torch.randn(2, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (2,), device=dev)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() / 2


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# --------------------------------------------------------------------------- phase 2: interleaved variants
def interleaved(args, dev, clock: Clock, figures: dict, save) -> None:
    big, small = args.big_batch, args.batch_size
    specs = [("eager fp32 b%d" % small, small, False, False, False, True, 0),
             ("eager bf16+cl b%d (A)" % big, big, True, True, False, True, 1),
             ("eager bf16+cl b%d (A')" % big, big, True, True, False, True, 2),
             ("eager bf16+cl b%d hook off" % big, big, True, True, False, False, 1)]
    if not args.no_compile:
        specs.append(("compile bf16+cl b%d" % big, big, True, True, True, True, 3))
    variants = []
    for name, batch, bf16, cl, comp, hook, copy in specs:
        try:
            v = Variant(name, args, dev, batch, bf16, cl, comp, hook, copy)
            t0 = time.perf_counter()
            v.steps(args.warmup)  # compiles the compiled variant (its first call)
            sync(dev)
        except Exception as exc:  # noqa: BLE001 - a compile that fails is a finding, not the end of the run
            if not comp:
                raise
            figures["errors"].append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
            print(f"gpu_check: {name} failed ({type(exc).__name__}: {exc}); measured without it", flush=True)
            continue
        v.warmup_s = time.perf_counter() - t0
        variants.append(v)
        print(f"gpu_check: {name}: warm-up {args.warmup} steps in {v.warmup_s:.1f} s", flush=True)
    for v in variants:  # steps per block: about --block-s seconds of each
        if args.steps:
            v.k = args.steps
        else:
            v.k = max(2, min(400, round(args.block_s * v.timed(3) / v.batch)))
    deadline = clock.t0 + 0.40 * clock.budget
    rounds = 0
    aa, hook_ratio = [], []
    while rounds < args.max_rounds and (rounds < args.min_rounds or time.perf_counter() < deadline):
        order = variants[rounds % len(variants):] + variants[:rounds % len(variants)]
        got = {}
        for v in order:
            got[v.name] = v.timed(v.k)
            v.ips.append(got[v.name])
        a, a2, off = variants[1].name, variants[2].name, variants[3].name
        aa.append(got[a] / got[a2])
        hook_ratio.append(got[a] / got[off])
        rounds += 1
    rows = []
    best = max(median(v.ips) for v in variants)
    gflop = figures.get("gflop_per_image")
    peak = figures.get("peak_bf16_tflops")
    for v in variants:
        ips = median(v.ips)
        tflops = ips * gflop / 1e3 if gflop else None
        rows.append({"variant": v.name, "batch": v.batch, "hook": v.hook, "images_per_s": round(ips, 1),
                     "min": round(min(v.ips), 1), "max": round(max(v.ips), 1), "steps_per_block": v.k,
                     "ratio_to_best": round(ips / best, 3), "tflops": round(tflops, 2) if tflops else None,
                     "fraction_of_peak": round(tflops / peak, 4) if (tflops and peak) else None,
                     "cifar10_200_epochs_min": round(CIFAR_EPOCHS * CIFAR_TRAIN / ips / 60, 1),
                     "warmup_s": round(v.warmup_s, 1), "optimizer_kernel": v.info["optimizer_kernel"]})
    figures["variants"] = rows
    figures["rounds"] = rounds
    figures["aa_ratio"] = {"median": round(median(aa), 4), "min": round(min(aa), 4), "max": round(max(aa), 4),
                           "within_3pct": abs(median(aa) - 1) <= 0.03, "per_round": [round(r, 4) for r in aa]}
    figures["hook_on_off"] = {"median": round(median(hook_ratio), 4), "min": round(min(hook_ratio), 4),
                              "max": round(max(hook_ratio), 4), "per_round": [round(r, 4) for r in hook_ratio]}
    figures["hook_ms"] = [round(v.hook_ms, 3) for v in variants if v.hook_ms is not None]
    comp = [v for v in variants if v.info["compile"]]
    if comp:
        plain = median(variants[1].ips)
        fast = median(comp[0].ips)
        step_saving = big / plain - big / fast  # seconds per step saved by compiling
        figures["compile"] = {"warmup_s": round(comp[0].warmup_s, 1),
                              "breakeven_steps": round(comp[0].warmup_s / step_saving) if step_saving > 0 else None}
    save()
    for v in variants:
        del v.model, v.step_model, v.opt, v.xs, v.ys
    if dev.type == "cuda":
        import torch

        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- phase 4: end to end
class _Budget(Exception):
    pass


def end_to_end(args, dev, clock: Clock, figures: dict, save) -> None:
    import torch

    from nni_archscale.torch_layer.data import ArrayData
    from nni_archscale.torch_layer.fast_train import TrainSpeed
    from nni_archscale.torch_layer.param_groups import make_optimizer, make_scheduler
    from nni_archscale.torch_layer.train import train_classifier

    n_train, n_val = (CIFAR_TRAIN, 10_000) if not args.dry_run else (64, 32)
    g = torch.Generator().manual_seed(args.seed)
    mean, std = torch.full((3,), 120.0), torch.full((3,), 64.0)
    train = ArrayData(torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=g),
                      torch.randint(0, 10, (n_train,), generator=g), mean, std).to(dev)
    val = ArrayData(torch.randint(0, 256, (n_val, 3, 32, 32), dtype=torch.uint8, generator=g),
                    torch.randint(0, 10, (n_val,), generator=g), mean, std).to(dev)
    model, groups, _ = build(args, ALL_CONV3, True, args.seed)
    model.to(dev)
    opt = make_optimizer("sgd", groups)
    steps = args.e2e_epochs * -(-n_train // args.big_batch)
    sched = make_scheduler(opt, "cosine", steps)
    speed = TrainSpeed(augment=True, compile=not args.no_compile,
                       compile_backend="eager" if args.dry_run else "inductor")
    marks = [time.perf_counter()]
    deadline = clock.t0 + 0.90 * clock.budget

    def on_epoch(epoch, metrics):
        marks.append(time.perf_counter())
        if epoch >= 1 and time.perf_counter() > deadline:
            raise _Budget()

    try:
        res = train_classifier(model, train, val, opt, epochs=args.e2e_epochs, batch_size=args.big_batch,
                               scheduler=sched, seed=args.seed, num_classes=10, on_epoch=on_epoch, speed=speed)
        status = res.status
    except _Budget:
        status = "stopped (budget)"
    epochs = [b - a for a, b in zip(marks, marks[1:])]
    steady = median(epochs[1:]) if len(epochs) > 1 else float("nan")
    ips = n_train / steady if steady == steady else float("nan")
    first_extra = epochs[0] - steady if epochs and steady == steady else float("nan")
    per_cifar_epoch = CIFAR_TRAIN / ips if ips == ips else float("nan")
    figures["end_to_end"] = {
        "speed": speed.describe(dev, steps), "batch": args.big_batch, "status": status,
        "epoch_s": [round(e, 3) for e in epochs], "steady_epoch_s": round(steady, 3),
        "images_per_s": round(ips, 1), "compile_overhead_s": round(first_extra, 1),
        "cifar10_200_epochs_min": round((first_extra + CIFAR_EPOCHS * per_cifar_epoch) / 60, 1) if ips == ips
        else None,
        "note": f"end to end: {n_train:,} synthetic training images on the device, crop+flip there, evaluation "
                f"of {n_val:,} images each epoch; images/s = training images / epoch wall time"}
    rows = figures.get("variants") or []
    best = max([r["images_per_s"] for r in rows] + [ips if ips == ips else 0.0])
    if ips == ips:
        figures["end_to_end"]["ratio_to_best"] = round(ips / best, 3)
        for r in rows:
            r["ratio_to_best_incl_e2e"] = round(r["images_per_s"] / best, 3)
    save()
    del model, opt, train, val
    if dev.type == "cuda":
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- phase 3: concurrency
def _publish(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed): a polling worker never reads it half
    written."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def worker(args) -> int:
    """One trainer process of the concurrency phase: build, warm up, say ready; then for each round the parent
    opens (a file ``round-R`` holding K), train for the window if this worker's index is below K and write its
    count; stop at ``stop``. One warm pool of max(K) processes serves every K: one start-up, not one per K."""
    import torch

    sync_dir, index = Path(args.worker), args.worker_index
    dev = torch.device(args.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    v = Variant("worker", args, dev, args.batch_size, bf16=True, channels_last=True, compile_=False)
    v.steps(args.warmup)
    sync(dev)
    (sync_dir / f"ready-{index}").write_text(str(os.getpid()))
    rnd, t_wait = 0, time.perf_counter()
    while not (sync_dir / "stop").exists():
        go = sync_dir / f"round-{rnd}"
        if not go.exists():
            if time.perf_counter() - t_wait > 600:
                return 1
            time.sleep(0.005)
            continue
        k = int(go.read_text() or 0)
        if index < k:
            t0 = time.perf_counter()
            end = t0 + args.worker_seconds
            images = 0
            while time.perf_counter() < end:
                v.steps(5)
                sync(dev)
                images += 5 * v.batch
            wall = time.perf_counter() - t0
            tmp = sync_dir / f".result-{rnd}-{index}"
            tmp.write_text(json.dumps({"pid": os.getpid(), "images": images, "seconds": wall,
                                       "images_per_s": images / wall}))
            tmp.rename(sync_dir / f"result-{rnd}-{index}")
        rnd, t_wait = rnd + 1, time.perf_counter()
    return 0


def concurrency(args, dev, clock: Clock, figures: dict, save) -> None:
    ks = sorted({int(k) for k in str(args.concurrency).split(",") if k.strip()})
    rows = []
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env = {**os.environ, "PYTHONPATH": path}
    if dev.type == "cpu":
        env["OMP_NUM_THREADS"] = "1"
    deadline = clock.t0 + 0.66 * clock.budget
    with tempfile.TemporaryDirectory(prefix="gpu-check-conc-") as tmp:
        sync_dir = Path(tmp)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", tmp, "--worker-seconds",
               str(args.concurrency_seconds), "--device", str(dev), "--width", str(args.width),
               "--cells", str(args.cells), "--batch-size", str(args.batch_size), "--warmup", str(args.warmup),
               "--seed", str(args.seed)] + (["--dry-run"] if args.dry_run else [])
        t0 = time.perf_counter()
        procs = [subprocess.Popen(cmd + ["--worker-index", str(i)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=env) for i in range(max(ks))]
        try:
            while len(list(sync_dir.glob("ready-*"))) < len(procs):
                if any(p.poll() is not None for p in procs) or time.perf_counter() - t0 > 300:
                    raise RuntimeError("a concurrency worker did not start: " + _worker_errors(procs))
                time.sleep(0.02)
            startup = time.perf_counter() - t0
            print(f"gpu_check: {len(procs)} trainer processes ready in {startup:.1f} s", flush=True)
            for rnd, k in enumerate(ks):
                if time.perf_counter() + args.concurrency_seconds + 5 > deadline and rows:
                    rows.append({"k": k, "skipped": "budget"})
                    _publish(sync_dir / f"round-{rnd}", "0")
                    continue
                _publish(sync_dir / f"round-{rnd}", str(k))
                t_round = time.perf_counter()
                while len(list(sync_dir.glob(f"result-{rnd}-*"))) < k:
                    if any(p.poll() is not None for p in procs) or \
                            time.perf_counter() - t_round > args.concurrency_seconds + 120:
                        raise RuntimeError(f"a concurrency worker failed in round K={k}: " + _worker_errors(procs))
                    time.sleep(0.02)
                outs = [json.loads(f.read_text()) for f in sorted(sync_dir.glob(f"result-{rnd}-*"))]
                agg = sum(o["images_per_s"] for o in outs)
                rows.append({"k": k, "aggregate_images_per_s": round(agg, 1),
                             "per_process": [round(o["images_per_s"], 1) for o in outs]})
                print(f"gpu_check: concurrency K={k}: {agg:,.0f} images/s in all", flush=True)
        finally:
            _publish(sync_dir / "stop", "")
            for p in procs:
                try:
                    p.communicate(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
    base = next((r["aggregate_images_per_s"] for r in rows if r.get("k") == 1 and "aggregate_images_per_s" in r),
                None)
    for r in rows:
        if base and "aggregate_images_per_s" in r:
            r["vs_k1"] = round(r["aggregate_images_per_s"] / base, 3)
    measured = [r for r in rows if "aggregate_images_per_s" in r]
    best = max(measured, key=lambda r: r["aggregate_images_per_s"]) if measured else None
    figures["concurrency"] = {"batch": args.batch_size, "variant": "fast path eager bf16+channels_last, fused SGD",
                              "window_s": args.concurrency_seconds, "startup_s": round(startup, 1), "rows": rows,
                              "best_k": best["k"] if best else None}
    save()


def _worker_errors(procs) -> str:
    msgs = []
    for p in procs:
        if p.poll() is not None:
            err = p.stderr.read() if p.stderr else ""
            msgs.append(f"exit {p.returncode}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    return "; ".join(msgs) or "timed out"


# --------------------------------------------------------------------------- phase 5: extras
def hook_cost(args, figures: dict, save) -> None:
    ms = []
    for i, sample in enumerate(random_samples(args.candidates, args.seed)):
        _, _, t = build(args, sample, True, args.seed + i)
        ms.append(round(t, 3))
    figures["hook_ms"] = figures.get("hook_ms", []) + ms
    save()


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

    from nni_archscale.experiments.maxlr import train_grid
    from nni_archscale.core.formats import from_paper_code
    from nni_archscale.core.networks import CellNetwork
    from nni_archscale.rules.first_step import cell_init
    from nni_archscale.torch_layer.rate_grid import log2_grid

    g = torch.Generator().manual_seed(0)
    n = 512 if quick else 3000
    x = torch.randn(n, 196, generator=g)
    y = (x[:, :10].argmax(1)).long()
    init = cell_init(CellNetwork(from_paper_code("2_12_112_1112"), 196, width, 10), "exact")
    rates = log2_grid(2.0**-4, 2.0**(7 / 4), 2)
    out = {}
    for name, device in (("cpu", torch.device("cpu")), ("cuda", dev)):
        t0 = time.perf_counter()
        res = train_grid(init, x.to(device), y.to(device), rates, [0, 1], "sgd", 32)
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


# --------------------------------------------------------------------------- output
def _fmt(x, digits=3):
    if x is None:
        return "-"
    if isinstance(x, float):
        if x != x:
            return "-"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}g}"
    return str(x)


def markdown(f: dict) -> str:
    lines = [f"# GPU check: {f.get('device')} ({f.get('date')})", "",
             f"torch {f.get('torch')}, CUDA {f.get('cuda')}; NAS-Bench-201 C={f.get('width')} N={f.get('cells')}, "
             f"all-conv_3x3 cell; synthetic 3x32x32 data on the device. Command: `{f.get('command')}`; "
             f"{_fmt(f.get('elapsed_s'))} s of a {_fmt(f.get('budget_s'))} s budget.", ""]
    if f.get("gflop_per_image") is not None:
        lines += [f"Training GFLOP per image (forward + backward, FlopCounterMode): **{f['gflop_per_image']:.3f}**; "
                  f"bf16 peak used: {_fmt(f.get('peak_bf16_tflops'))} TFLOP/s ({f.get('peak_source')}).", ""]
    if f.get("variants"):
        lines += [f"## Training throughput, interleaved ({f.get('rounds')} rounds, order rotated each round)", "",
                  "| variant | batch | images/s (median) | min..max | ratio to best | TFLOP/s | of bf16 peak "
                  "| 200-epoch CIFAR-10 |", "|---|---|---|---|---|---|---|---|"]
        for r in f["variants"]:
            frac = f"{100 * r['fraction_of_peak']:.2f}%" if r.get("fraction_of_peak") else "-"
            ratio = r.get("ratio_to_best_incl_e2e", r["ratio_to_best"])
            lines.append(f"| {r['variant']} | {r['batch']} | {_fmt(r['images_per_s'])} | {_fmt(r['min'])}.."
                         f"{_fmt(r['max'])} | {ratio:.3f} | {_fmt(r['tflops'])} | {frac} | "
                         f"{r['cifar10_200_epochs_min']} min |")
        e = f.get("end_to_end")
        if e and e.get("images_per_s") == e.get("images_per_s") and e.get("ratio_to_best") is not None:
            lines.append(f"| fast path end to end ({e['speed']}) | {e['batch']} | {_fmt(e['images_per_s'])} | - | "
                         f"{e['ratio_to_best']:.3f} | - | - | {e['cifar10_200_epochs_min']} min |")
        aa, ho = f["aa_ratio"], f["hook_on_off"]
        lines += ["", f"A/A (two identical bf16 models): median ratio **{aa['median']:.3f}** "
                      f"(rounds {aa['min']:.3f}..{aa['max']:.3f}); within 1.00 +- 0.03: {aa['within_3pct']}.",
                  f"Hook on/off (same interleaving): median **{ho['median']:.3f}** ({ho['min']:.3f}..{ho['max']:.3f}).",
                  ""]
        if f.get("compile"):
            c = f["compile"]
            lines += [f"torch.compile: first steps (compile) {c['warmup_s']} s; pays for itself after "
                      f"{_fmt(c['breakeven_steps'])} steps of batch {f.get('big_batch')}.", ""]
    if f.get("end_to_end"):
        e = f["end_to_end"]
        lines += ["## Fast path end to end", "", f"{e['speed']}, batch {e['batch']}, status {e['status']}: epochs "
                  f"{e['epoch_s']} s; steady {_fmt(e['images_per_s'])} images/s; first-epoch overhead (compile, "
                  f"autotuning) {_fmt(e['compile_overhead_s'])} s; a 200-epoch CIFAR-10 run: "
                  f"{_fmt(e['cifar10_200_epochs_min'])} min. ({e['note']})", ""]
    if f.get("concurrency"):
        c = f["concurrency"]
        lines += [f"## Trainer processes sharing the GPU ({c['variant']}, batch {c['batch']}, "
                  f"{c['window_s']} s window)", "", "| K | aggregate images/s | per process | vs K=1 |",
                  "|---|---|---|---|"]
        for r in c["rows"]:
            if "aggregate_images_per_s" in r:
                lines.append(f"| {r['k']} | {_fmt(r['aggregate_images_per_s'])} | "
                             f"{', '.join(_fmt(x) for x in r['per_process'])} | {_fmt(r.get('vs_k1'))} |")
            else:
                lines.append(f"| {r['k']} | {r.get('skipped') or r.get('error')} | - | - |")
        lines += ["", f"Best K: {c['best_k']}.", ""]
    if f.get("hook_ms"):
        ms = f["hook_ms"]
        lines += [f"Hook cost per candidate: mean {statistics.mean(ms):.1f} ms, max {max(ms):.1f} ms.", ""]
    if f.get("maxlr_grid"):
        g = f["maxlr_grid"]
        lines += [f"Maximal-rate grid CPU vs CUDA: max |loss diff| {_fmt(g['max_abs_loss_diff'])}, same divergence "
                  f"{g['same_divergence']}, best rates {g['cpu_best_rates']} / {g['cuda_best_rates']}.", ""]
    if f.get("search"):
        s = f["search"]
        lines += [f"Search: {s}", ""]
    if f.get("errors"):
        lines += ["Errors: " + "; ".join(f["errors"]), ""]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the checkout's nni_archscale, installed or not
    if args.worker:
        warnings.filterwarnings("ignore")
        return worker(args)
    if args.dry_run:
        import torch

        dev = torch.device("cpu")
        name = "dry run on the CPU"
    else:
        dev = cuda_device(args.device)
        if dev is None:
            return 0
        import torch

        name = torch.cuda.get_device_name(dev)
    warnings.filterwarnings("ignore")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    clock = Clock(args.budget_s)
    date = _dt.date.today().isoformat()
    out = Path(args.out) if args.out else ROOT / "reports" / "gpu" / f"{date}-{card_slug(name)}"
    out.mkdir(parents=True, exist_ok=True)
    peak, peak_src = peak_tflops(name, args.peak_tflops)
    figures = {"device": name, "date": date, "torch": torch.__version__, "cuda": torch.version.cuda,
               "width": args.width, "cells": args.cells, "batch_size": args.batch_size, "big_batch": args.big_batch,
               "budget_s": args.budget_s,
               "command": " ".join(["python", "benchmarks/gpu_check.py", *(argv or sys.argv[1:])]),
               "peak_bf16_tflops": peak, "peak_source": peak_src, "errors": []}

    def save():
        figures["elapsed_s"] = round(clock.elapsed(), 1)
        text = json.dumps(figures, indent=2, default=str) + "\n"
        (out / "gpu_check.json").write_text(text)
        (out / "gpu_check.md").write_text(markdown(figures))
        if args.json:
            Path(args.json).write_text(text)

    def phase(label, fn, *a):
        print(f"gpu_check: [{clock.elapsed():5.0f} s] {label}", flush=True)
        try:
            fn(*a)
        except Exception as exc:  # noqa: BLE001 - one failed phase must not lose the others' figures
            figures["errors"].append(f"{label}: {type(exc).__name__}: {str(exc)[:300]}")
            print(f"gpu_check: {label} failed: {type(exc).__name__}: {exc}", flush=True)
        save()

    print(f"gpu_check: {name}; torch {torch.__version__}; NB201 C={args.width} N={args.cells}; budget "
          f"{args.budget_s:.0f} s; writing {out}", flush=True)

    def gflop():
        figures["gflop_per_image"] = flops_per_image(args, dev) / 1e9

    phase("GFLOP per image", gflop)
    phase("interleaved variants", interleaved, args, dev, clock, figures, save)
    phase("concurrency", concurrency, args, dev, clock, figures, save)
    phase("fast path end to end", end_to_end, args, dev, clock, figures, save)
    if clock.left() > 10:
        phase("hook cost", hook_cost, args, figures, save)
    if not args.no_grid and clock.left() > 25:
        def grid():
            figures["maxlr_grid"] = grid_check(dev, quick=args.quick)
        phase("maximal-rate grid CPU vs CUDA", grid)
    if not args.no_search and clock.left() > 40:
        def search():
            figures["search"] = time_search(args, dev)
        phase("search timing", search)
    save()
    print(markdown(figures))
    print(f"gpu_check: figures written to {out}/gpu_check.json and gpu_check.md ({clock.elapsed():.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
