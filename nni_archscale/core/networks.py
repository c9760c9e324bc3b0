"""Whole networks as chains of blocks: stem, cells, reduction blocks, readout.

A :class:`Network` is a sequence of :class:`Block` s, each an :class:`ArchGraph` whose output node is the
next block's input node. Its path statistics follow from the blocks' statistics by composition
(:func:`nni_archscale.core.paths.compose_moments`), without building or enumerating the whole graph; ``flatten()``
builds the whole graph when one is wanted (for tests and inspection).

Builders cover the networks of the paper and its release:

* :func:`chain` - a plain MLP/CNN of ``L`` parameterised layers (App. D);
* :func:`dag_cell_network` - the paper's MLP and CNN DAG-cell networks (§4.1, §4.2): stem, one cell, readout;
* :func:`nb201_network` - the NAS-Bench-201 macro network (§4.3): conv stem, 3 stages of N cells with 2
  ResNet reduction blocks between them, and a linear classifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .graph import ArchGraph, Edge, EdgeKind
from .paths import Moments, chain_moments, depth_range, path_statistics, power_sum
from ..errors import RuleError
from .context import Context


@dataclass(frozen=True)
class Block:
    """One block of a network. ``role`` is one of ``stem``, ``cell``, ``reduction``, ``readout``."""

    name: str
    graph: ArchGraph
    role: str = "cell"


@dataclass(frozen=True)
class Network:
    """A chain of blocks; block ``i``'s output node is block ``i+1``'s input node."""

    name: str
    blocks: tuple[Block, ...]
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.blocks:
            raise ValueError("a network needs at least one block")

    @property
    def context(self) -> Context:
        """What the searched cell is inside (:class:`~nni_archscale.core.context.Context`): it fixes the rules' depth
        offset and base network. Set by the builders; a network built by hand is read as a bare DAG."""
        return Context.of(self.meta.get("context", "dag"))

    @property
    def cell(self) -> ArchGraph:
        """The searched cell: the first block of role ``cell`` (all cells of a stacked network are equal)."""
        for b in self.blocks:
            if b.role == "cell":
                return b.graph
        raise RuleError(f"network {self.name!r} has no block of role 'cell'; give one block role='cell'")

    @property
    def layers_before_cell(self) -> int:
        """Parameterised layers every path crosses before the first cell (the stem): the paper's depth offset."""
        depth = 0
        for b in self.blocks:
            if b.role == "cell":
                return depth
            depth += (depth_range(b.graph) or (0, 0))[0]
        return depth

    @cached_property
    def output_moments(self) -> Moments:
        """``(P, sum k, sum k^2, sum k^3)`` over the whole network's input-output paths, by composition."""
        cache: dict[int, Moments] = {}
        per_block = []
        for b in self.blocks:
            key = id(b.graph)
            if key not in cache:
                cache[key] = path_statistics(b.graph).output
            per_block.append(cache[key])
        return chain_moments(per_block)

    @property
    def num_paths(self) -> int:
        return self.output_moments[0]

    def depth_power_sum(self, power: int = 3) -> int:
        """``sum over the network's paths of L_p ** power`` with L_p = parameterised layers on the path."""
        return power_sum(self.output_moments, power)

    @property
    def kernel_sizes(self) -> tuple[int, ...]:
        return tuple(sorted({q for b in self.blocks for q in b.graph.kernel_sizes}))

    def flatten(self) -> ArchGraph:
        """The whole network as one graph; edge module names are prefixed with the block name."""
        edges: list[Edge] = []
        offset = 0
        for b in self.blocks:
            for e in b.graph.edges:
                module = f"{b.name}.{e.module}" if e.module else b.name
                edges.append(Edge(e.src + offset, e.dst + offset, e.kind, e.kernel_size, e.op, module))
            offset += b.graph.num_nodes - 1
        return ArchGraph(offset + 1, edges)


