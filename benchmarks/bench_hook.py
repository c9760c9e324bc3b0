"""Cost of the hook: its time per candidate as a fraction of one training epoch of that candidate (target < 1%),
and training throughput with the hook against without it (target ratio >= 0.99), measured side by side.

    python benchmarks/bench_hook.py [--candidates 6] [--width 8] [--cells 1] [--dataset digits] [--epochs 3]
                                    [--threads 1] [--batch-size 128]

Three copies of every candidate train in lock-step on the same batches:

* ``hook``: re-initialised by the rule, the rule's param groups, optimizer and scheduler (``Prepared``);
* ``plain``: the candidate as NNI built it (PyTorch default init), one param group at the same rate, the same
  optimizer and scheduler kind: what training would cost without the hook;
* ``plain'``: a second untouched copy, trained exactly like ``plain``. ``plain / plain'`` is an A/A control:
  two identical workloads, so its distance from 1 is the measurement's noise floor on this machine.

Each step of each copy is timed twice: wall clock, and CPU time of the calling thread (``time.thread_time``).
With one intra-op thread (``--threads 1``, the default) the thread's CPU time holds all of the step's work and
is not inflated when other processes take the cores, so it is the robust figure on a shared machine; wall time
is printed beside it. The copies' order rotates every step; the ratio is the median step time of ``plain``
over that of ``hook`` (a throughput ratio, higher is faster with the hook). The first ``--warmup`` steps of
each copy are not counted.

Denormal floats: the benchmark counts subnormal values in every copy's weights, gradients and optimizer state
after training (a rule's small init could produce them, and they slow whichever copy has them on CPU); it keeps
the CPU's default handling unless ``--flush-denormal`` is given.
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import statistics
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402

from nni_archscale.errors import NoPathError  # noqa: E402
from nni_archscale.nni_glue.adapters import prepare_candidate  # noqa: E402
from nni_archscale.nni_glue.calibration import build_nb201  # noqa: E402
from nni_archscale.torch_layer.data import load_dataset  # noqa: E402
from nni_archscale.torch_layer.hook import HookConfig  # noqa: E402
from nni_archscale.torch_layer.param_groups import build_param_groups, make_optimizer, make_scheduler  # noqa: E402
from nni_archscale.torch_layer.train import pick_device  # noqa: E402

OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
KEYS = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]


def subnormals(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Number of subnormal (denormal) floats in the weights, gradients and optimizer state."""
    tiny = torch.finfo(torch.float32).tiny
    tensors = [p for p in model.parameters()] + [p.grad for p in model.parameters() if p.grad is not None]
    for state in optimizer.state.values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return sum(int(((t != 0) & (t.abs() < tiny)).sum()) for t in tensors if t.dtype == torch.float32)


class Copy:
    def __init__(self, name, model, optimizer, scheduler):
        self.name, self.model, self.opt, self.sched = name, model, optimizer, scheduler
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def step(self, x, y, record: bool) -> None:
        w0, c0 = time.perf_counter(), time.thread_time()
        loss = torch.nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        float(loss)  # the training loop reads every loss (divergence check); so do we
        if record:
            self.wall.append(time.perf_counter() - w0)
            self.cpu.append(time.thread_time() - c0)


def measure(base, sample, cfg, data, device, args):
    """Hook cost (median of 5 preparations of fresh copies) and the three copies' step times."""
    costs = []
    for _ in range(5):
        m = copy.deepcopy(base)
        t0 = time.perf_counter()
        prepare_candidate(m, cfg, sample=sample)
        costs.append(time.perf_counter() - t0)
    hook_s = statistics.median(costs)

    n = len(data.train)
    steps = args.epochs * math.ceil(n / args.batch_size)
    mw = copy.deepcopy(base)
    prepared = prepare_candidate(mw, cfg, sample=sample)
    copies = []
    mw.to(device)
    ow = prepared.make_optimizer()
    copies.append(Copy("hook", mw, ow, prepared.make_scheduler(ow, steps)))
    for name in ("plain", "plain'"):
        m = copy.deepcopy(base).to(device)
        o = make_optimizer(cfg.optimizer, build_param_groups(m, prepared.learning_rate, weight_decay=cfg.weight_decay),
                           cfg.momentum, cfg.nesterov)
        copies.append(Copy(name, m, o, make_scheduler(o, cfg.scheduler, steps)))
    gen = torch.Generator().manual_seed(args.seed)
    k = 0
    for _ in range(args.epochs):
        perm = torch.randperm(n, generator=gen).to(device)
        for start in range(0, n, args.batch_size):
            x, y = data.train.batch(perm[start:start + args.batch_size])
            order = copies[k % 3:] + copies[:k % 3]
            for c in order:
                c.step(x, y, record=k >= args.warmup)
            k += 1
    return hook_s, prepared, copies


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=3, help="epochs each copy trains (default 3)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=3, help="steps of each copy not counted (default 3)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (default 1: on a shared machine, more threads than free cores make "
                         "every step wait on the slowest thread and bury the comparison in noise)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--base-lr", type=float, default=0.5)
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adam", "adamw"))
    ap.add_argument("--per-edge", action="store_true", help="per-edge learning rates (one param group per rate)")
    ap.add_argument("--flush-denormal", action="store_true", help="flush denormal floats to zero on CPU")
    return ap


