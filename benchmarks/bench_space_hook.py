"""Cost of the hook on NNI's model spaces, with each rate rule, as a fraction of one training epoch (issue 13:
the measured rule's forward/backward must stay within the hook's budget, < 1% of an epoch).

    python benchmarks/bench_space_hook.py [--spaces nb201,darts,mobilenetv3] [--samples 3] [--threads 1]

For every space and sample, measured side by side in one process (one intra-op thread, CPU time of the thread
so that other processes on the machine do not inflate it): the hook (`prepare_candidate`: graph extraction,
init, the rate rule) under each rate rule, and one training step of the candidate at batch 128 on digits.
Printed: the hook's time over one epoch of digits (11 steps of 128) and over one epoch of CIFAR-10 (391 steps,
the same per-step cost scaled by its images; CIFAR's 32x32 images cost more per step, so this over-states the
fraction), and the measured rule's own cost (the measured hook minus the shared hook) in training steps.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import print_table  # noqa: E402

DIGITS_STEPS, CIFAR_STEPS = 11, 391


def _cpu(fn) -> float:
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def measure(space: str, samples: int, repeat: int = 3) -> list[dict]:
    import torch
    import torch.nn.functional as F

    from nni_archscale.nni_glue.adapters import prepare_candidate
    from nni_archscale.nni_glue.calibration import measurement_batch, space_reference
    from nni_archscale.nni_glue.spaces import SampleRejected, sample_model
    from nni_archscale.torch_layer.data import load_dataset
    from nni_archscale.torch_layer.hook import HookConfig
    from nni_archscale.rules.names import CELL_RULE_NAMES
    from nni_archscale.torch_layer.rate_choice import RATE_RULES

    rules = [r for r in RATE_RULES if r not in CELL_RULE_NAMES]  # the DAG-cell rules apply to no hub space

    data = load_dataset("digits")
    batch = measurement_batch(data)
    x, y = data.train.batch(torch.arange(128))
    cfg = HookConfig(base_lr=0.1)
    reference = space_reference(space, data, cfg)
    rows, seed = [], 0
    while len(rows) < samples:
        seed += 1
        try:
            sample, model = sample_model(space, seed, data.num_classes, image_size=data.image_size)
        except SampleRejected:
            continue
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad()
            out = model(x)
            F.cross_entropy(out[0] if isinstance(out, tuple) else out, y).backward()
            opt.step()

        step()  # warm-up
        times: dict[str, list[float]] = {r: [] for r in rules}
        times["step"] = []
        try:
            for _ in range(repeat):  # interleaved: every rule and a training step in each round
                for rule in rules:
                    c = HookConfig(base_lr=0.1, rate_rule=rule)
                    times[rule].append(_cpu(lambda: prepare_candidate(model, c, sample=sample, batch=batch,
                                                                      reference=reference)))
                times["step"].append(_cpu(step))
        except Exception as exc:  # e.g. an NB201 cell without an input-output path
            print(f"  {space} seed {seed}: skipped ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append({"space": space, "seed": seed, **med})
    return rows


def run(quick: bool = False, spaces=("nb201", "darts", "mobilenetv3"), samples: int | None = None) -> list:
    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    samples = samples or (1 if quick else 3)
    table, headline = [], []
    for space in spaces:
        rows = measure(space, samples)
        step = statistics.median(r["step"] for r in rows)
        measured = statistics.median(r["measured"] for r in rows)
        shared = statistics.median(r["shared"] for r in rows)
        graph = statistics.median(r["graph"] for r in rows)
        table.append([space, len(rows), step * 1e3, graph * 1e3, shared * 1e3, measured * 1e3,
                      (measured - shared) / step, measured / (DIGITS_STEPS * step),
                      measured / (CIFAR_STEPS * step)])
        headline.append((f"{space}: measured hook / CIFAR-10 epoch", measured / (CIFAR_STEPS * step)))
    print_table("hook cost per candidate (CPU ms of one thread; medians over samples and 3 interleaved rounds)",
                ["space", "samples", "train step ms", "hook graph ms", "hook shared ms", "hook measured ms",
                 "measured rule / step", "measured hook / digits epoch", "measured hook / CIFAR-10 epoch"], table)
    return headline


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spaces", default="nb201,darts,mobilenetv3")
    ap.add_argument("--samples", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    for name, value in run(args.quick, tuple(s for s in args.spaces.split(",") if s), args.samples):
        print(f"{name}: {value:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
