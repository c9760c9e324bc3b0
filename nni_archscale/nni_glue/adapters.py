"""NNI sample / frozen model -> ArchGraph, and the one call that prepares a candidate.

* ``nb201-sample``: exact, from the NasBench201 sample dict (keys ``'<label>/<j>_<i>'`` = edge j->i, values
  ``none, skip_connect, conv_1x1, conv_3x3, avg_pool_3x3``; NAS-Bench-201's ``nor_conv_*`` names accepted).
* ``fx``: any other frozen model (custom ``ModelSpace`` with LayerChoice / InputChoice / Cell) through the torch.fx
  extractor. NNI's frozen choices are plain modules (the chosen candidate of a LayerChoice, ``ChosenInputs`` for
  an InputChoice, a Cell's loops unrolled over its chosen ops and inputs), and the reductions are sums, stacks
  and concatenations, which the extractor reads exactly; so for these spaces fx *is* the exact adapter.

Rule context for custom spaces (the ``fx`` adapter), and why:

* the graph is the **whole network** the candidate is (stem, every searched block, every fixed layer), not one
  cell: in a custom space the choices can sit anywhere (a LayerChoice per layer of a chain, several different
  cells), so there is no one repeated cell to count, and the paper's eq. 1 speaks about the network it trains;
* the **readout is taken out of the graph** (:func:`~nni_archscale.torch_layer.fx_extract.strip_readout`) and
  gets the rule's readout init (mean-field ``1/fan_in^2`` for ``paper``); the rules count ``L_p`` as the ReLU
  layers on a path (§3.3), the stem's and the searched layers', never the linear readout's;
* the context is ``dag`` (``L_p = k_p``, base ``sum_p L_p^3 = 1``): with the stem's conv inside the graph,
  ``k_p`` already is NAS-Bench-201's ``1 + k_p`` (stem + cell), and the base network (one ReLU layer, then the
  readout: every searched op a skip) is the same base ``archscale calibrate`` trains for NAS-Bench-201, so a base
  rate ``c`` means the same thing for both adapters;
* stacking many normalised cells multiplies path counts (and shrinks the rate) where NAS-Bench-201's convention
  counts one cell; a space that wants the one-cell reading builds the cell's ArchGraph itself and calls
  :func:`~nni_archscale.torch_layer.hook.prepare_graph` (the design leaves that choice to evidence).

Every preparation logs which adapter was used and the graph's summary (logger ``nni_archscale``).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Mapping

from torch import nn

from ..graph import ArchGraph, Edge, EdgeKind
from ..planner import nb201_edge_module
from ..run_errors import ExtractionError
from ..torch_layer.fx_extract import extract_graph, strip_readout
from ..torch_layer.hook import HookConfig, Prepared, prepare_graph, prepare_nb201

log = logging.getLogger("nni_archscale")

#: NNI's NasBench201 op names (and NAS-Bench-201's) -> (kind, kernel size).
NNI_NB201_OPS: dict[str, tuple[EdgeKind, int]] = {
    "none": (EdgeKind.ZERO, 1),
    "skip_connect": (EdgeKind.SKIP, 1),
    "conv_1x1": (EdgeKind.PARAM, 1),
    "conv_3x3": (EdgeKind.PARAM, 3),
    "nor_conv_1x1": (EdgeKind.PARAM, 1),
    "nor_conv_3x3": (EdgeKind.PARAM, 3),
    "avg_pool_3x3": (EdgeKind.POOL, 3),
}
_NB201_KEY = re.compile(r"^(?P<label>.+)/(?P<j>\d+)_(?P<i>\d+)$")


def current_sample() -> dict | None:
    """The architecture dict of the running NNI trial (both engines), or None outside NNI."""
    import nni

    param = nni.get_current_parameter()
    if param is None:
        return None
    sample = getattr(param, "sample", None)
    if sample is None and isinstance(param, Mapping):
        sample = param
    return dict(sample) if sample is not None else None


def is_nb201_sample(sample: Mapping[str, Any] | None, label: str = "cell") -> bool:
    if not sample or not isinstance(sample, Mapping):
        return False
    keys = [k for k in sample if isinstance(k, str) and k.startswith(label + "/")]
    return bool(keys) and all(_NB201_KEY.match(k) and isinstance(sample[k], str) and sample[k] in NNI_NB201_OPS
                              for k in keys)


def graph_from_nb201_sample(sample: Mapping[str, Any], label: str = "cell") -> ArchGraph:
    """The NAS-Bench-201 cell of an NNI sample; edges name their op module (``layers.<i-1>.<j>``).

    The sample must name every edge ``j -> i`` (``0 <= j < i <= top``) of the cell exactly once: a missing edge
    would silently become "absent" here while the frozen model still holds an operation there.
    """
    if not isinstance(sample, Mapping):
        raise ExtractionError(
            f"an NNI sample must be a dict of choice label -> chosen value, got {type(sample).__name__}; pass "
            f"the running trial's sample (nni.get_current_parameter().sample) or a dict such as "
            f"{{'{label}/0_1': 'conv_3x3', ...}}"
        )
    edges: list[Edge] = []
    top = 0
    for key, value in sample.items():
        m = _NB201_KEY.match(key) if isinstance(key, str) else None
        if m is None or m.group("label") != label:
            continue
        j, i = int(m.group("j")), int(m.group("i"))
        if not isinstance(value, str) or value not in NNI_NB201_OPS:
            raise ExtractionError(
                f"NNI sample {key!r} = {value!r} is not a NAS-Bench-201 operation; "
                f"expected one of {', '.join(NNI_NB201_OPS)}"
            )
        kind, q = NNI_NB201_OPS[value]
        e = Edge(j, i, kind, q, op=value)
        edges.append(Edge(j, i, kind, q, op=value, module=nb201_edge_module(e)))
        top = max(top, i)
    if not edges:
        raise ExtractionError(
            f"the NNI sample has no '{label}/<j>_<i>' keys ({sorted(sample)[:4]}...); it is not a NasBench201 "
            f"sample: use the fx adapter (prepare_candidate(..., adapter='fx'))"
        )
    present = {(e.src, e.dst) for e in edges}
    missing = [f"{label}/{j}_{i}" for i in range(1, top + 1) for j in range(i) if (j, i) not in present]
    if missing:
        raise ExtractionError(
            f"the NNI sample lacks {', '.join(repr(k) for k in missing)}: a NasBench201 cell with {top + 1} nodes "
            f"needs a choice for every edge j->i (j < i); pass the complete sample NNI produced (use 'none' for "
            f"an absent edge)"
        )
    return ArchGraph(top + 1, edges)


def nb201_cells_per_stage(model: nn.Module) -> int:
    n = getattr(model, "num_modules", None)
    if isinstance(n, int) and n >= 1:
        return n
    cells = getattr(model, "cells", None)
    if cells is None:
        raise ExtractionError(f"{type(model).__name__} has no 'cells'; it is not NNI's NasBench201 network")
    return (len(cells) - 2) // 3


def last_linear(model: nn.Module) -> str | None:
    name = None
    for n, m in model.named_modules():
        if isinstance(m, nn.Linear):
            name = n
    return name


def graph_from_model(model: nn.Module) -> tuple[ArchGraph, str | None]:
    """The ``fx`` adapter: the whole frozen network's graph without its readout, and the readout's module name
    (the model's last Linear layer; see the module docstring for why the readout leaves the graph)."""
    readout = last_linear(model)
    graph, _ = strip_readout(extract_graph(model), readout)
    return graph, readout


def prepare_candidate(model: nn.Module, config: HookConfig, sample: Mapping[str, Any] | None = None,
                      adapter: str = "auto", generator=None, label: str = "cell") -> Prepared:
    """Pick the adapter, re-initialise ``model`` and build its param groups; log adapter and graph summary.

    ``sample`` defaults to the running trial's sample. ``adapter``: ``auto`` (NasBench201 sample when the sample
    is one, else fx), ``nb201-sample`` or ``fx``.
    Raises :class:`~nni_archscale.errors.NoPathError` for a candidate without an input-output path.
    """
    if sample is None and adapter != "fx":
        sample = current_sample()
    if adapter == "auto":
        adapter = "nb201-sample" if is_nb201_sample(sample, label) and hasattr(model, "cells") else "fx"
    if adapter == "nb201-sample":
        cell = graph_from_nb201_sample(sample or {}, label)
        prepared = prepare_nb201(model, cell, nb201_cells_per_stage(model), config, generator, adapter)
    elif adapter == "fx":
        graph, readout = graph_from_model(model)
        prepared = prepare_graph(model, graph, config, "dag", readout, generator, adapter)
    else:
        raise ExtractionError(f"unknown adapter {adapter!r}; use auto, nb201-sample or fx")
    log.info("archscale: %s", prepared.summary())
    return prepared
