"""Which learning-rate rule a prepared candidate trains with, and the guard rails around it.

The hook first initialises the candidate and computes the graph rule (eq. 8/9 via :mod:`nni_archscale.rules.paper`).
A *rate rule* then decides the rate actually applied:

* ``graph``: eq. 8/9 on the adapter's graph, paths counted by the init's preset (per edge with ``per_edge``): exact
  where the paper's assumptions hold (Linear/Conv + ReLU edges, no normalisation);
* ``segmented``: eq. 8/9 inside the blocks normalisation layers delimit (:mod:`.segments`), relative to the
  base network: ``base_lr · f(candidate) / f(base)``;
* ``measured``: the first step's change of the readout's input, relative to the base network's
  (:mod:`.measured_rate`): ``base_lr · m_base / m``; needs a batch;
* ``shared``: ``base_lr`` for every candidate (one rate, tuned once on the base network);
* the DAG-cell rules ``readout-limited-sgd``, ``feature-sgd``/``feature-adam`` (``feature`` picks by optimizer):
  the evidence-backed rules of :mod:`nni_archscale.rules.defaults` for the paper's DAG-cell MLP
  (:func:`nni_archscale.rules.first_step.cell_rate`); they apply to a model recognised as one (:mod:`.dag_cell`),
  with ``base_lr`` calibrated on the base cell ``0_00_000_2000``, or on the reference's base network when it is
  itself a DAG-cell MLP.

Which one is the default for which network is decided by measurement (``reports/spaces-maxlr/``), not here:
see :mod:`nni_archscale.rules.defaults`. Guard rails: a rate more than :data:`MAX_OCTAVES` octaves from the base rate
is clamped to that bound and reported (with the parameter group it hit); parameterised modules the graph
extractor cannot model (anything owning parameters that is not Linear, Conv or a normalisation layer) are
reported by name. Nothing is applied silently: every report is a note on the preparation and a log warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from ..core.formats import from_text, to_text
from ..errors import ExtractionError, RuleError
from ..rules import registry
from ..rules.first_step import cell_rate
from ..core.networks import CellNetwork
from .dag_cell import recognise
from .measured_rate import first_step_change
from .segments import segment_rate_factor

#: every rate rule the hook applies, as registered at import (``auto`` is no rule: the caller looks it up in the
#: defaults, nni_glue.adapters.resolve_rate_rule)
RATE_RULES = registry.rule_names()
#: the readout-limited rule's batch size when none is given: the batch of every measurement behind it
DEFAULT_CELL_BATCH = 32
#: a rate further than this from the base rate (in octaves, either way) is clamped and reported
MAX_OCTAVES = 4.0

_MODELLED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
             nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


@dataclass(frozen=True)
class Reference:
    """What the rules compare a candidate with: the base network's measurements (JSON-able floats, so a
    reference travels to NNI trials in their configuration)."""

    optimizer: str
    change: float | None = None          # first_step_change of the base network (the measured rule)
    segment_factor: float | None = None  # segment_rate_factor of the base network (the segmented rule)
    #: the base network's cell (formats.to_text) when it is the paper's DAG-cell MLP (the DAG-cell rules)
    anchor_cell: str | None = None

    def to_dict(self) -> dict:
        return {"optimizer": self.optimizer, "change": self.change, "segment_factor": self.segment_factor,
                "anchor_cell": self.anchor_cell}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Reference | None":
        return None if d is None else cls(d["optimizer"], d.get("change"), d.get("segment_factor"),
                                          d.get("anchor_cell"))


def reference_of(base_model: nn.Module, batch, optimizer: str, leaf=None) -> Reference:
    """Measure the base network (initialised as the candidates will be) once: its segment factor (None when fx
    cannot trace it: the segmented rule then says so), and its first-step change on ``batch`` (``(x, y)``) when a
    batch is given. ``leaf``: modules fx keeps whole (see :func:`.segments.segment_sums`)."""
    change = first_step_change(base_model, batch[0], batch[1], optimizer) if batch is not None else None
    try:
        factor = segment_rate_factor(base_model, leaf=leaf)
    except ExtractionError:
        factor = None
    shape = recognise(base_model, leaf=leaf)
    return Reference(optimizer, change, factor, to_text(shape.cell) if shape is not None else None)


def _global_rules() -> list[str]:
    """The rules that give one rate for the whole model (every registered rule but ``graph``'s per-group kind)."""
    return [r.name for r in map(registry.get, registry.rule_names()) if not r.per_group]


def shared_rate(i: registry.RuleInputs) -> float:
    """``shared``: the base rate for every candidate."""
    return i.base_lr


def dag_cell_rate(i: registry.RuleInputs) -> float:
    """The DAG-cell rules (``readout-limited-sgd``, ``feature``, ``feature-sgd``, ``feature-adam``):
    :func:`nni_archscale.rules.first_step.cell_rate` on the model read as the paper's DAG-cell MLP, ``base_lr``
    calibrated on the reference's cell when it is one, else on the base cell ``0_00_000_2000``."""
    if i.dag_cell is None:
        raise RuleError(f"rate rule {i.rule} applies to the paper's DAG-cell MLP (a Linear+ReLU stem, a cell of "
                        f"width-to-width Linear edges, a Linear readout, no normalisation), and "
                        f"{type(i.model).__name__} is not one; use graph, segmented, measured or shared")
    ref = i.reference
    anchor = from_text(ref.anchor_cell) if ref is not None and ref.anchor_cell else None
    return cell_rate(i.rule, i.base_lr, i.dag_cell, i.init, i.optimizer, i.batch_size or DEFAULT_CELL_BATCH, anchor)


def segmented_rate(i: registry.RuleInputs) -> float:
    """``segmented``: eq. 8/9 inside the blocks normalisation layers delimit (:mod:`.segments`), relative to the
    base network's factor; without a reference, relative to the graph rule's convention: a base whose every
    segment is one layer of kernel 3 (cost 1; eq. 8's base sum_p L_p^3 = 1), the network ``archscale calibrate``
    trains for NAS-Bench-201."""
    if i.reference is None:
        return i.base_lr * segment_rate_factor(i.model, leaf=i.leaf)
    if i.reference.segment_factor is None:
        raise RuleError("the reference has no segment factor (fx could not trace the base network); use the "
                        "measured or shared rule for this space")
    return i.base_lr * segment_rate_factor(i.model, leaf=i.leaf) / i.reference.segment_factor


def measured_rate(i: registry.RuleInputs) -> float:
    """``measured``: the first step's change of the readout's input, relative to the base network's
    (:mod:`.measured_rate`): ``base_lr · m_base / m``."""
    if i.reference is None:
        raise RuleError("the measured rule compares the candidate with the base network: pass reference= "
                        "(torch_layer.rate_choice.reference_of(base_model, batch, optimizer))")
    if i.batch is None or i.reference.change is None:
        raise RuleError("the measured rule needs a training batch (batch=(x, y)) and a reference measured on a "
                        "batch; pass both, or use rate rule 'shared' or 'graph'")
    if i.reference.optimizer != i.optimizer:
        raise RuleError(f"the reference was measured for {i.reference.optimizer}, the candidate trains with "
                        f"{i.optimizer}; measure the reference with the same optimizer")
    return i.base_lr * i.reference.change / first_step_change(i.model, i.batch[0], i.batch[1], i.optimizer)


for _rule, _rate in ((registry.SHARED, shared_rate), (registry.SEGMENTED, segmented_rate),
                     (registry.MEASURED, measured_rate), (registry.FEATURE, dag_cell_rate),
                     (registry.FEATURE_SGD, dag_cell_rate), (registry.FEATURE_ADAM, dag_cell_rate),
                     (registry.READOUT_LIMITED_SGD, dag_cell_rate)):
    registry.implement(_rule.name, _rate)


def rule_rate(rule: str, model: nn.Module, base_lr: float, reference: Reference | None = None, batch=None,
              optimizer: str = "sgd", leaf=None, dag_cell: CellNetwork | None = None, init: str = "paper",
              batch_size: int | None = None) -> float:
    """The one rate the registered rule ``rule`` gives ``model`` (its
    :attr:`~nni_archscale.rules.registry.RateRule.rate`), outside the hook: for a rule that reads only the model and
    the measurements (the graph rule's rates come from a prepared candidate's graph, :func:`.hook.apply_rate_rule`)."""
    entry = registry.get(rule)  # an unknown name: a RuleError listing the registered rules
    if entry.rate is None:
        raise RuleError(f"rate rule {rule!r} gives no one rate here (graph's rates come from the graph); apply it "
                        f"through the hook (hook.apply_rate_rule), or ask here for one of "
                        f"{', '.join(_global_rules())}")
    return entry.rate(registry.RuleInputs(model, None, None, None, base_lr, None, optimizer, reference, batch,
                                          batch_size, init, dag_cell, leaf, rule))


def clamp_octaves(rate: float, base_lr: float, where: str) -> tuple[float, str | None]:
    """``rate`` within :data:`MAX_OCTAVES` of ``base_lr``; the note says what was clamped, or None."""
    octaves = math.log2(rate / base_lr)
    if abs(octaves) <= MAX_OCTAVES:
        return rate, None
    bound = base_lr * 2.0 ** math.copysign(MAX_OCTAVES, octaves)
    return bound, (f"guard: {where}: the rule gave {rate:.4g}, {octaves:+.1f} octaves from the base rate "
                   f"{base_lr:.4g}; clamped to {bound:.4g} ({MAX_OCTAVES:g} octaves). Check the rule "
                   f"(rate_rule) for this network")


def unmodelled_layers(model: nn.Module) -> list[str]:
    """Modules that own parameters directly but are neither Linear/Conv nor a normalisation layer: the graph
    extractor passes them through, so no path-count rule accounts for their weights."""
    out = []
    for name, m in model.named_modules():
        if isinstance(m, _MODELLED):
            continue
        if any(True for _ in m.parameters(recurse=False)):
            out.append(f"{name or '<root>'} ({type(m).__name__})")
    return out


def has_normalisation(model: nn.Module) -> bool:
    return any(isinstance(m, _MODELLED[4:]) for m in model.modules())
