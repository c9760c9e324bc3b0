"""Exact path statistics of an architecture graph, by dynamic programming (no path enumeration).

For a node ``v`` let ``P(v)`` be the set of directed paths from the input to ``v`` and ``k_p`` the number of
parameterised edges on path ``p``. The *path moments* of ``v`` are

    S_j(v) = sum over p in P(v) of k_p ** j,      j = 0, 1, 2, 3,

so ``S_0`` is the number of paths. They are what the learning-rate rule needs: with ``L_p = k_p + a`` (a
constant depth offset for layers outside the graph),

    sum_p L_p^3 = S_3 + 3a S_2 + 3a^2 S_1 + a^3 S_0                                (paper eq. 8's sum)

One pass in topological order: a skip or pooling edge passes its source's moments on unchanged; a
parameterised edge turns every ``k`` into ``k + 1``, i.e. the binomial update
``S_j' = sum_i C(j, i) S_i``; a node adds up its incoming edges. All arithmetic is on Python integers, so it is
exact however many paths there are. Blocks chained one after another (stacked cells) compose by the
binomial convolution in :func:`compose_moments`.

Path enumeration (:func:`enumerate_paths`) exists only as a test oracle.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Iterator, Sequence

from .graph import ArchGraph, Edge, EdgeKind

#: Highest power of k tracked (eq. 8 needs the cube).
MAX_POWER = 3

Moments = tuple[int, ...]


def shift_moments(m: Sequence[int], by: int = 1) -> Moments:
    """Moments after adding ``by`` to every path's k: ``S_j' = sum_i C(j, i) by^(j-i) S_i``."""
    return tuple(sum(comb(j, i) * by ** (j - i) * m[i] for i in range(j + 1)) for j in range(len(m)))


def add_moments(a: Sequence[int], b: Sequence[int]) -> Moments:
    return tuple(x + y for x, y in zip(a, b))


def compose_moments(first: Sequence[int], second: Sequence[int]) -> Moments:
    """Moments of two blocks in series (every path = a path of ``first`` then a path of ``second``).

    ``k = k1 + k2``, so ``S_j = sum_i C(j, i) S_i(first) S_(j-i)(second)`` (binomial convolution).
    """
    n = min(len(first), len(second))
    return tuple(sum(comb(j, i) * first[i] * second[j - i] for i in range(j + 1)) for j in range(n))


def power_sum(m: Sequence[int], power: int, offset: int = 0) -> int:
    """``sum_p (k_p + offset) ** power`` from the moments (needs ``len(m) > power``)."""
    if power >= len(m):
        raise ValueError(f"moments up to k^{len(m) - 1} cannot give a sum of k^{power}")
    return sum(comb(power, i) * offset ** (power - i) * m[i] for i in range(power + 1))


@dataclass(frozen=True)
class PathStatistics:
    """Per-node statistics of one graph. ``moments[v] = (S_0, S_1, S_2, S_3)`` for node ``v``."""

    graph: ArchGraph
    moments: tuple[Moments, ...]

    @property
    def in_degree(self) -> tuple[int, ...]:
        return self.graph.in_degree

    @property
    def num_paths(self) -> tuple[int, ...]:
        """Number of input-to-node paths, per node."""
        return tuple(m[0] for m in self.moments)

    @property
    def output(self) -> Moments:
        """Moments at the output node: ``(P, sum k_p, sum k_p^2, sum k_p^3)``."""
        return self.moments[self.graph.output_node]

    @property
    def output_num_paths(self) -> int:
        return self.output[0]

    def depth_power_sum(self, power: int = 3, offset: int = 0) -> int:
        """``sum over input-output paths of (k_p + offset) ** power``."""
        return power_sum(self.output, power, offset)

    def depth_range(self) -> tuple[int, int] | None:
        """(min k_p, max k_p) over input-output paths, or None without paths. Also by dynamic programming."""
        return depth_range(self.graph)


def path_statistics(graph: ArchGraph, max_power: int = MAX_POWER) -> PathStatistics:
    """Path moments of every node of ``graph`` (one topological pass, exact integers)."""
    zero = (0,) * (max_power + 1)
    moments: list[Moments] = [zero] * graph.num_nodes
    moments[0] = (1,) + (0,) * max_power  # the empty path at the input, k = 0
    shifted: dict[int, Moments] = {}
    for v in range(1, graph.num_nodes):
        total = zero
        for e in graph.in_edges[v]:
            m = moments[e.src]
            if e.kind is EdgeKind.PARAM:
                if e.src not in shifted:
                    shifted[e.src] = shift_moments(m)
                m = shifted[e.src]
            total = add_moments(total, m)
        moments[v] = total
    return PathStatistics(graph, tuple(moments))


def has_input_output_path(graph: ArchGraph) -> bool:
    """True when some directed path joins the input to the output (else the network computes a constant)."""
    return path_statistics(graph, max_power=0).output[0] > 0


def live_edges_only(graph: ArchGraph) -> ArchGraph:
    """``graph`` without the edges that no input-to-output path uses (zero edges dropped too)."""
    n = graph.num_nodes
    from_input, to_output = {0}, {n - 1}
    for e in graph.active_edges:  # sorted by target: sources are final when their out-edges come
        if e.src in from_input:
            from_input.add(e.dst)
    for e in sorted(graph.active_edges, key=lambda e: -e.src):
        if e.dst in to_output:
            to_output.add(e.src)
    return graph.with_edges(e for e in graph.active_edges if e.src in from_input and e.dst in to_output)


def depth_range(graph: ArchGraph) -> tuple[int, int] | None:
    """Smallest and largest number of parameterised edges over input-output paths (None if no path)."""
    lo: list[int | None] = [None] * graph.num_nodes
    hi: list[int | None] = [None] * graph.num_nodes
    lo[0] = hi[0] = 0
    for v in range(1, graph.num_nodes):
        for e in graph.in_edges[v]:
            if lo[e.src] is None:
                continue
            step = 1 if e.kind is EdgeKind.PARAM else 0
            a, b = lo[e.src] + step, hi[e.src] + step
            lo[v] = a if lo[v] is None else min(lo[v], a)
            hi[v] = b if hi[v] is None else max(hi[v], b)
    out = graph.output_node
    return None if lo[out] is None else (lo[out], hi[out])


def chain_moments(blocks: Sequence[Sequence[int]]) -> Moments:
    """Output moments of blocks in series (each block's input is the previous block's output)."""
    if not blocks:
        raise ValueError("chain_moments needs at least one block")
    total = tuple(blocks[0])
    for m in blocks[1:]:
        total = compose_moments(total, m)
    return total


# --------------------------------------------------------------------------- test oracle only
def enumerate_paths(graph: ArchGraph) -> Iterator[tuple[Edge, ...]]:
    """Every input-to-output path as a tuple of edges. Exponential: use only as a test oracle."""
    out = graph.output_node

    def walk(v: int, prefix: tuple[Edge, ...]) -> Iterator[tuple[Edge, ...]]:
        if v == out:
            yield prefix
            return
        for e in graph.out_edges[v]:
            yield from walk(e.dst, prefix + (e,))

    if graph.num_nodes == 1:
        yield ()
        return
    yield from walk(0, ())


def enumerated_moments(graph: ArchGraph, max_power: int = MAX_POWER) -> Moments:
    """Output moments by enumerating every path (oracle for :func:`path_statistics`)."""
    ks = [sum(e.kind is EdgeKind.PARAM for e in p) for p in enumerate_paths(graph)]
    return tuple(sum(k**j for k in ks) for j in range(max_power + 1))
