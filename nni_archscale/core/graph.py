"""The architecture graph: a DAG of features whose edges are typed operations.

This is the paper's object (Chen et al., ICLR 2024, §3.1, eq. 1): vertices ``0 .. L+1`` numbered in
topological order, vertex 0 the input feature, the last vertex the output feature, and every vertex the
*unnormalised sum* of its incoming edges. An edge is one of

* ``ZERO``  - no edge (NAS-Bench-201 ``none``); kept only so that a cell round-trips, ignored by all maths;
* ``SKIP``  - the identity;
* ``POOL``  - a non-parametric operation such as 3x3 average pooling (counts as a skip for path depth,
  as in the authors' release, but has its own forward-moment factor);
* ``PARAM`` - a parameterised layer, Linear or Conv followed by ReLU, with its kernel size ``q``
  (1 for Linear and 1x1 convolutions).

Sizes are bounded so that bad input fails with a message instead of exhausting memory or giving absurd
rates: at most :data:`MAX_NODES` nodes, :data:`MAX_EDGES` edges and kernel sizes up to
:data:`MAX_KERNEL_SIZE` (raise the constants for a legitimately larger graph).

Pure Python: this module imports neither torch nor NNI. Graphs are immutable and hashable, and two graphs
compare equal when they are isomorphic (a relabelling of the inner nodes that keeps the input, the output and
every edge's type); :meth:`ArchGraph.identical` compares labelled graphs exactly.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Iterator, Sequence

from ..errors import GraphStructureError, shorten
from .canonical import canonical_labelling

#: Most nodes a graph may have. Whole NAS networks have tens to hundreds; stacked cells compose in series
#: (:mod:`nni_archscale.core.paths`) without building the whole graph. Larger counts are refused before any
#: per-node memory is allocated (``n=99999999999999`` would otherwise exhaust memory).
MAX_NODES = 100_000
#: Most edges (zero edges included) a graph may have: a dense DAG of about 1,000 nodes, or 5 edges per node at
#: :data:`MAX_NODES`; reading and scaling that many takes about half a minute.
MAX_EDGES = 500_000
#: Largest kernel size ``q`` (the side of a square kernel or pooling window). Real kernels are 1..11; a larger
#: value is almost surely a typo, and eq. 9's ``q^-1`` would silently shrink the learning rate towards 0.
MAX_KERNEL_SIZE = 1024


def _show(value: object) -> str:
    """A node number, count or kernel size for a message: small integers as they are, anything else shortened."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() <= 64:
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    return shorten(value)


class EdgeKind(str, enum.Enum):
    """What an edge computes (paper Fig. 1: zero, skip-connect, Linear+ReLU; plus non-parametric ops)."""

    ZERO = "zero"
    SKIP = "skip"
    POOL = "pool"
    PARAM = "param"

    @property
    def is_active(self) -> bool:
        """True for every kind that carries signal (everything but ZERO)."""
        return self is not EdgeKind.ZERO

    @property
    def is_parameterised(self) -> bool:
        return self is EdgeKind.PARAM


