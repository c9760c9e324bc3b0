"""Hypothesis strategies for architecture graphs, shared by every test module.

``graphs()`` draws DAGs with nodes in topological order: any size from 2 nodes, any mix of edge kinds
(zero, skip, pool, parameterised) and kernel sizes, including empty, skip-only, disconnected and deep ones.
"""

from __future__ import annotations

from hypothesis import strategies as st

from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind

KERNELS = (1, 3, 5, 7)
ALL_KINDS = (EdgeKind.ZERO, EdgeKind.SKIP, EdgeKind.POOL, EdgeKind.PARAM)


@st.composite
def graphs(
    draw,
    min_nodes: int = 2,
    max_nodes: int = 8,
    kinds: tuple[EdgeKind, ...] = ALL_KINDS,
    kernels: tuple[int, ...] = KERNELS,
    density: float | None = None,
) -> ArchGraph:
    """A random DAG. ``density`` (probability that a pair j < i gets an edge) is drawn when not given."""
    n = draw(st.integers(min_nodes, max_nodes))
    p = draw(st.sampled_from((0.0, 0.2, 0.5, 0.8, 1.0))) if density is None else density
    edges = []
    for i in range(1, n):
        for j in range(i):
            if p >= 1.0 or (p > 0.0 and draw(st.floats(0.0, 1.0)) < p):
                kind = draw(st.sampled_from(kinds))
                q = draw(st.sampled_from(kernels)) if kind in (EdgeKind.PARAM, EdgeKind.POOL) else 1
                edges.append(Edge(j, i, kind, q))
    return ArchGraph(n, edges)


@st.composite
def chains(draw, max_depth: int = 40) -> ArchGraph:
    """A chain 0 -> 1 -> ... -> L of random edge kinds (deep graphs)."""
    depth = draw(st.integers(1, max_depth))
    kinds = draw(st.lists(st.sampled_from((EdgeKind.SKIP, EdgeKind.POOL, EdgeKind.PARAM)), min_size=depth,
                          max_size=depth))
    return ArchGraph(depth + 1, [Edge(i, i + 1, k, 3 if k is EdgeKind.POOL else 1) for i, k in enumerate(kinds)])


@st.composite
def relabellings(draw, graph: ArchGraph) -> ArchGraph:
    """An isomorphic copy of ``graph``: a random topological renumbering of its inner nodes."""
    n = graph.num_nodes
    preds = {v: {e.src for e in graph.in_edges[v]} for v in range(n)}
    placed: list[int] = [0]
    remaining = set(range(1, n - 1))
    while remaining:
        ready = sorted(v for v in remaining if preds[v] <= set(placed))
        v = draw(st.sampled_from(ready))
        placed.append(v)
        remaining.discard(v)
    placed.append(n - 1)
    pos = {v: i for i, v in enumerate(placed)}
    return ArchGraph(n, [Edge(pos[e.src], pos[e.dst], e.kind, e.kernel_size) for e in graph.active_edges])


NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@st.composite
def nb201_strings(draw) -> str:
    """A random NAS-Bench-201 cell string."""
    groups = []
    for i in range(1, 4):
        groups.append("|" + "|".join(f"{draw(st.sampled_from(NB201_OPS))}~{j}" for j in range(i)) + "|")
    return "+".join(groups)
