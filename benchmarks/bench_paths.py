"""Path statistics: dynamic programming vs enumeration as graphs grow, a 10,000-node random DAG, and
`inspect` (rule + explanation) over all 15,625 NAS-Bench-201 cells. Run: python benchmarks/bench_paths.py"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import best_time, print_table  # noqa: E402

from nni_archscale import ArchGraph, Edge, EdgeKind, NoPathError, from_nb201, path_statistics, scale  # noqa: E402
from nni_archscale.rules.explain import to_record  # noqa: E402
from nni_archscale.core.formats import nb201_cells  # noqa: E402
from nni_archscale.core.paths import enumerated_moments  # noqa: E402


def dense_dag(n: int, seed: int = 0) -> ArchGraph:
    """Every pair j < i joined by a random skip or parameterised edge: 2^(n-2) input-output paths."""
    rng = random.Random(seed)
    kinds = (EdgeKind.SKIP, EdgeKind.PARAM)
    return ArchGraph(n, [Edge(j, i, rng.choice(kinds)) for i in range(1, n) for j in range(i)])


def random_dag(n: int, fan_in: int = 3, window: int = 8, seed: int = 0) -> ArchGraph:
    """Each node draws ``fan_in`` sources among the ``window`` nodes before it (the paths explode)."""
    rng = random.Random(seed)
    kinds = (EdgeKind.SKIP, EdgeKind.POOL, EdgeKind.PARAM, EdgeKind.PARAM)
    edges = []
    for i in range(1, n):
        for j in rng.sample(range(max(0, i - window), i), min(i, fan_in)):
            edges.append(Edge(j, i, rng.choice(kinds), rng.choice((1, 3))))
    return ArchGraph(n, edges)


def run(quick: bool = False) -> list[tuple[str, float]]:
    """Print the tables; return (name, ratio or seconds) rows for the suite summary."""
    summary = []
    rows = []
    sizes = (6, 10, 14) if quick else (6, 10, 14, 17, 19)
    for n in sizes:
        g = dense_dag(n)
        assert path_statistics(g).output == enumerated_moments(g)
        t_dp = best_time(lambda: path_statistics(g))
        t_en = best_time(lambda: enumerated_moments(g), repeat=1)
        rows.append((n, path_statistics(g).output[0], t_dp * 1e3, t_en * 1e3, t_en / t_dp))
    print_table("dynamic programming vs enumeration (dense DAGs)",
                ("nodes", "paths", "DP ms", "enumeration ms", "speed-up"), rows)
    summary.append((f"paths: DP speed-up at {sizes[-1]} nodes", rows[-1][-1]))

    big = random_dag(10_000)
    t0 = time.perf_counter()
    stats = path_statistics(big)
    t_big = time.perf_counter() - t0
    digits = len(str(stats.output[0]))
    print_table("10,000-node random DAG (3 in-edges per node from the 8 before it)", ("edges", "paths (digits)", "DP seconds"),
                [(len(big.edges), digits, t_big)])
    summary.append(("paths: 10,000-node DAG, seconds", t_big))

    cells = list(nb201_cells())
    if quick:
        cells = cells[::10]
    t0 = time.perf_counter()
    refused = 0
    for s in cells:
        try:
            to_record(scale(from_nb201(s), 0.46, "paper", "nb201-cell"))
        except NoPathError:
            refused += 1
    t_all = time.perf_counter() - t0
    print_table("inspect every NAS-Bench-201 cell (parse, rule, full JSON record)",
                ("cells", "refused (no path)", "seconds", "ms per cell"),
                [(len(cells), refused, t_all, 1e3 * t_all / len(cells))])
    summary.append((f"inspect {len(cells)} NB201 cells, seconds", t_all))
    return summary


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    run(ap.parse_args().quick)
