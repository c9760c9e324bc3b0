"""What a fairness run's grid costs: trainings per second of ``archscale fairness``'s engine (in this process, and
with 2 worker processes of one thread each) against training the same candidates one at a time the way
``archscale search`` trains them (``nni_glue.trial.run_candidate``), measured side by side in one run.

    python benchmarks/bench_fairness.py [--quick]

The same jobs (DAG-cell MLP candidates on MNIST, 2 epochs, batch 64, several rates and seeds) run three ways;
printed: trainings per second for each and the ratios. The engine's trainings are the search's (same hook, same
trainer), so the ratio is the overhead of how they are scheduled, not a different training.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import print_table  # noqa: E402


def _jobs(quick: bool):
    from nni_archscale.fairness.candidates import sample_dag_cells

    specs = sample_dag_cells(3 if quick else 6, seed=1)
    rates = [0.02, 0.04, 0.08] if quick else [0.01, 0.02, 0.04, 0.08]
    return specs, rates


def run(quick: bool = False) -> list[tuple[str, float]]:
    warnings.filterwarnings("ignore")
    import torch

    from nni_archscale.fairness.engine import FairnessOptions, Runner
    from nni_archscale.core.formats import from_paper_code
    from nni_archscale.nni_glue.trial import run_candidate
    from nni_archscale.torch_layer.dag_cell import DagCellMLP
    from nni_archscale.torch_layer.data import load_dataset
    from nni_archscale.torch_layer.hook import HookConfig

    specs, rates = _jobs(quick)
    seeds = 2
    limit = 300 if quick else 1000
    opts = FairnessOptions(space="dagcell", dataset="mnist", limit=limit, epochs=2, batch_size=64, seeds=seeds,
                           dag_width=64)
    jobs = [(s, "grid", r, k) for s in specs for r in rates for k in range(seeds)]
    rows, rates_per_s = [], {}
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        # one at a time, as archscale search trains a candidate (one record, one seed each)
        data = load_dataset("mnist", None, limit, 0)
        t0 = time.perf_counter()
        for i, (s, _, r, k) in enumerate(jobs):
            model = DagCellMLP(from_paper_code(s.code), int(data.train.x[0].numel()), 64, data.num_classes)
            cfg = {"out_dir": f"{tmp}/search{i}", "dataset": "mnist", "limit": limit, "epochs": 2, "batch_size": 64,
                   "seed": k, "device": "cpu",
                   "hook": HookConfig(base_lr=r, rate_rule="shared", batch_size=64).to_dict()}
            Path(cfg["out_dir"]).mkdir()
            run_candidate(copy.deepcopy(model), None, cfg)
        rates_per_s["search, one at a time"] = len(jobs) / (time.perf_counter() - t0)
        for workers in (1, 2):
            o = copy.deepcopy(opts)
            o.workers = workers
            runner = Runner(o, Path(tmp) / f"engine{workers}", progress=False)
            (Path(tmp) / f"engine{workers}").mkdir(exist_ok=True)
            t0 = time.perf_counter()
            runner.run(jobs)
            runner.close()
            rates_per_s[f"fairness engine, {workers} worker(s)"] = len(jobs) / (time.perf_counter() - t0)
    base = rates_per_s["search, one at a time"]
    for name, v in rates_per_s.items():
        rows.append((name, f"{v:.2f}", f"{v / base:.2f}x"))
    print_table(f"{len(jobs)} trainings (DAG-cell MLP, MNIST {limit} images, 2 epochs)",
                ("how", "trainings / s", "vs search"), rows)
    return [(f"{k} trainings/s", v) for k, v in rates_per_s.items()] + \
        [("engine with 2 workers vs search one at a time", rates_per_s["fairness engine, 2 worker(s)"] / base)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    run(ap.parse_args().quick)