@dataclass(frozen=True, order=True)
class Edge:
    """One typed edge ``src -> dst``.

    ``kernel_size`` is the side ``q`` of a (square) kernel: 1 for Linear layers and 1x1 convolutions; for
    ``POOL`` edges it is the pooling window. ``op`` is a free label (e.g. the NAS-Bench-201 op name) and
    ``module`` the name of the torch module the edge stands for; neither affects any maths.
    """

    src: int
    dst: int
    kind: EdgeKind
    kernel_size: int = 1
    op: str | None = None
    module: str | None = None

    def __post_init__(self) -> None:
        where = f"edge {_show(self.src)}->{_show(self.dst)}"
        if not isinstance(self.kind, EdgeKind):
            try:
                object.__setattr__(self, "kind", EdgeKind(self.kind))
            except (ValueError, TypeError):
                raise GraphStructureError(
                    f"{where}: unknown edge kind {shorten(self.kind)}; "
                    f"use one of {', '.join(k.value for k in EdgeKind)}"
                ) from None
        for name in ("src", "dst", "kernel_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise GraphStructureError(f"{where}: {name} must be an integer, got {shorten(value)}")
        if self.kernel_size < 1:
            raise GraphStructureError(f"{where}: kernel_size must be >= 1, got {_show(self.kernel_size)}")
        if self.kernel_size > MAX_KERNEL_SIZE:
            raise GraphStructureError(
                f"{where}: kernel_size {_show(self.kernel_size)} exceeds the maximum {MAX_KERNEL_SIZE:,} "
                f"(nni_archscale.core.graph.MAX_KERNEL_SIZE); give the side q of the square kernel or pooling window, "
                f"e.g. 3 for 3x3"
            )

    @property
    def label(self) -> tuple[str, int]:
        """The part of the edge that matters for the maths: its kind and kernel size."""
        return (self.kind.value, self.kernel_size)

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"

    def describe(self) -> str:
        """Short human form, e.g. ``param(k=3)`` or ``skip``."""
        if self.kind is EdgeKind.PARAM or self.kind is EdgeKind.POOL:
            return f"{self.kind.value}(k={self.kernel_size})"
        return self.kind.value


class ArchGraph:
    """An immutable architecture DAG with nodes ``0 .. num_nodes-1`` in topological order.

    Node 0 is the input and node ``num_nodes - 1`` the output. Every edge goes from a lower to a higher
    node number; at most one edge joins a pair of nodes. Build one with the constructors in
    :mod:`nni_archscale.core.formats` (``from_nb201``, ``from_paper_code``, ``from_networkx``, ``from_json`` ...)
    or directly from :class:`Edge` objects.
    """

    __slots__ = ("_num_nodes", "_edges", "__dict__")

    def __init__(self, num_nodes: int, edges: Iterable[Edge]):
        if isinstance(num_nodes, bool) or not isinstance(num_nodes, int):
            raise GraphStructureError(f"num_nodes must be an integer, got {shorten(num_nodes)}")
        if num_nodes < 2:
            raise GraphStructureError(
                f"a graph needs at least 2 nodes (an input and an output), got {_show(num_nodes)}"
            )
        if num_nodes > MAX_NODES:
            raise too_many_nodes(_show(num_nodes))
        edge_list = list(edges)
        if len(edge_list) > MAX_EDGES:
            raise too_many_edges(len(edge_list))
        for e in edge_list:
            if not isinstance(e, Edge):
                raise GraphStructureError(f"expected Edge objects, got {shorten(e)}")
        edge_list.sort(key=lambda e: (e.dst, e.src))
        seen: set[tuple[int, int]] = set()
        backward: list[Edge] = []
        for e in edge_list:
            if not (0 <= e.src < num_nodes and 0 <= e.dst < num_nodes):
                raise GraphStructureError(
                    f"edge {_show(e.src)}->{_show(e.dst)} refers to a node outside 0..{num_nodes - 1}; "
                    f"add the missing node or fix the edge"
                )
            if e.src == e.dst:
                raise GraphStructureError(f"edge {e.name} is a self-loop; an architecture graph is acyclic")
            if (e.src, e.dst) in seen:
                raise GraphStructureError(
                    f"edge {e.name} appears twice; give each pair of nodes at most one operation"
                )
            seen.add((e.src, e.dst))
            if e.src > e.dst:
                backward.append(e)
        if backward:
            _raise_backward(num_nodes, edge_list, backward)
        self._num_nodes = num_nodes
        self._edges: tuple[Edge, ...] = tuple(edge_list)

    # ------------------------------------------------------------------ basic structure
    @property
    def num_nodes(self) -> int:
        return self._num_nodes

    @property
    def input_node(self) -> int:
        return 0

    @property
    def output_node(self) -> int:
        return self._num_nodes - 1

    @property
    def edges(self) -> tuple[Edge, ...]:
        """All edges, ZERO ones included, sorted by (dst, src)."""
        return self._edges

    @cached_property
    def active_edges(self) -> tuple[Edge, ...]:
        """Edges that carry signal (every kind but ZERO)."""
        return tuple(e for e in self._edges if e.kind.is_active)

    @cached_property
    def parameterised_edges(self) -> tuple[Edge, ...]:
        return tuple(e for e in self._edges if e.kind.is_parameterised)

    @cached_property
    def in_edges(self) -> tuple[tuple[Edge, ...], ...]:
        """Active incoming edges of each node."""
        return self._edges_by(lambda e: e.dst)

    @cached_property
    def out_edges(self) -> tuple[tuple[Edge, ...], ...]:
        """Active outgoing edges of each node."""
        return self._edges_by(lambda e: e.src)

    def _edges_by(self, node_of) -> tuple[tuple[Edge, ...], ...]:
        lists: list[list[Edge]] = [[] for _ in range(self._num_nodes)]
        for e in self.active_edges:
            lists[node_of(e)].append(e)
        return tuple(tuple(x) for x in lists)

    @cached_property
    def in_degree(self) -> tuple[int, ...]:
        """d_in of every node: the number of incoming non-zero edges (paper eq. 4; skips count)."""
        return tuple(len(x) for x in self.in_edges)

    @cached_property
    def out_degree(self) -> tuple[int, ...]:
        return tuple(len(x) for x in self.out_edges)

    @cached_property
    def kernel_sizes(self) -> tuple[int, ...]:
        """Sorted distinct kernel sizes of the parameterised edges."""
        return tuple(sorted({e.kernel_size for e in self.parameterised_edges}))

    def edge(self, src: int, dst: int) -> Edge | None:
        for e in self.in_edges[dst] if 0 <= dst < self._num_nodes else ():
            if e.src == src:
                return e
        return None

    def __iter__(self) -> Iterator[Edge]:
        return iter(self._edges)

    def __len__(self) -> int:
        return len(self._edges)

    # ------------------------------------------------------------------ equality and hashing
    @cached_property
    def canonical_key(self) -> tuple:
        """An isomorphism invariant that is also complete: equal keys <=> isomorphic graphs."""
        order = canonical_labelling(self)
        position = {node: i for i, node in enumerate(order)}
        edges = sorted((position[e.src], position[e.dst]) + e.label for e in self.active_edges)
        return (self._num_nodes, tuple(edges))

    def canonical(self) -> "ArchGraph":
        """The canonical representative: isomorphic graphs give identical canonical graphs.

        Zero edges and labels (op names, module names) are dropped; nodes are renumbered so that the
        numbering is still topological, with the input first and the output last.
        """
        n, edges = self.canonical_key
        return ArchGraph(n, (Edge(s, d, EdgeKind(k), q) for s, d, k, q in edges))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ArchGraph):
            return NotImplemented
        if self.structure_key == other.structure_key:
            return True
        return self.canonical_key == other.canonical_key

    def __hash__(self) -> int:
        return hash(self.canonical_key)

    @cached_property
    def structure_key(self) -> tuple:
        """The labelled structure (active edges with kind and kernel), no canonicalisation."""
        return (self._num_nodes, tuple((e.src, e.dst) + e.label for e in self.active_edges))

    def identical(self, other: "ArchGraph") -> bool:
        """Exact equality: same node numbering and the same edges, labels and zero edges included."""
        return self._num_nodes == other._num_nodes and self._edges == other._edges

    # ------------------------------------------------------------------ convenience
    def with_edges(self, edges: Iterable[Edge]) -> "ArchGraph":
        return ArchGraph(self._num_nodes, edges)

    def to_text(self) -> str:
        """Readable one-line form, e.g. ``n=4; 0->1:param/3, 0->2:skip, 1->3:pool/3`` (read back by
        :func:`~nni_archscale.core.formats.from_text`).

        Zero edges are written too, so the text round-trips structurally; op and module labels are not (use JSON).
        """
        parts = []
        for e in self._edges:
            token = f"{e.src}->{e.dst}:{e.kind.value}"
            if e.kind in (EdgeKind.PARAM, EdgeKind.POOL):
                token += f"/{e.kernel_size}"
            parts.append(token)
        return f"n={self._num_nodes}; " + ", ".join(parts)

    def __repr__(self) -> str:
        return f"ArchGraph({self.to_text()!r})"

    def __str__(self) -> str:
        return self.to_text()

    def __getstate__(self):
        return {"num_nodes": self._num_nodes, "edges": self._edges}

    def __setstate__(self, state):
        self._num_nodes = state["num_nodes"]
        self._edges = state["edges"]


