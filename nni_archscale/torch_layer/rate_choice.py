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
    """The rules :func:`rule_rate` computes: the base rate, the DAG-cell rules, those measured against a reference."""
    return [r.name for r in map(registry.get, registry.rule_names())
            if r.base_rate or r.dag_cell_only or "reference" in r.needs]


def rule_rate(rule: str, model: nn.Module, base_lr: float, reference: Reference | None = None, batch=None,
              optimizer: str = "sgd", leaf=None, dag_cell: CellNetwork | None = None, init: str = "paper",
              batch_size: int | None = None) -> float:
    """The global rate ``rule`` gives ``model`` (not for ``graph``, whose rates come from the graph). The DAG-cell
    rules need ``dag_cell`` (:func:`.dag_cell.recognise`), the init and the training ``batch_size``."""
    entry = registry.get(rule)  # an unknown name: a RuleError listing the registered rules
    if entry.base_rate:  # shared
        return base_lr
    if entry.dag_cell_only:
        if dag_cell is None:
            raise RuleError(f"rate rule {rule} applies to the paper's DAG-cell MLP (a Linear+ReLU stem, a cell of "
                            f"width-to-width Linear edges, a Linear readout, no normalisation), and "
                            f"{type(model).__name__} is not one; use graph, segmented, measured or shared")
        anchor = from_text(reference.anchor_cell) if reference is not None and reference.anchor_cell else None
        return cell_rate(rule, base_lr, dag_cell, init, optimizer, batch_size or DEFAULT_CELL_BATCH, anchor)
    if "reference" not in entry.needs:  # graph (per group, from the graph) or a rule that computes its own rate
        raise RuleError(f"rate rule {rule!r} gives no one rate here (graph's rates come from the graph, a registered "
                        f"rule with its own rate function from RateRule.rate); apply it through the hook "
                        f"(hook.apply_rate_rule), or ask here for one of {', '.join(_global_rules())}")
    if "reference" in entry.optional and reference is None:  # segmented
        # no base network given: the graph rule's convention, a base whose every segment is one layer of kernel 3
        # (cost 1; eq. 8's base sum_p L_p^3 = 1), the network archscale calibrate trains for NAS-Bench-201
        return base_lr * segment_rate_factor(model, leaf=leaf)
    if reference is None:
        raise RuleError(f"the {rule} rule compares the candidate with the base network: pass reference= "
                        f"(torch_layer.rate_choice.reference_of(base_model, batch, optimizer))")
    if "batch" not in entry.needs:  # segmented: the segments' path sums, no measurement
        if reference.segment_factor is None:
            raise RuleError("the reference has no segment factor (fx could not trace the base network); use the "
                            "measured or shared rule for this space")
        return base_lr * segment_rate_factor(model, leaf=leaf) / reference.segment_factor
    if batch is None or reference.change is None:
        raise RuleError("the measured rule needs a training batch (batch=(x, y)) and a reference measured on a "
                        "batch; pass both, or use rate rule 'shared' or 'graph'")
    if reference.optimizer != optimizer:
        raise RuleError(f"the reference was measured for {reference.optimizer}, the candidate trains with "
                        f"{optimizer}; measure the reference with the same optimizer")
    return base_lr * reference.change / first_step_change(model, batch[0], batch[1], optimizer)


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
