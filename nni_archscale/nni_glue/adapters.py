"""NNI sample / frozen model -> ArchGraph, and the one call that prepares a candidate.

* ``nb201-sample``: exact, from the NasBench201 sample dict (keys ``'<label>/<j>_<i>'`` = edge j->i, values
  ``none, skip_connect, conv_1x1, conv_3x3, avg_pool_3x3``; NAS-Bench-201's ``nor_conv_*`` names accepted).
* ``nb201-model``: the same exact cell rule, with the sample recovered from a frozen NNI ``NasBench201`` model
  itself (:func:`nb201_sample_from_model`: its cells' op modules, by type and structure) when no sample is given
  and none comes from a running trial; ``auto`` picks it before falling back to fx.
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

from ..errors import ExtractionError, shorten
from ..core.formats import NB201_OPS, NB201_TO_NNI_OPS
from ..core.graph import ArchGraph, Edge, EdgeKind
from ..rules.defaults import rate_rule_for
from ..rules.planner import nb201_cell_indices, nb201_edge_module, nb201_stage_size
from ..rules.registry import is_auto
from ..torch_layer.dag_cell import dag_cell_shape, recognise
from ..torch_layer.fx_extract import model_graph
from ..torch_layer.hook import HookConfig, Prepared, apply_rate_rule, prepare_graph, prepare_nb201
from ..torch_layer.rate_choice import Reference, has_normalisation

log = logging.getLogger("nni_archscale")

#: the adapter that picks itself: NNI's NasBench201 sample, or the sample recovered from its frozen model, or fx
AUTO_ADAPTER = "auto"

#: NNI's NasBench201 op names (and NAS-Bench-201's) -> (kind, kernel size), derived from the one op table of
#: :mod:`nni_archscale.core.formats` (:data:`~nni_archscale.core.formats.NB201_OPS`, ``NB201_TO_NNI_OPS``).
NNI_NB201_OPS: dict[str, tuple[EdgeKind, int]] = {
    **{NB201_TO_NNI_OPS[op]: kind for op, kind in NB201_OPS.items()},
    **NB201_OPS,
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
    n = nb201_stage_size(len(cells))
    if n is None:
        raise ExtractionError(f"{type(model).__name__} has {len(cells)} blocks in 'cells', not 3n + 2 (n cells per "
                              f"stage and 2 reductions); it is not laid out as NNI's NasBench201 network")
    return n


def _nb201_op_name(op: nn.Module) -> str | None:
    """The NNI NasBench201 op name of a frozen cell edge's module, or None when it is not one of NNI's ops.

    Recognised by type and structure (NNI's ``nni.nas.hub.pytorch.nasbench201`` classes): ``Zero`` -> none,
    ``nn.Identity`` -> skip_connect, ``ReLUConvBN`` (ReLU, stride-1 Conv2d, BatchNorm2d) with a 1x1 / 3x3 kernel ->
    conv_1x1 / conv_3x3, ``Pooling`` (an ``nn.AvgPool2d(3)`` without a preprocessing conv) -> avg_pool_3x3.
    Anything else (an unfrozen ``LayerChoice``, max pooling, ``FactorizedReduce``, a user's module) is None.
    """
    name = type(op).__name__
    if isinstance(op, nn.Identity):
        return "skip_connect"
    if name == "Zero" and getattr(op, "is_zero", False) is True and not any(True for _ in op.parameters()):
        return "none"
    if name == "ReLUConvBN":
        seq = getattr(op, "op", None)
        if not isinstance(seq, nn.Sequential) or len(seq) != 3:
            return None
        relu, conv, bn = seq
        if not (isinstance(relu, nn.ReLU) and type(conv) is nn.Conv2d and isinstance(bn, nn.BatchNorm2d)):
            return None
        if conv.groups != 1 or tuple(conv.stride) != (1, 1) or tuple(conv.dilation) != (1, 1):
            return None
        return {(1, 1): "conv_1x1", (3, 3): "conv_3x3"}.get(tuple(conv.kernel_size))
    if name == "Pooling":
        pool = getattr(op, "op", None)
        if getattr(op, "preprocess", None) is not None or type(pool) is not nn.AvgPool2d:
            return None
        k, stride = pool.kernel_size, pool.stride
        if k not in (3, (3, 3)) or stride not in (1, (1, 1)):
            return None
        return "avg_pool_3x3"
    return None


def _nb201_cell_sample(cell: nn.Module, label: str) -> tuple[dict[str, str] | None, str]:
    """One frozen NasBench201Cell's sample (``'<label>/<j>_<i>'`` -> op), or (None, why not)."""
    layers = getattr(cell, "layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        return None, "its 'layers' is not a non-empty ModuleList"
    sample: dict[str, str] = {}
    for i, node_ops in enumerate(layers, start=1):
        if not isinstance(node_ops, nn.ModuleList) or len(node_ops) != i:
            return None, f"layers[{i - 1}] is not a ModuleList of {i} ops (edges j->{i}, j < {i})"
        for j, op in enumerate(node_ops):
            value = _nb201_op_name(op)
            if value is None:
                return None, (f"layers[{i - 1}][{j}] (edge {j}->{i}) is a {type(op).__name__}, not a frozen "
                              f"NasBench201 op ({', '.join(NB201_TO_NNI_OPS.values())})")
            sample[f"{label}/{j}_{i}"] = value
    return sample, ""


def nb201_sample_from_model(model: nn.Module, label: str = "cell") -> dict[str, str] | None:
    """The NNI sample dict (``{'<label>/<j>_<i>': op}``) of a frozen ``nni.nas.hub.pytorch.NasBench201`` model,
    recovered from the model itself, or None when ``model`` is not one.

    Recognition is by structure and types, never by a sample: the model's class is named ``NasBench201`` and has a
    ``cells`` ModuleList laid out as NNI builds it (``3n + 2`` blocks, the searched cells - those with ``layers`` -
    everywhere but the two reduction blocks at ``n`` and ``2n + 1``); each searched cell's ``layers[i-1][j]`` is the
    op of edge ``j -> i`` and must be one of NNI's frozen NasBench201 ops (see :func:`_nb201_op_name`); an unfrozen
    space (LayerChoices) is not recognised. NNI's space shares one choice per edge across all cells, so every
    searched cell must hold the same ops: a model whose cells differ (modified by a user) is not one cell stacked,
    and gets None (logged at INFO, as is every other reason a ``NasBench201``-named model is not recognised), so
    that ``auto`` falls back to the fx adapter.
    """
    if type(model).__name__ != "NasBench201":
        return None
    cells = getattr(model, "cells", None)
    if not isinstance(cells, nn.ModuleList):
        log.info("archscale: %s has no 'cells' ModuleList; not recognised as NNI's frozen NasBench201",
                 type(model).__name__)
        return None
    searched = [k for k, c in enumerate(cells) if hasattr(c, "layers")]
    n = nb201_stage_size(len(cells))
    expected, _ = nb201_cell_indices(n) if n is not None else ([], [])
    declared = getattr(model, "num_modules", n)
    if n is None or searched != expected or declared != n:
        log.info("archscale: NasBench201 model's cells (%d blocks, searched cells at %s, num_modules=%r) are not "
                 "laid out as NNI's NasBench201 (3n+2 blocks, reductions at n and 2n+1); not recognised, using fx",
                 len(cells), searched, declared)
        return None
    recovered: dict[str, str] | None = None
    for k in searched:
        sample, why = _nb201_cell_sample(cells[k], label)
        if sample is None:
            log.info("archscale: NasBench201 model's cells.%d is not a frozen NasBench201 cell: %s; not "
                     "recognised, using fx", k, why)
            return None
        if recovered is None:
            recovered = sample
        elif sample != recovered:
            diff = sorted(key for key in set(sample) | set(recovered) if sample.get(key) != recovered.get(key))
            log.info("archscale: NasBench201 model's cells.%d differs from cells.%d on %s (NNI's space shares "
                     "one choice across cells; this model was modified): not one stacked cell, using fx",
                     k, searched[0], ", ".join(diff))
            return None
    return recovered


#: NNI modules whose own forward torch.fx cannot trace (NasBench101's cell branches on tensor shapes): the fx
#: adapter keeps each whole, as one parameterised layer, and the preparation says so
UNTRACEABLE = ("_NasBench101CellFixed", "NasBench101Cell")


def nni_leaf(module: nn.Module, name: str) -> bool:
    return type(module).__name__ in UNTRACEABLE


def graph_from_model(model: nn.Module) -> tuple[ArchGraph, str | None]:
    """The ``fx`` adapter: the whole frozen network's graph without its readout, and the readout's module name
    (the model's last Linear layer; see the module docstring for why the readout leaves the graph)."""
    return model_graph(model, leaf=nni_leaf)


def prepare_candidate(model: nn.Module, config: HookConfig | Mapping[str, Any],
                      sample: Mapping[str, Any] | None = None, adapter: str = AUTO_ADAPTER, generator=None,
                      label: str = "cell", batch=None, reference: Reference | None = None) -> Prepared:
    """Pick the adapter, re-initialise ``model``, set its rates by the rate rule and build its param groups; log
    adapter and graph summary.

    ``sample`` defaults to the running trial's sample. ``adapter``: ``auto`` (NasBench201 sample when the sample
    is one; else, for a frozen NNI NasBench201 model, the sample recovered from the model, recorded as
    ``nb201-model``; else fx), ``nb201-sample`` (without a sample, the one recovered from the model) or ``fx``.
    The rate rule is ``config.rate_rule``; ``auto`` takes the evidence-backed default for the network's family
    (:func:`network_family`, :func:`nni_archscale.rules.defaults.default_rate_rule`). The ``measured`` rule needs
    ``batch`` (``(x, y)``, a training batch) and ``reference`` (the base network's
    :func:`~nni_archscale.torch_layer.rate_choice.reference_of`); without them a default ``measured`` falls back
    to one shared rate, with a note. ``segmented`` without ``reference`` compares with the graph rule's base (one
    layer per segment), with a note.
    ``config`` is a :class:`HookConfig` or a dict of its options (``{"base_lr": 0.1}``, as the README's hooks
    pass it).
    Raises :class:`~nni_archscale.errors.NoPathError` for a candidate without an input-output path.
    """
    check_model(model, "prepare_candidate()")
    config = HookConfig.of(config)
    if sample is None and adapter != "fx":
        sample = current_sample()
    name = adapter
    if adapter == AUTO_ADAPTER:
        if is_nb201_sample(sample, label) and hasattr(model, "cells"):
            adapter = name = "nb201-sample"
        else:
            recovered = nb201_sample_from_model(model, label)
            if recovered is not None:
                sample, adapter, name = recovered, "nb201-sample", "nb201-model"
            else:
                adapter = name = "fx"
    elif adapter == "nb201-sample" and not sample:
        recovered = nb201_sample_from_model(model, label)
        if recovered is not None:
            sample, name = recovered, "nb201-model"
    if adapter == "nb201-sample":
        cell = graph_from_nb201_sample(sample or {}, label)
        prepared = prepare_nb201(model, cell, nb201_cells_per_stage(model), config, generator, name)
    elif adapter == "fx":
        graph, readout = graph_from_model(model)
        prepared = prepare_graph(model, graph, config, "dag", readout, generator, adapter)
    else:
        raise ExtractionError(f"unknown adapter {adapter!r}; use auto, nb201-sample or fx")
    dag_cell = dag_cell_shape(model, graph, readout, nni_leaf) if adapter == "fx" else None
    family = "dag-cell" if dag_cell is not None else network_family(model, name, recognised=False)
    rule = resolve_rate_rule(config, family)
    apply_rate_rule(prepared, model, rule, reference, batch, explicit=not is_auto(config.rate_rule), leaf=nni_leaf,
                    dag_cell=dag_cell)
    whole = [f"{n} ({type(m).__name__})" for n, m in model.named_modules() if n and nni_leaf(m, n)]
    if adapter == "fx" and whole:
        note = (f"guard: fx cannot trace inside {', '.join(whole[:4])}{' ...' if len(whole) > 4 else ''}: each is "
                f"counted as one layer and only its first conv follows the rule's init")
        log.warning("archscale: %s", note)
        prepared.notes.append(note)
    log.info("archscale: %s", prepared.summary())
    return prepared


def check_model(model: object, caller: str) -> None:
    """``model`` must be the candidate itself, a ``torch.nn.Module`` (not a name, not None)."""
    if not isinstance(model, nn.Module):
        given = shorten(model) if isinstance(model, str) or model is None else type(model).__name__
        raise ExtractionError(f"{caller} needs the candidate model, a torch.nn.Module, got {given}; pass the model "
                              f"NNI hands the trial (the frozen candidate), not its name")


#: NNI hub model spaces -> the family whose measurement decides their default rate rule (reports/spaces-maxlr/)
SPACE_FAMILIES = {"NasBench201": "nb201", "NasBench101": "cells", "DARTS": "cells", "ENAS": "cells",
                  "NASNet": "cells", "AmoebaNet": "cells", "PNAS": "cells", "NDS": "cells",
                  "ProxylessNAS": "mobile", "MobileNetV3Space": "mobile", "ShuffleNetSpace": "mobile"}


def space_family(space: str) -> str:
    """The family of one of ``archscale search``'s spaces (:data:`SPACE_FAMILIES` of its NNI class)."""
    from .spaces import SPACES

    return SPACE_FAMILIES.get(SPACES[space].nni_class, "cells")


def network_family(model: nn.Module, adapter: str | None = None, recognised: bool | None = None) -> str:
    """``nb201`` (NNI's NasBench201, by sample or model), ``cells`` (the NAS cell spaces with batch norm, and any
    other model with normalisation layers), ``mobile`` (ProxylessNAS, MobileNetV3Space, ShuffleNetSpace),
    ``dag-cell`` (the paper's DAG-cell MLP, :func:`~nni_archscale.torch_layer.dag_cell.recognise`) or ``plain``
    (no normalisation: the paper's setting, where the graph rule is exact). ``recognised``: whether the model was
    already recognised as a DAG-cell MLP (None: find out, which traces it once more)."""
    if adapter in ("nb201-sample", "nb201-model"):
        return "nb201"
    for cls in type(model).__mro__:
        if cls.__name__ in SPACE_FAMILIES:
            return SPACE_FAMILIES[cls.__name__]
    if has_normalisation(model):
        return "cells"
    if recognised is None:
        recognised = adapter in (None, "fx") and recognise(model, leaf=nni_leaf) is not None
    return "dag-cell" if recognised else "plain"


def resolve_rate_rule(config: HookConfig, family: str) -> str:
    """The rate rule a candidate of ``family`` trains with: ``config.rate_rule``, or its family's default
    (:func:`~nni_archscale.rules.defaults.rate_rule_for`)."""
    return rate_rule_for(config.rate_rule, family, config.optimizer, config.scheme.value)