def too_many_nodes(shown: str) -> GraphStructureError:
    """The error for a node count above :data:`MAX_NODES` (``shown``: the count as the input gave it)."""
    return GraphStructureError(
        f"a graph may have at most {MAX_NODES:,} nodes (nni_archscale.core.graph.MAX_NODES), got {shown}; "
        "check the node count, or describe one cell: stacked cells compose in series (nni_archscale.core.paths)"
    )


def too_many_edges(count: int) -> GraphStructureError:
    """The error for more than :data:`MAX_EDGES` edges."""
    return GraphStructureError(
        f"a graph may have at most {MAX_EDGES:,} edges (nni_archscale.core.graph.MAX_EDGES), got {count:,}; "
        "describe one cell: stacked cells compose in series (nni_archscale.core.paths)"
    )


def _raise_backward(num_nodes: int, edges: Sequence[Edge], backward: Sequence[Edge]) -> None:
    """Explain a backward edge: either it closes a cycle, or the numbering is not topological."""
    succ: dict[int, list[int]] = {}
    for e in edges:
        succ.setdefault(e.src, []).append(e.dst)
    for e in backward:
        # is there a path e.dst -> ... -> e.src ? then e closes a cycle
        stack, seen = [e.dst], {e.dst}
        while stack:
            u = stack.pop()
            if u == e.src:
                raise GraphStructureError(
                    f"edge {e.name} closes a cycle; an architecture graph must be acyclic: "
                    f"remove or reverse that edge"
                )
            for v in succ.get(u, ()):
                if v not in seen:
                    seen.add(v)
                    stack.append(v)
    e = backward[0]
    raise GraphStructureError(
        f"edge {e.name} goes from a later node to an earlier one; number the nodes in topological "
        f"order (input 0, output {num_nodes - 1}) or build the graph with from_networkx(), which renumbers"
    )