def run(quick: bool = False) -> list[tuple[str, float]]:
    """Entry point for ``benchmarks/run_all.py`` (``quick``: 3 candidates, 1 epoch on 512 images)."""
    argv = ["--candidates", "3", "--epochs", "1", "--limit", "512"] if quick else []
    return measure_all(parser().parse_args(argv))


def main() -> None:
    measure_all(parser().parse_args())


def measure_all(args: argparse.Namespace) -> list[tuple[str, float]]:
    """Print the per-candidate table and the summary; return the headline figures."""
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)

    device = pick_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, args.limit, args.seed).to(device)
    cfg = HookConfig(base_lr=args.base_lr, optimizer=args.optimizer, weight_decay=5e-4, scheduler="cosine",
                     per_edge=args.per_edge)
    print(f"{data.describe()}; NB201 C={args.width} N={args.cells}; device {device}; torch threads "
          f"{torch.get_num_threads()}; {args.optimizer}, batch {args.batch_size}, {args.epochs} epoch(s) per copy; "
          f"flush denormals {'on' if args.flush_denormal else 'off'}")
    head = (f"{'candidate':<46} {'grp':>3} {'hook ms':>7} {'epoch s':>7} {'fraction':>8} "
            f"{'cpu ratio':>9} {'A/A cpu':>7} {'wall ratio':>10} {'A/A wall':>8} {'subnormals h/p':>14}")
    print(head)
    rng = random.Random(args.seed)
    # the process's first preparation pays one-off costs (lazy imports, caches): timed apart, not in the medians
    warm = {k: "conv_3x3" for k in KEYS}
    t0 = time.perf_counter()
    prepare_candidate(build_nb201(args.width, args.cells, data.num_classes, warm), cfg, sample=warm)
    print(f"first preparation in this process (one-off): {(time.perf_counter() - t0) * 1e3:.2f} ms")
    rows = []
    while len(rows) < args.candidates:
        sample = {k: rng.choice(OPS) for k in KEYS}
        base = build_nb201(args.width, args.cells, data.num_classes, sample)
        try:
            hook_s, prepared, (h, p, a) = measure(base, sample, cfg, data, device, args)
        except NoPathError:
            continue
        med = {c.name: (statistics.median(c.cpu), statistics.median(c.wall)) for c in (h, p, a)}
        epoch_s = med["plain"][1] * math.ceil(len(data.train) / args.batch_size)
        row = {
            "fraction": hook_s / epoch_s,
            "cpu": med["plain"][0] / med["hook"][0], "aa_cpu": med["plain"][0] / med["plain'"][0],
            "wall": med["plain"][1] / med["hook"][1], "aa_wall": med["plain"][1] / med["plain'"][1],
        }
        rows.append(row)
        sub = f"{subnormals(h.model, h.opt)}/{subnormals(p.model, p.opt)}"
        arch = prepared.graph.to_text()[:46]
        print(f"{arch:<46} {len(prepared.groups):>3} {hook_s * 1e3:7.2f} {epoch_s:7.3f} {row['fraction']:8.3%} "
              f"{row['cpu']:9.3f} {row['aa_cpu']:7.3f} {row['wall']:10.3f} {row['aa_wall']:8.3f} {sub:>14}",
              flush=True)

    def stat(key):
        vals = [r[key] for r in rows]
        gmean = math.exp(statistics.fmean(math.log(v) for v in vals))
        return f"geometric mean {gmean:.3f}, median {statistics.median(vals):.3f}, range {min(vals):.3f}-{max(vals):.3f}"

    print(f"\nhook cost per candidate / one epoch: median {statistics.median(r['fraction'] for r in rows):.3%}, "
          f"max {max(r['fraction'] for r in rows):.3%} (target < 1%)")
    print(f"throughput with / without hook, thread CPU time: {stat('cpu')} (target >= 0.99)")
    print(f"   A/A control (two untouched copies), CPU time: {stat('aa_cpu')}")
    print(f"throughput with / without hook, wall clock:      {stat('wall')}")
    print(f"   A/A control, wall clock:                      {stat('aa_wall')}")

    def gmean(key):
        return math.exp(statistics.fmean(math.log(r[key]) for r in rows))

    return [("hook: cost per candidate / one epoch (median)", statistics.median(r["fraction"] for r in rows)),
            ("hook: throughput with / without, CPU time", gmean("cpu")),
            ("hook: A/A control, CPU time", gmean("aa_cpu")),
            ("hook: throughput with / without, wall clock", gmean("wall"))]


if __name__ == "__main__":
    main()
