"""Canonical labelling of architecture graphs (so that isomorphic cells compare equal).

Two graphs are isomorphic when a renumbering of the inner nodes maps one onto the other, keeping the input,
the output and every active edge's (kind, kernel size). Zero edges and labels are ignored.

Method: individualisation-refinement, the textbook canonical-labelling scheme (McKay & Piperno, "Practical
graph isomorphism II", 2014) in its simplest form:

1. colour nodes by an invariant (role: input / inner / output, and longest-path depth), then refine colours by
   the multiset of (edge label, neighbour colour) over in- and out-edges until stable (1-dimensional
   Weisfeiler-Leman);
2. while some colour class has several nodes, try each node of the first such class as "special", refine,
   and recurse; every leaf is a discrete colouring, i.e. a numbering; keep the numbering whose edge list is
   lexicographically smallest.

Nodes with identical labelled neighbourhoods ("twins", e.g. parallel branches) are interchangeable, so only
one of them is tried. Sorting colours by (role, depth) first keeps every canonical numbering topological.
"""

from __future__ import annotations

from typing import Hashable, Protocol, Sequence

from ..errors import CanonicalFormError


class _Edge(Protocol):
    src: int
    dst: int
    label: Hashable


class LabelledDag(Protocol):
    """What the labelling reads of a graph (:class:`~nni_archscale.core.graph.ArchGraph` is one, and calls
    :func:`canonical_labelling` for its equality and hash): the node count, the active edges, and each node's
    active in- and out-edges; an edge has ``src``, ``dst`` and a hashable ``label``."""

    num_nodes: int
    active_edges: Sequence[_Edge]
    in_edges: Sequence[Sequence[_Edge]]
    out_edges: Sequence[Sequence[_Edge]]

#: Leaves of the search tree explored before giving up (only pathological symmetric graphs get near it).
MAX_LEAVES = 20_000


def _longest_depth(graph: LabelledDag) -> list[int]:
    depth = [0] * graph.num_nodes
    for v in range(graph.num_nodes):
        for e in graph.in_edges[v]:
            depth[v] = max(depth[v], depth[e.src] + 1)
    return depth


def _refine(graph: LabelledDag, colour: list) -> list[int]:
    """Refine a colouring to a stable one; colours are renumbered 0..k-1 in sorted signature order."""
    ins = graph.in_edges
    outs = graph.out_edges
    n = graph.num_nodes
    current = _normalise(colour)
    num = len(set(current))
    while True:
        sigs = [
            (
                current[v],
                tuple(sorted((e.label, current[e.src]) for e in ins[v])),
                tuple(sorted((e.label, current[e.dst]) for e in outs[v])),
            )
            for v in range(n)
        ]
        new = _normalise(sigs)
        new_num = len(set(new))
        if new_num == num:
            return new
        current, num = new, new_num


def _normalise(values: list) -> list[int]:
    ranks = {v: i for i, v in enumerate(sorted(set(values)))}
    return [ranks[v] for v in values]


def _certificate(graph: LabelledDag, colour: list[int]) -> tuple:
    return tuple(sorted((colour[e.src], colour[e.dst]) + e.label for e in graph.active_edges))


def canonical_labelling(graph: LabelledDag) -> list[int]:
    """Return the nodes of ``graph`` in canonical order (a topological order, input first, output last)."""
    n = graph.num_nodes
    depth = _longest_depth(graph)
    role = [1] * n
    role[0] = 0
    role[n - 1] = 2
    start = _refine(graph, [(role[v], depth[v]) for v in range(n)])

    neighbourhood = [
        (
            tuple(sorted((e.src,) + e.label for e in graph.in_edges[v])),
            tuple(sorted((e.dst,) + e.label for e in graph.out_edges[v])),
        )
        for v in range(n)
    ]

    best: list = [None, None]  # certificate, colouring
    leaves = [0]

    def search(colour: list[int]) -> None:
        while True:  # a level with one candidate (all twins) continues in this loop, not by recursion
            counts: dict[int, int] = {}
            for c in colour:
                counts[c] = counts.get(c, 0) + 1
            target = next((c for c in sorted(counts) if counts[c] > 1), None)
            if target is None:
                leaves[0] += 1
                if leaves[0] > MAX_LEAVES:
                    raise CanonicalFormError(
                        f"canonical form of this {n}-node graph needs more than {MAX_LEAVES} search leaves "
                        "(it is highly symmetric); compare graphs with .identical() instead of =="
                    )
                cert = _certificate(graph, colour)
                if best[0] is None or cert < best[0]:
                    best[0], best[1] = cert, colour
                return
            candidates = []
            tried: set = set()
            for v in range(n):
                if colour[v] == target and neighbourhood[v] not in tried:
                    tried.add(neighbourhood[v])  # a twin of a node already tried gives the same certificates
                    candidates.append(v)
            if len(candidates) == 1:
                # all of the class are twins, interchangeable: individualising them one by one in node order
                # (each step splits nothing else) equals giving each its own colour in node order at once
                rank = {v: i for i, v in enumerate(u for u in range(n) if colour[u] == target)}
                colour = _refine(graph, [(c, rank.get(u, 0)) for u, c in enumerate(colour)])
                continue
            for v in candidates:
                search(_refine(graph, [2 * c + (1 if (c == target and u != v) else 0) for u, c in enumerate(colour)]))
            return

    search(start)
    colour = best[1]
    return sorted(range(n), key=lambda v: colour[v])