@dataclass(frozen=True)
class CellNetwork:
    """The paper's DAG-cell network (§4.1 MLP, §4.2 CNN) with its sizes: what the first-step rules
    (:func:`nni_archscale.rules.first_step.cell_init`), the batched maximal-rate experiments and the torch models are
    built from. ``in_features``: the flattened input size (MLP) or input channels (CNN); ``kernel_size``: the CNN
    stem's kernel (cell edges carry their own); ``convention``: ``linear-act`` (the release's Linear-then-activation
    edges) or ``eq1`` (activation then Linear, eq. 1)."""

    cell: ArchGraph
    in_features: int
    width: int
    num_classes: int
    kind: str = "mlp"
    kernel_size: int = 3
    convention: str = "linear-act"
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"network kind must be 'mlp' or 'cnn', got {self.kind!r}")
        if self.convention not in ("linear-act", "eq1"):
            raise ValueError(f"convention must be 'linear-act' or 'eq1', got {self.convention!r}")
        if self.activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {self.activation!r}")

    @property
    def network(self) -> Network:
        """The blocks: stem, cell, readout (:func:`dag_cell_network`)."""
        return dag_cell_network(self.cell, self.kind, self.kernel_size if self.kind == "cnn" else None)

    def fan_in(self, layer: str, edge: Edge | None = None) -> int:
        """``fan_in`` of ``layer`` (``stem``, ``edge`` with its ``edge``, or ``readout``): inputs x kernel taps."""
        if layer == "stem":
            return self.in_features * (self.kernel_size**2 if self.kind == "cnn" else 1)
        if layer == "readout":
            return self.width
        q = edge.kernel_size if self.kind == "cnn" else 1
        return self.width * q * q


def bare(graph: ArchGraph) -> Network:
    """The paper's bare DAG (eq. 1): the graph alone, read in context ``dag``."""
    return Network("dag", (Block("cell", graph, "cell"),), {"context": "dag"})


def single_layer(kernel_size: int = 1, module: str | None = None) -> ArchGraph:
    """One parameterised edge from input to output (a stem, a readout, or the paper's base cell)."""
    return ArchGraph(2, [Edge(0, 1, EdgeKind.PARAM, kernel_size, module=module)])


def chain(depth: int, kernel_size: int = 1) -> ArchGraph:
    """A plain chain of ``depth`` parameterised layers: ``sum_p L_p^3 = depth^3`` (App. D)."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"a chain needs an integer depth >= 1, got {depth!r}")
    return ArchGraph(depth + 1, [Edge(i, i + 1, EdgeKind.PARAM, kernel_size) for i in range(depth)])


def resnet_reduction_block() -> ArchGraph:
    """NAS-Bench-201's stride-2 ResNet basic block: conv3x3 -> conv3x3, plus a pool + conv1x1 shortcut."""
    return ArchGraph(
        3,
        [
            Edge(0, 1, EdgeKind.PARAM, 3, module="conv_a"),
            Edge(1, 2, EdgeKind.PARAM, 3, module="conv_b"),
            Edge(0, 2, EdgeKind.PARAM, 1, module="downsample"),
        ],
    )


def dag_cell_network(cell: ArchGraph, kind: str = "mlp", kernel_size: int | None = None) -> Network:
    """The paper's DAG-cell network (§4.1 MLP, §4.2 CNN): stem Linear/Conv+ReLU, the cell, linear readout.

    For ``kind="cnn"`` the stem uses ``kernel_size`` (default: the cell's single kernel size, else 3) and a
    global average pool precedes the readout.
    """
    if kind not in ("mlp", "cnn"):
        raise ValueError(f"network kind must be 'mlp' or 'cnn', got {kind!r}")
    if kind == "mlp":
        q = 1
    else:
        q = kernel_size or (cell.kernel_sizes[0] if len(cell.kernel_sizes) == 1 else 3)
    blocks = (
        Block("stem", single_layer(q, module="stem"), "stem"),
        Block("cell", cell, "cell"),
        Block("readout", single_layer(1, module="readout"), "readout"),
    )
    return Network(f"{kind}-dag-cell", blocks,
                   {"kind": kind, "kernel_size": q, "context": Context.of_cell_network(kind).value})


def nb201_network(cell: ArchGraph, cells_per_stage: int = 5) -> Network:
    """The NAS-Bench-201 macro network: stem, 3 stages of ``cells_per_stage`` cells, 2 reductions, classifier."""
    if cells_per_stage < 1:
        raise ValueError(f"cells_per_stage must be >= 1, got {cells_per_stage}")
    blocks: list[Block] = [Block("stem", single_layer(3, module="stem"), "stem")]
    reduction = resnet_reduction_block()
    for stage in range(3):
        if stage:
            blocks.append(Block(f"reduction{stage}", reduction, "reduction"))
        for i in range(cells_per_stage):
            blocks.append(Block(f"stage{stage}.cell{i}", cell, "cell"))
    blocks.append(Block("classifier", single_layer(1, module="classifier"), "readout"))
    return Network("nb201", tuple(blocks), {"cells_per_stage": cells_per_stage, "context": "nb201-cell"})


def stacked(cell: ArchGraph, copies: int, name: str = "stack") -> Network:
    """``copies`` copies of ``cell`` in series."""
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    return Network(name, tuple(Block(f"cell{i}", cell, "cell") for i in range(copies)))
