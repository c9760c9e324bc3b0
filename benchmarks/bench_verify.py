"""Benchmark of ``archscale verify``'s engine on the whole NAS-Bench-201 space: time per cell, and what the
canonical-form cache buys, measured side by side in one run.

Three passes over the 15,625 cells (parsed once, outside the timings; best of ``--repeat`` rounds):

1. no cache        - every cell verified on its own;
2. cache, cold     - one verification per isomorphism class (14,125 classes: isomorphic cells differ only by
                     swapping nodes 1 and 2 when the 1->2 edge is ``none``), plus the canonical labelling of
                     every cell and the mapping of node results back;
3. cache, warm     - the same cells again on the filled cache (a search that revisits candidates).

Run: ``python benchmarks/bench_verify.py [--limit N]``.
"""

from __future__ import annotations

import argparse
import time

from nni_archscale.core.formats import nb201_cells
from nni_archscale.core.formats import from_nb201
from symbolic.verify import Verifier


def timed(verifier: Verifier, graphs) -> tuple[float, int]:
    start = time.perf_counter()
    failures = sum(not verifier.verify(g).ok for g in graphs)
    return time.perf_counter() - start, failures


def measure(limit: int | None = None, repeat: int = 2) -> list[tuple[str, float]]:
    """Print the table; return the headline figures for ``run_all.py``."""
    cells = list(nb201_cells())[:limit]
    graphs = [from_nb201(c) for c in cells]
    Verifier().verify(graphs[0])  # derive the cached sympy roots once, outside the timings

    # no-cache and cold-cache passes alternate, best of `repeat`, so background load hits both alike
    t_plain = t_cold = t_warm = float("inf")
    for _ in range(repeat):
        plain = Verifier("paper", "nb201-cell", 0.46, use_cache=False)
        t, f_plain = timed(plain, graphs)
        t_plain = min(t_plain, t)
        cached = Verifier("paper", "nb201-cell", 0.46)
        t, f_cold = timed(cached, graphs)
        t_cold = min(t_cold, t)
        t, f_warm = timed(cached, graphs)
        t_warm = min(t_warm, t)

    n = len(graphs)
    print(f"NAS-Bench-201 cells: {n}, canonical classes: {cached.classes}, failures: {f_plain}/{f_cold}/{f_warm}")
    print(f"{'pass':<16} {'total s':>8} {'ms / cell':>10} {'speed-up':>9}")
    for name, t in (("no cache", t_plain), ("cache, cold", t_cold), ("cache, warm", t_warm)):
        print(f"{name:<16} {t:>8.2f} {1000 * t / n:>10.3f} {t_plain / t:>8.2f}x")
    return [(f"verify: ms per cell, no cache ({n} cells)", 1000 * t_plain / n),
            ("verify: speed-up of the cache, cold", t_plain / t_cold),
            ("verify: speed-up of the cache, warm", t_plain / t_warm)]


def run(quick: bool = False) -> list[tuple[str, float]]:
    """Entry point for ``benchmarks/run_all.py``: every cell, or the first 1,500 with ``quick``."""
    return measure(limit=1500 if quick else None, repeat=1 if quick else 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N cells")
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time of each pass is kept")
    args = parser.parse_args()
    measure(args.limit, args.repeat)


if __name__ == "__main__":
    main()
