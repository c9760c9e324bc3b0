"""Cost of the hook on the paper's DAG-cell MLP (issue 16: the DAG-cell defaults now reach the hook), against one
training step, with each rule that applies to it.

    python benchmarks/bench_dag_cell_hook.py [--quick] [--width 256]

For each cell, measured side by side in one process and interleaved (one intra-op thread; the CPU time of the
thread, so that other processes do not inflate it): the hook (``prepare_candidate``: fx graph, recognition of the
DAG cell, init, the rule) under ``graph`` (eq. 8), ``shared`` (one rate: no rule work), ``readout-limited-sgd``
(the SGD default: two first-step kernels) and ``feature`` (Adam's default for the paper's init), and one training
step at batch 128 on digits' 192 flattened features. Printed: each hook in training steps, and the default
rule's hook over one epoch of digits (11 steps) and of MNIST's 5,000 digits (40 steps).
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

CELLS = ("2_12_112_1112", "2_22_222_2222", "2_02_002_2000", "1_12_012_1212")
RULES = {"graph": "sgd", "shared": "sgd", "readout-limited-sgd": "sgd", "feature": "adam"}
DIGITS_STEPS, MNIST_STEPS = 11, 40


def _cpu(fn) -> float:
    t0 = time.thread_time()
    fn()
    return time.thread_time() - t0


def measure(code: str, width: int, repeat: int) -> dict:
    import torch
    import torch.nn.functional as F

    from nni_archscale.core.formats import from_paper_code
    from nni_archscale.nni_glue.adapters import prepare_candidate
    from nni_archscale.torch_layer.dag_cell import DagCellMLP
    from nni_archscale.torch_layer.hook import HookConfig

    torch.manual_seed(0)
    model = DagCellMLP(from_paper_code(code), 192, width, 10)
    x, y = torch.randn(128, 192), torch.randint(0, 10, (128,))
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up
    times: dict[str, list[float]] = {r: [] for r in (*RULES, "step")}
    for _ in range(repeat):  # interleaved: every rule and a training step in each round
        for rule, optimizer in RULES.items():
            cfg = HookConfig(base_lr=0.05, optimizer=optimizer, rate_rule=rule, batch_size=128)
            times[rule].append(_cpu(lambda: prepare_candidate(model, cfg, sample={}, adapter="fx")))
        times["step"].append(_cpu(step))
    return {k: statistics.median(v) for k, v in times.items()}


def run(quick: bool = False, width: int = 256) -> list:
    import logging

    import torch

    warnings.filterwarnings("ignore")
    logging.getLogger("nni_archscale").setLevel(logging.ERROR)  # the graph rule's guard notes on deep cells
    torch.set_num_threads(1)
    cells = CELLS[:2] if quick else CELLS
    rows, per_cell = [], []
    for code in cells:
        m = measure(code, width, 3 if quick else 5)
        per_cell.append(m)
        rows.append([code, m["step"] * 1e3, *(m[r] * 1e3 for r in RULES), m["readout-limited-sgd"] / m["step"],
                     m["readout-limited-sgd"] / (DIGITS_STEPS * m["step"]),
                     m["readout-limited-sgd"] / (MNIST_STEPS * m["step"])])
    print_table(f"DAG-cell MLP hook cost (width {width}, batch 128; CPU ms of one thread, medians of interleaved rounds)",
                ["cell", "train step ms", *(f"hook {r} ms" for r in RULES), "default hook / step",
                 "default hook / digits epoch", "default hook / MNIST epoch"], rows)
    ratio = statistics.median(m["readout-limited-sgd"] / m["step"] for m in per_cell)
    over_shared = statistics.median((m["readout-limited-sgd"] - m["shared"]) / m["step"] for m in per_cell)
    return [("readout-limited-sgd hook / training step", ratio),
            ("its rule work (hook minus the shared hook) / training step", over_shared)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--width", type=int, default=256)
    args = ap.parse_args()
    for name, value in run(args.quick, args.width):
        print(f"{name}: {value:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
