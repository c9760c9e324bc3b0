"""Every benchmark in one run: each prints its own side-by-side tables, then one summary table of the headline
ratios and times. ``--quick`` keeps the whole run within about a minute.

    python benchmarks/run_all.py [--quick] [--only paths,hook,verify,startup]

A benchmark module exposes ``run(quick: bool) -> list[tuple[str, float]]`` (headline name, value).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import print_table  # noqa: E402

BENCHMARKS = {
    "paths": "bench_paths",  # DP vs enumeration; 10,000-node DAG; all NAS-Bench-201 cells
    "hook": "bench_hook",  # hook cost vs one epoch; throughput with vs without the hook
    "verify": "bench_verify",  # symbolic verification per cell, with vs without the canonical cache
    "startup": "bench_startup",  # `archscale --help` and `inspect` wall time vs `python -c pass` (goal < 0.5 s)
    "space-hook": "bench_space_hook",  # the hook on NNI spaces per rate rule vs one epoch (goal < 1%)
    "dag-cell-hook": "bench_dag_cell_hook",  # the hook on the paper's DAG-cell MLP per rule vs a training step
    "fairness": "bench_fairness",  # the fairness grid: engine trainings/s (1 and 2 workers) vs search one at a time
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: about a minute in all")
    ap.add_argument("--only", default=",".join(BENCHMARKS), help="comma list of " + ", ".join(BENCHMARKS))
    args = ap.parse_args()
    rows = []
    failed = []
    for name in [n.strip() for n in args.only.split(",") if n.strip()]:
        if name not in BENCHMARKS:
            ap.error(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        print(f"\n=== {name}")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(BENCHMARKS[name])
        except ImportError as exc:
            print(f"  skipped: {exc}")
            failed.append(name)
            continue
        if not hasattr(module, "run"):
            print(f"  skipped: {BENCHMARKS[name]}.py has no run(quick) entry point")
            failed.append(name)
            continue
        for headline, value in module.run(args.quick):
            rows.append((name, headline, value))
        rows.append((name, "benchmark wall time, seconds", time.perf_counter() - t0))
    print_table("summary", ("benchmark", "measure", "value"), rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
