"""Coordinate check across graphs: one SGD step at the rule's learning rate vs one fixed rate.

mup's coord check plots activation sizes across widths; this one plots, across architecture graphs of very
different depth and path count, how much the features feeding the readout move after one step:

    RMS_i (z_out,i after the step - before),   z_out the graph's output node (before the readout).

Setup (paper §3.3, App. B): width n, input x ~ N(0, I), target y = 1, MSE, one plain SGD step on the
hidden weights (the graph's parameterised edges; the readout stays fixed), hidden init from the ``paper``
init (``Var W = 2 / (d_in(target) n)``), mean-field readout ``N(0, 1/n^2)``. The rule's rate is
``eta = (sum_p L_p^3)^(-1/2)`` (eq. 8, base rate 1 on a one-layer graph); the fixed rate is the geometric mean
of the rule's rates over the graphs, so both runs use the same typical rate.

Families: chains (depth 1..48, one path), complete DAGs (every pair joined: 2^(m-2) paths of depths
1..m-1) and parallel branches (P paths of depth 2). Run ``python examples/coord_check.py`` to write
``out/examples/coord_check.png`` (``--output PATH`` elsewhere; the committed figure is
``examples/output/coord_check.png``) and print the spreads (max / min over graphs); the tests import :func:`run`
with smaller settings.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind
from nni_archscale.core.networks import chain
from nni_archscale.rules.paper import edge_init, learning_rate

#: the default plot: under the repository's ignored ``out/``, never over the committed examples/output figure
OUTPUT = Path(__file__).resolve().parents[1] / "out" / "examples" / "coord_check.png"


def complete_dag(m: int) -> ArchGraph:
    """``m`` nodes, a parameterised edge between every pair: 2^(m-2) input-output paths."""
    return ArchGraph(m, [Edge(j, i, EdgeKind.PARAM) for i in range(1, m) for j in range(i)])


def parallel_branches(p: int) -> ArchGraph:
    """Input -> ``p`` hidden nodes -> output, all parameterised: ``p`` paths of depth 2."""
    edges = [Edge(0, i, EdgeKind.PARAM) for i in range(1, p + 1)]
    edges += [Edge(i, p + 1, EdgeKind.PARAM) for i in range(1, p + 1)]
    return ArchGraph(p + 2, edges)


def families(depths=(1, 2, 4, 8, 16, 32, 48), sizes=(3, 4, 5, 6, 7, 8, 9), branches=(2, 4, 8, 16, 32)):
    out = {"chain": [(f"chain L={d}", chain(d)) for d in depths]}
    out["complete DAG"] = [(f"complete m={m}", complete_dag(m)) for m in sizes]
    if branches:
        out["parallel branches"] = [(f"parallel P={p}", parallel_branches(p)) for p in branches]
    return out


def feature_change(graph: ArchGraph, lr: float, width: int, seeds: int) -> float:
    """RMS change of the output node's features after one SGD step, averaged (in square) over seeds."""
    gains = {(i.edge.src, i.edge.dst): float(i.gain) for i in edge_init(graph, "paper")}
    total = 0.0
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        weights = {k: (torch.randn(width, width, generator=gen) * math.sqrt(c / width)).requires_grad_()
                   for k, c in gains.items()}
        readout = torch.randn(width, generator=gen) / width  # mean-field: Var = 1/n^2
        x = torch.randn(width, generator=gen)

        def forward():
            z = [x] + [None] * (graph.num_nodes - 1)
            for v in range(1, graph.num_nodes):
                acc = torch.zeros(width)
                for e in graph.in_edges[v]:
                    if e.kind is EdgeKind.PARAM:
                        acc = acc + weights[(e.src, e.dst)] @ torch.relu(z[e.src])
                    else:
                        acc = acc + z[e.src]
                z[v] = acc
            return z[-1], readout @ torch.relu(z[-1])

        before, f = forward()
        loss = 0.5 * (f - 1.0) ** 2
        grads = torch.autograd.grad(loss, list(weights.values()))
        with torch.no_grad():
            for p, g in zip(weights.values(), grads):
                p -= lr * g
            after, _ = forward()
        total += ((after - before) ** 2).mean().item()
    return math.sqrt(total / seeds)


@dataclass
class Result:
    family: str
    name: str
    paths: int
    power_sum: int
    rule_lr: float
    rule_change: float
    fixed_change: float


def run(width: int = 256, seeds: int = 3, **family_kwargs) -> tuple[list[Result], float]:
    """Measure every graph at the rule's rate and at the fixed rate; returns (results, fixed rate)."""
    graphs = [(fam, name, g) for fam, items in families(**family_kwargs).items() for name, g in items]
    rates = {name: learning_rate(g, 1.0, "paper") for _, name, g in graphs}
    fixed = math.exp(sum(math.log(r.value) for r in rates.values()) / len(rates))
    torch.set_num_threads(min(2, torch.get_num_threads()))
    results = []
    for fam, name, g in graphs:
        rate = rates[name]
        results.append(Result(fam, name, _paths(g), rate.depth_power_sum, rate.value,
                              feature_change(g, rate.value, width, seeds), feature_change(g, fixed, width, seeds)))
    return results, fixed


def _paths(g: ArchGraph) -> int:
    from nni_archscale.core.paths import path_statistics

    return path_statistics(g).output_num_paths


def spread(values) -> float:
    values = list(values)
    return max(values) / min(values)


def plot(results: list[Result], fixed: float, path: Path = OUTPUT) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    markers = {"chain": "o", "complete DAG": "s", "parallel branches": "^"}
    for ax, attr, title in (
        (axes[0], "rule_change", "rule: eta = (sum_p L_p^3)^(-1/2)"),
        (axes[1], "fixed_change", f"fixed eta = {fixed:.3g}"),
    ):
        for fam in markers:
            rs = [r for r in results if r.family == fam]
            if rs:
                ax.loglog([r.power_sum for r in rs], [getattr(r, attr) for r in rs], marker=markers[fam],
                          label=fam)
        vals = [getattr(r, attr) for r in results]
        ax.set_title(f"{title}\nspread max/min = {spread(vals):.1f}")
        ax.set_xlabel("sum_p L_p^3")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("RMS change of output-node features after one SGD step")
    axes[0].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512, help="units per node (default 512)")
    parser.add_argument("--seeds", type=int, default=4, help="seeds averaged per graph (default 4)")
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"where the plot goes (default {OUTPUT})")
    args = parser.parse_args()
    results, fixed = run(args.width, args.seeds)
    print(f"{'graph':<18} {'paths':>6} {'sum L^3':>8} {'rule lr':>9} {'rule dz':>9} {'fixed dz':>9}")
    for r in results:
        print(f"{r.name:<18} {r.paths:>6} {r.power_sum:>8} {r.rule_lr:>9.4f} {r.rule_change:>9.4f} "
              f"{r.fixed_change:>9.4f}")
    for fams in (("chain",), ("chain", "complete DAG"), ("chain", "complete DAG", "parallel branches")):
        rs = [r for r in results if r.family in fams]
        print(f"spread over {' + '.join(fams)}: rule {spread(r.rule_change for r in rs):.1f}, "
              f"fixed {spread(r.fixed_change for r in rs):.1f}")
    print(f"plot: {plot(results, fixed, args.output)}")


if __name__ == "__main__":
    main()
