"""The paper's DAG-cell MLP (§4.1) in torch, and its recognition inside any traceable model.

The evidence-backed rules of :mod:`nni_archscale.rules.defaults` (``readout-limited-sgd``, ``feature-sgd``; the
research behind them: ``reports/beyond-paper/``) were measured on one kind of network: a Linear+ReLU stem, a
DAG cell whose every parameterised edge is a width-to-width Linear followed by the activation (the released
code's Linear-then-activation edges), summed at the nodes, and a linear readout; no normalisation. They need
that network's sizes (width, input size, classes), which :func:`dag_cell_shape` reads off a model's fx graph
(:mod:`.fx_extract`), so that the hook can apply them to a user's model of that form, whatever its class.

:class:`DagCellMLP` builds that network from an :class:`~nni_archscale.core.graph.ArchGraph` cell (what
:func:`nni_archscale.core.networks.dag_cell_network` describes), e.g. for a custom NNI space of DAG cells.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from ..core.graph import ArchGraph, Edge, EdgeKind
from ..core.networks import CellNetwork
from ..errors import ExtractionError
from .fx_extract import model_graph, trace

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


class DagCellMLP(nn.Module):
    """Linear+act stem, the cell (every parameterised edge ``act(Linear(z_src))``, skips carry ``z_src``,
    nodes sum their inputs; pool edges are not allowed in an MLP cell), and a linear readout."""

    def __init__(self, cell: ArchGraph, in_features: int, width: int, num_classes: int, activation: str = "relu"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
        if any(e.kind is EdgeKind.POOL for e in cell.active_edges):
            raise ValueError("an MLP cell has no pooling edges; use param, skip or zero edges")
        self.cell = cell
        self.stem = nn.Linear(in_features, width)
        self.act = _ACTIVATIONS[activation]()
        self._edges = [e for e in cell.active_edges if e.kind in (EdgeKind.PARAM, EdgeKind.SKIP)]
        self.edges = nn.ModuleDict({_key(e): nn.Linear(width, width) for e in self._edges if e.kind is EdgeKind.PARAM})
        self.readout = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [self.act(self.stem(x.flatten(1)))]
        for v in range(1, self.cell.num_nodes):
            ins = [self.act(self.edges[_key(e)](nodes[e.src])) if e.kind is EdgeKind.PARAM else nodes[e.src]
                   for e in self._edges if e.dst == v and nodes[e.src] is not None]
            # one sum over all of a node's inputs (not a chain of binary adds, which fx would read as extra nodes)
            nodes.append(None if not ins else ins[0] if len(ins) == 1 else torch.stack(ins).sum(0))
        out = nodes[-1]
        if out is None:
            out = torch.zeros_like(nodes[0])  # no input-output path: the network computes a constant
        return self.readout(out)


def _key(e: Edge) -> str:
    return f"e{e.src}_{e.dst}"


def dag_cell_shape(model: nn.Module, graph: ArchGraph, readout_module: str | None,
                   leaf=None) -> CellNetwork | None:
    """``model`` read as the paper's DAG-cell MLP, or None when it is not one.

    ``graph`` is the model's fx graph without its readout (:func:`.fx_extract.model_graph`). It is one when: the
    input feeds exactly one edge, a Linear (the stem) into node 1, which nothing else feeds; every other
    parameterised edge is a ``width -> width`` Linear; the stem and every such Linear feed a ReLU and nothing else
    (the rules' kernels assume ReLU); the readout is a Linear from ``width``; and the model has no convolution and
    no normalisation layer. The cell is the graph from node 1 on. A plain equal-width ReLU MLP is one (its cell
    is a chain). ``leaf``: modules fx keeps whole, as for the graph.
    """
    modules = dict(model.named_modules())
    if readout_module is None or not isinstance(modules.get(readout_module), nn.Linear):
        return None
    if any(isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.modules.batchnorm._NormBase, nn.LayerNorm,
                          nn.GroupNorm)) for m in modules.values()):
        return None
    edges = graph.active_edges
    from_input = [e for e in edges if e.src == 0]
    if len(from_input) != 1 or graph.num_nodes < 3:
        return None
    stem_edge = from_input[0]
    stem = modules.get(stem_edge.module or "")
    if stem_edge.kind is not EdgeKind.PARAM or stem_edge.dst != 1 or not isinstance(stem, nn.Linear):
        return None
    width = stem.out_features
    cell_edges = []
    for e in edges:
        if e is stem_edge:
            continue
        if e.dst == 1:
            return None
        if e.kind is EdgeKind.PARAM:
            layer = modules.get(e.module or "")
            if not isinstance(layer, nn.Linear) or layer.in_features != width or layer.out_features != width:
                return None
        elif e.kind is EdgeKind.POOL:
            return None
        cell_edges.append(Edge(e.src - 1, e.dst - 1, e.kind, e.kernel_size, e.op, e.module))
    readout = modules[readout_module]
    if readout.in_features != width:
        return None
    layers = {stem_edge.module} | {e.module for e in cell_edges if e.kind is EdgeKind.PARAM}
    if not _relu_follows(model, layers, leaf):
        return None
    return CellNetwork(ArchGraph(graph.num_nodes - 1, cell_edges), stem.in_features, width, readout.out_features)


def recognise(model: nn.Module, leaf=None) -> CellNetwork | None:
    """:func:`dag_cell_shape` of ``model``'s own fx graph (None when fx cannot trace it)."""
    try:
        graph, readout = model_graph(model, leaf=leaf)
    except ExtractionError:
        return None
    return dag_cell_shape(model, graph, readout, leaf)


_RELU_FUNCTIONS = (torch.relu, torch.relu_, F.relu)


def _relu_follows(model: nn.Module, layers: set, leaf=None) -> bool:
    """Whether every module named in ``layers`` feeds a ReLU and nothing else, in ``model``'s fx graph."""
    try:
        graph = trace(model, leaf)
    except ExtractionError:
        return False
    modules = dict(model.named_modules())

    def is_relu(node) -> bool:
        if node.op == "call_module":
            return isinstance(modules.get(node.target), nn.ReLU)
        if node.op == "call_function":
            return node.target in _RELU_FUNCTIONS
        return node.op == "call_method" and node.target in ("relu", "relu_")

    found = set()
    for node in graph.nodes:
        if node.op == "call_module" and node.target in layers:
            found.add(node.target)
            if not node.users or not all(is_relu(u) for u in node.users):
                return False
    return found == layers
