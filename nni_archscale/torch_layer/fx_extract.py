"""torch.fx extractor: an :class:`~nni_archscale.core.graph.ArchGraph` from any traceable (frozen) model.

The general fallback when no exact adapter knows the model. Trace the model, then walk the fx graph keeping, for
every value, the architecture node it hangs off (``anchor``) and the operation pending on the way from it:

* Linear/Conv (or a leaf module holding one) -> a parameterised edge (kernel = the conv's kernel side);
  a second parameterised layer on the same way first *materialises* a node, so every node is a feature the
  paper's eq. 1 would name;
* pooling -> a POOL edge (absorbed into a parameterised edge on the same way);
* norms, activations, dropout, reshapes, and any other one-tensor operation -> pass through;
* ``x * 0`` / modules with ``is_zero`` (NNI's ``Zero`` op) -> a ZERO edge;
* ``+``, ``torch.add``, ``torch.sum`` / ``mean`` over ``torch.stack``, ``torch.cat`` and any operation on several
  tensors -> a node summing its inputs (the paper's aggregation); two operations on the same input summed
  (``x + conv(x)``) enter the sum from distinct nodes: the second one's source passes through a skip first;
* a value used by more than one operation is materialised (its feature is shared, not copied).

Edges carry the fx target as ``Edge.module`` (the conv's module name), so an init plan built from the graph
addresses exactly the layers it describes. Do not trace an unfrozen NNI space: freeze it first.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import fx, nn

from ..core.graph import ArchGraph, Edge, EdgeKind
from ..errors import ExtractionError

_PARAM_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_POOL_TYPES = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
               nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
_MERGE_FUNCS = {operator.add, operator.iadd, torch.add, torch.cat, torch.concat}
_REDUCE_FUNCS = {torch.sum, torch.mean}
_STACK_FUNCS = {torch.stack}
_MUL_FUNCS = {operator.mul, operator.imul, torch.mul}


@dataclass(frozen=True)
class OpSpec:
    """How a module acts on the architecture: ``kind`` of edge, kernel side, the module the edge names."""

    kind: EdgeKind | None     # None: pass through
    kernel_size: int = 1
    module: str | None = None


def _kernel(m: nn.Module) -> int:
    k = getattr(m, "kernel_size", 1)
    if isinstance(k, (tuple, list)):
        return int(max(k)) if k else 1
    return int(k) if k else 1


def classify_module(module: nn.Module, name: str) -> OpSpec:
    """Default classification of a (leaf) module."""
    if getattr(module, "is_zero", False):
        return OpSpec(EdgeKind.ZERO, 1, name)
    if isinstance(module, _PARAM_TYPES):
        return OpSpec(EdgeKind.PARAM, _kernel(module), name)
    if isinstance(module, _POOL_TYPES):
        return OpSpec(EdgeKind.POOL, _kernel(module) if not isinstance(module, (nn.AdaptiveAvgPool2d,)) else 1, name)
    if isinstance(module, nn.Identity):
        return OpSpec(EdgeKind.SKIP, 1, name)
    # a composite leaf: the first parameterised layer inside decides
    for sub_name, sub in module.named_modules():
        if sub is module:
            continue
        if isinstance(sub, _PARAM_TYPES):
            return OpSpec(EdgeKind.PARAM, _kernel(sub), f"{name}.{sub_name}")
    for sub_name, sub in module.named_modules():
        if isinstance(sub, _POOL_TYPES):
            return OpSpec(EdgeKind.POOL, _kernel(sub), f"{name}.{sub_name}" if sub is not module else name)
    return OpSpec(None)


@dataclass
class _Val:
    anchor: int
    kind: EdgeKind | None = None
    kernel: int = 1
    module: str | None = None
    op: str | None = None


@dataclass
class _Bundle:
    items: list


class _LeafTracer(fx.Tracer):
    def __init__(self, leaf: Callable[[nn.Module, str], bool] | None):
        super().__init__()
        self._leaf = leaf

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if self._leaf is not None and self._leaf(m, qualname):
            return True
        return super().is_leaf_module(m, qualname)


@dataclass
class _Builder:
    edges: list = field(default_factory=list)
    num_nodes: int = 1
    pairs: set = field(default_factory=set)

    def new_node(self) -> int:
        self.num_nodes += 1
        return self.num_nodes - 1

    def add_edge(self, src: int, dst: int, v: _Val) -> None:
        kind = v.kind or EdgeKind.SKIP
        if (src, dst) in self.pairs:  # only ZERO duplicates reach here (merge() reroutes the others)
            return
        self._append(src, dst, kind, v)

    def _append(self, src, dst, kind, v):
        self.pairs.add((src, dst))
        k = v.kernel if kind in (EdgeKind.PARAM, EdgeKind.POOL) else 1
        self.edges.append(Edge(src, dst, kind, k, v.op, v.module))

    def materialise(self, v: _Val) -> _Val:
        if v.kind is None:
            return v
        node = self.new_node()
        self.add_edge(v.anchor, node, v)
        return _Val(node)

    def merge(self, vals: list[_Val]) -> _Val:
        seen: set[int] = set()
        routed: list[_Val] = []
        for v in vals:
            if v.anchor in seen and v.kind is not EdgeKind.ZERO:
                # a second edge between the same two nodes (x + conv(x), two ops on one input): a graph holds one
                # edge per pair, so the source is first copied through a skip into a node of its own, and the
                # operation then enters the sum from there: paths, L_p and the sum's in-degree (which sets the
                # operation's init, eq. 4) are all kept
                mid = self.new_node()
                self._append(v.anchor, mid, EdgeKind.SKIP, _Val(v.anchor))
                v = _Val(mid, v.kind, v.kernel, v.module, v.op)
            seen.add(v.anchor)
            routed.append(v)
        node = self.new_node()
        for v in routed:
            self.add_edge(v.anchor, node, v)
        return _Val(node)


def _tensors(args, env) -> list:
    out = []
    for a in fx.node.map_arg(args, lambda n: n).__iter__() if isinstance(args, (list, tuple)) else [args]:
        if isinstance(a, fx.Node):
            val = env.get(a.name)
            if isinstance(val, (_Val, _Bundle)):
                out.append(val)
        elif isinstance(a, (list, tuple)):
            out.extend(_tensors(a, env))
    return out


def _flatten(vals: list) -> list[_Val]:
    flat: list[_Val] = []
    for v in vals:
        if isinstance(v, _Bundle):
            flat.extend(_flatten(v.items))
        else:
            flat.append(v)
    return flat


def _is_zero_const(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == 0


def trace(model: nn.Module, leaf: Callable[[nn.Module, str], bool] | None = None,
          concrete_args: dict | None = None) -> fx.Graph:
    """``model``'s torch.fx graph, keeping ``leaf`` modules whole; an :class:`ExtractionError` saying what to do
    when fx cannot trace it."""
    try:
        return _LeafTracer(leaf).trace(model, concrete_args=concrete_args)
    except Exception as exc:  # fx raises many types for untraceable code
        raise ExtractionError(
            f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); "
            f"freeze NNI spaces before tracing, make data-dependent control flow a leaf module (leaf=...), "
            f"or build the ArchGraph yourself"
        ) from None


def extract_graph(model: nn.Module, leaf: Callable[[nn.Module, str], bool] | None = None,
                  classify: Callable[[nn.Module, str], OpSpec] = classify_module,
                  concrete_args: dict | None = None) -> ArchGraph:
    """Trace ``model`` and build its architecture graph (see the module docstring for the rules)."""
    fx_graph = trace(model, leaf, concrete_args)
    modules = dict(model.named_modules())
    b = _Builder()
    env: dict[str, object] = {}
    placeholders = 0
    out_val = None
    for node in fx_graph.nodes:
        result: object = None
        if node.op == "placeholder":
            placeholders += 1
            if placeholders > 1:
                raise ExtractionError(
                    f"{type(model).__name__}.forward takes {placeholders}+ inputs; the extractor needs one input "
                    f"tensor (pass concrete_args for the others)"
                )
            result = _Val(0)
        elif node.op == "get_attr":
            result = None
        elif node.op == "call_module":
            ins = _flatten(_tensors(node.args, env))
            spec = classify(modules[node.target], node.target)
            if not ins:
                result = None
            else:
                v = ins[0] if len(ins) == 1 else b.merge(ins)
                result = _apply(b, v, spec, type(modules[node.target]).__name__)
        elif node.op in ("call_function", "call_method"):
            result = _function(b, node, env)
        elif node.op == "output":
            vals = _flatten(_tensors(node.args, env))
            if not vals:
                raise ExtractionError(
                    f"the output of {type(model).__name__} does not depend on its input (a constant, a buffer or a "
                    f"non-tensor is returned); return a tensor computed from forward's input, or build the "
                    f"ArchGraph yourself"
                )
            out_val = vals[0] if len(vals) == 1 else b.merge(vals)
        if isinstance(result, _Val) and result.kind is not None and _data_users(node) > 1:
            result = b.materialise(result)
        env[node.name] = result
    if out_val is None:
        raise ExtractionError(f"{type(model).__name__} has no output")
    if out_val.kind is not None or out_val.anchor != b.num_nodes - 1:
        last = b.new_node()
        b.add_edge(out_val.anchor, last, out_val)
    if b.num_nodes < 2:
        _refuse_single_layer(model)
        raise ExtractionError(
            f"{type(model).__name__} has no layer between its input and output (no Linear, Conv or pooling: "
            f"an identity network); there is nothing to scale: check that the model is the frozen candidate"
        )
    return ArchGraph(b.num_nodes, b.edges)


def _refuse_single_layer(model: nn.Module) -> None:
    """A model that is itself one layer (``nn.Linear(8, 3)``), or computes with its own parameters through
    functional calls, traces to one operation: say that, not "no Linear", and what to do.

    The rules need a hidden layer: eq. 4 sets hidden layers' variances by in-degree, eq. 8 counts the Linear/Conv +
    ReLU layers on each input-output path, and the readout (eq. 2's mean-field ``1/n^2`` layer) is not one of them.
    """
    name = type(model).__name__
    if isinstance(model, nn.Linear):
        raise ExtractionError(
            f"{name}({model.in_features}, {model.out_features}) is only a readout layer: the rules need at least one "
            f"hidden layer (Linear/Conv + ReLU) before it (eq. 4 scales hidden layers by in-degree, eq. 8 counts "
            f"them on each path), so there is nothing to scale. Pass the whole network, e.g. nn.Sequential("
            f"nn.Linear({model.in_features}, width), nn.ReLU(), nn.Linear(width, {model.out_features})), or train this "
            f"layer without archscale (its own init, one learning rate)")
    if isinstance(model, _POOL_TYPES):
        raise ExtractionError(f"{name} is a single pooling layer: it has no weights, so there is nothing to scale; "
                              f"pass the whole network")
    if isinstance(model, _PARAM_TYPES):
        raise ExtractionError(
            f"{name} is a single layer with no readout: the rules need hidden layers between an input and a readout "
            f"Linear, so there is nothing to scale. Pass the whole network (e.g. nn.Sequential({name}(...), "
            f"nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes)))")
    own = [n for n, _ in model.named_parameters(recurse=False)]
    if own:
        raise ExtractionError(
            f"{name} computes with its own parameters ({', '.join(own)}) through functional calls, which fx sees "
            f"as plain operations, not Linear or Conv layers: make each layer a submodule (nn.Linear, nn.Conv2d), "
            f"or build the ArchGraph yourself")


def _apply(b: _Builder, v: _Val, spec: OpSpec, op: str) -> _Val:
    if spec.kind is None:
        return v
    if spec.kind is EdgeKind.ZERO:
        return _Val(v.anchor, EdgeKind.ZERO, 1, spec.module, op)
    if v.kind is EdgeKind.ZERO:
        return v
    if spec.kind is EdgeKind.PARAM:
        if v.kind is EdgeKind.PARAM:
            v = b.materialise(v)
        return _Val(v.anchor, EdgeKind.PARAM, spec.kernel_size, spec.module, op)
    if spec.kind is EdgeKind.POOL:
        if v.kind is EdgeKind.PARAM:
            return v
        return _Val(v.anchor, EdgeKind.POOL, max(spec.kernel_size, v.kernel if v.kind is EdgeKind.POOL else 1),
                    spec.module, op)
    # SKIP
    return v if v.kind is not None else _Val(v.anchor, EdgeKind.SKIP, 1, spec.module, op)


_QUERY_METHODS = {"size", "dim", "numel", "type", "get_device", "is_contiguous", "nelement"}


def _is_query(node: fx.Node) -> bool:
    """Shape/type queries: their result is metadata, not a feature."""
    if node.op == "call_method" and node.target in _QUERY_METHODS:
        return True
    return node.op == "call_function" and node.target in (getattr, len)


def _data_users(node: fx.Node) -> int:
    return sum(1 for u in node.users if not _is_query(u))


def _function(b: _Builder, node: fx.Node, env: dict):
    target = node.target
    if _is_query(node):
        return None
    raw = _tensors(node.args, env) + _tensors(list(node.kwargs.values()), env)
    if not raw:
        return None
    if node.op == "call_function" and target is operator.getitem:
        src = env.get(node.args[0].name) if isinstance(node.args[0], fx.Node) else None
        if isinstance(src, _Bundle) and isinstance(node.args[1], int):
            return src.items[node.args[1]]
        return src if isinstance(src, _Val) else None
    if (node.op == "call_function" and target in _STACK_FUNCS) or (node.op == "call_method" and target == "stack"):
        return _Bundle(_flatten(raw))
    is_mul = (node.op == "call_function" and target in _MUL_FUNCS) or (node.op == "call_method" and target == "mul")
    if is_mul and any(_is_zero_const(a) for a in node.args):
        v = _flatten(raw)[0]
        return _Val(v.anchor, EdgeKind.ZERO, 1, None, "zero")
    is_reduce = (node.op == "call_function" and target in _REDUCE_FUNCS) or \
        (node.op == "call_method" and target in ("sum", "mean"))
    if is_reduce and len(raw) == 1 and isinstance(raw[0], _Bundle):
        return b.merge(_flatten(raw))
    vals = _flatten(raw)
    if len(vals) == 1 and not (node.op == "call_function" and target in _MERGE_FUNCS and len(raw) > 1):
        return vals[0]
    return b.merge(vals)


def strip_readout(graph: ArchGraph, readout_module: str | None) -> tuple[ArchGraph, bool]:
    """``graph`` without its readout edge, when the readout is the one edge into the output node.

    The rules (``rules/paper.py``) treat a graph's edges as hidden layers (Linear/Conv + ReLU) and the readout as a
    separate linear layer after the graph's output node, so a whole-network graph from :func:`extract_graph`
    must lose its readout edge before the rule counts ``L_p``. Returns ``(graph, False)`` unchanged when the
    readout is not that edge (no readout, a readout with siblings, or layers after the readout).
    """
    if readout_module is None:
        return graph, False
    out = graph.num_nodes - 1
    into_out = [e for e in graph.edges if e.dst == out]
    if len(into_out) != 1:
        return graph, False
    e = into_out[0]
    if e.module != readout_module or e.kind is not EdgeKind.PARAM or e.src != out - 1 or graph.num_nodes < 3:
        return graph, False
    return ArchGraph(graph.num_nodes - 1, [x for x in graph.edges if x is not e]), True


def last_linear(model: nn.Module) -> str | None:
    """The name of the model's last ``nn.Linear`` (in module order): the readout the rules treat apart."""
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    return name


def model_graph(model: nn.Module, leaf: Callable[[nn.Module, str], bool] | None = None
                ) -> tuple[ArchGraph, str | None]:
    """The whole model's graph without its readout (:func:`strip_readout`), and the readout's module name (the
    model's last Linear layer). A model whose every Linear/Conv is that readout (``nn.Sequential(nn.Linear(8,
    3))``, as a bare ``nn.Linear`` is, :func:`_refuse_single_layer`) has no hidden layer for the rules to scale:
    an :class:`~nni_archscale.errors.ExtractionError` says so."""
    readout = last_linear(model)
    graph, _ = strip_readout(extract_graph(model, leaf=leaf), readout)
    layers = graph.parameterised_edges
    if readout is not None and layers and all(e.module == readout for e in layers):
        layer = model.get_submodule(readout)
        raise ExtractionError(
            f"{type(model).__name__}'s only Linear/Conv layer, {readout!r} (Linear({layer.in_features}, "
            f"{layer.out_features})), is its readout: the rules need at least one hidden layer (Linear/Conv + ReLU) "
            f"before it (eq. 4 scales hidden layers by in-degree, eq. 8 counts them on each path), so there is "
            f"nothing to scale. Pass the whole network, or train this model without archscale (its own init, one "
            f"learning rate)")
    return graph, readout
