"""The hook's torch side: graph + rule -> re-initialised model + optimizer param groups, in one call.

``prepare_nb201`` handles NNI's NAS-Bench-201 network (cell graph from the sample, whole-network init plan from
:mod:`nni_archscale.rules.planner`); ``prepare_graph`` handles any model whose searched graph names its modules
(``Edge.module``), e.g. a graph from the fx extractor. Neither imports NNI.

The order is: initialise (eq. 4 with the target's in-degree for hidden layers, eq. 2's mean-field ``1/n^2``
readout), compute the rate by the chosen rate rule (eq. 8/9's path sum for ``graph``, the registry's rule
otherwise), then build the optimizer's param groups once, with that rate (:func:`apply_rate_rule`; a
``Prepared`` used without a rule builds them on first use with the graph rule's rates).

Weights that are not the hook's to set: frozen tensors (``requires_grad=False``, a pretrained backbone) are
neither re-initialised nor put in a param group, and a tensor tied between two modules (an input embedding
shared with the readout) is initialised once, by its input-side use, and sits in one group
(:mod:`.apply`); the notes say so. Freezing does not change the graph: a frozen Linear/Conv still adds into its
target node, so the trainable layers beside and after it keep eq. 4's in-degree scaling with it counted, and
its paths stay in eq. 8's sum; what the rules then assume, that the frozen layers are as the rule would
initialise them, the note states.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Mapping

import torch
from torch import nn

from ..core.graph import ArchGraph
from ..rules.planner import InitPlan, graph_plan, module_rates, nb201_cell_indices, nb201_output_scales, nb201_plan
from ..rules.presets import INITS, Init
from ..rules.paper import Scaling, check_base_lr, scale
from ..errors import RuleError, shorten
from .apply import InitReport, apply_init, group_names
from .node_scales import apply_output_scales
from .param_groups import OPTIMIZERS, build_param_groups, make_optimizer, make_scheduler
from ..core.networks import CellNetwork
from ..rules import registry
from .rate_choice import DEFAULT_CELL_BATCH, Reference, clamp_octaves, unmodelled_layers

log = logging.getLogger("nni_archscale")

#: Largest float32, the type of the parameters a rate multiplies: a larger rate overflows inside the optimizer.
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


@dataclass(frozen=True)
class HookConfig:
    """What the hook applies: the init and the rate rule (two independent choices, :mod:`nni_archscale.rules.presets`
    and :mod:`nni_archscale.rules.registry`), the base rate ``c`` and the optimizer the scaled rates go into."""

    base_lr: float = 0.1
    #: the init (:class:`nni_archscale.rules.presets.Init`): "paper" (eq. 2/4), "exact" (the paper's plus fixed
    #: node-sum scalars keeping every node's scale; NB201 cells), "release" (the authors' code; the graph rule then
    #: counts paths as that code does) or "standard" (He/Kaiming)
    init: str = "paper"
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: str = "cosine"
    per_edge: bool = False
    #: the learning-rate rule (torch_layer.rate_choice): "auto" (the evidence-backed default for the network's
    #: family, nni_archscale.rules.defaults.default_rate_rule), "graph" (eq. 8/9 path counts), "segmented",
    #: "measured", "shared", or a DAG-cell rule ("readout-limited-sgd", "feature", "feature-sgd", "feature-adam")
    rate_rule: str = "auto"
    #: the training batch size (the readout-limited rule's cap is linear in it); None: 32, the batch of every
    #: measurement behind that rule
    batch_size: int | None = None

    def __post_init__(self):
        self._check_numbers()
        if not registry.is_auto(self.rate_rule):
            registry.get(self.rate_rule)  # an unknown name is a RuleError listing the registered rules
        # an Init is kept by name (JSON for NNI trials); None, as a Python default, is the default init
        object.__setattr__(self, "init", Init.of(self.init if self.init is not None else Init.PAPER).value)
        if self.optimizer not in OPTIMIZERS:
            raise RuleError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}")

    def _check_numbers(self) -> None:
        """Refuse, when the config is made, numbers the optimizer would refuse later or take silently: a base rate
        that is not a positive finite number within float32's range (a string is not one), a momentum outside
        [0, 1), a negative or non-finite weight decay, a batch size that is not a positive integer."""
        check_base_lr(self.base_lr)
        if self.base_lr > FLOAT32_MAX:  # a huge rate that fits still trains, to a "diverged" outcome
            raise RuleError(f"base_lr {shorten(self.base_lr)} does not fit float32 (at most {FLOAT32_MAX:.4g}), in "
                            f"which the optimizer applies it; pass the rate calibrated on the base network, e.g. 0.1")
        if not (_real(self.momentum) and 0 <= self.momentum < 1):
            raise RuleError(f"momentum must be a number in [0, 1), got {shorten(self.momentum)}; e.g. 0.9 (SGD's "
                            f"default here), or 0 for plain SGD")
        if not (_real(self.weight_decay) and self.weight_decay >= 0):
            raise RuleError(f"weight_decay must be a finite number >= 0, got {shorten(self.weight_decay)}; e.g. "
                            f"5e-4, or 0 for none")
        if self.batch_size is not None and not (isinstance(self.batch_size, numbers.Integral)
                                                and not isinstance(self.batch_size, bool) and self.batch_size >= 1):
            raise RuleError(f"batch_size must be a positive integer or None, got {shorten(self.batch_size)}; pass "
                            f"the training batch size (None: {DEFAULT_CELL_BATCH}, the batch of the measurements)")

    @classmethod
    def from_dict(cls, options: Mapping) -> "HookConfig":
        """A config from a dict of its fields, as the README's hooks pass it (``{"base_lr": 0.1}``); a key that
        is not a field is refused naming the valid ones (an unknown key would otherwise be a bare TypeError), and
        an earlier version's ``preset`` names what replaced it (what such a version stored reads through
        :func:`nni_archscale.rules.registry.stored_options` first)."""
        valid = [f.name for f in fields(cls)]
        if "preset" in options:
            raise RuleError(RENAMED_PRESET_OPTION)
        unknown = [k for k in options if k not in valid]
        if unknown:
            hints = [f"{_ALIASES[k]} for {k}" for k in unknown if k in _ALIASES]
            raise RuleError(f"unknown hook option(s) {', '.join(shorten(k) for k in unknown)}; valid options: "
                            f"{', '.join(valid)}" + (f" (use {', '.join(hints)})" if hints else ""))
        return cls(**options)

    @classmethod
    def of(cls, hook: "HookConfig | Mapping | None") -> "HookConfig":
        """``hook`` as a config: a :class:`HookConfig` as it is, a dict by :meth:`from_dict`, None the defaults;
        anything else is refused."""
        if hook is None:
            return cls()
        if isinstance(hook, HookConfig):
            return hook
        if isinstance(hook, Mapping):
            return cls.from_dict(hook)
        raise RuleError(f"the hook's options must be a HookConfig or a dict of its options, got "
                        f"{type(hook).__name__} {shorten(hook)}; e.g. {{'base_lr': 0.1}} or HookConfig(base_lr=0.1)")

    @property
    def scheme(self) -> Init:
        """The :class:`~nni_archscale.rules.presets.Init` applied."""
        return Init.of(self.init)

    def to_dict(self) -> dict:
        return asdict(self)


#: what ``preset=`` in a hook's options has become (an earlier version's option, refused by name)
RENAMED_PRESET_OPTION = (f"hook option 'preset' is gone: pass init= one of {', '.join(INITS)} (the release's init "
                         f"also brings its path count), and rate_rule='shared' for one rate for every candidate")


#: Keys people write for a hook option, and the option they mean (for :meth:`HookConfig.from_dict`'s message).
_ALIASES = {"lr": "base_lr", "learning_rate": "base_lr", "rate": "base_lr", "wd": "weight_decay",
            "init_preset": "init", "rule": "rate_rule", "batch": "batch_size", "schedule": "scheduler"}


def _real(value: object) -> bool:
    """A finite real number (a bool or a string is not one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Prepared:
    """What the hook did to one candidate: the graph and rule result, the init applied, the param groups.

    The param groups are built once: by :func:`apply_rate_rule`, with the rate of the rule it applies, or, when no
    rule is applied (``prepare_nb201`` / ``prepare_graph`` alone), on first use of :attr:`groups`, with the graph
    rule's rates (eq. 8/9; per module with ``per_edge``)."""

    graph: ArchGraph
    scaling: Scaling
    plan: InitPlan
    init: InitReport
    config: HookConfig
    adapter: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    #: forward hooks this preparation registered (the exact init's node-sum scalars); ``.remove()`` undoes them
    hooks: list = field(default_factory=list)
    #: the rate rule applied (:func:`apply_rate_rule`), and its global rate when it is not the graph's
    rate_rule: str = "graph"
    rate: float | None = None
    #: the prepared model (whose parameters the groups hold) and the graph rule's per-module rates (``per_edge``)
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    module_rates: dict = field(default_factory=dict, repr=False)
    _groups: list[dict] | None = field(default=None, repr=False, compare=False)

    @property
    def groups(self) -> list[dict]:
        """The optimizer's param groups (built on first use with the graph rule's rates when no rule set them)."""
        if self._groups is None:
            self._groups = _build_groups(self.model, self.init, self.scaling.learning_rate.value, self.module_rates,
                                         self.config.weight_decay)
        return self._groups

    @groups.setter
    def groups(self, value: list[dict]) -> None:
        self._groups = value

    @property
    def learning_rate(self) -> float:
        return self.rate if self.rate is not None else self.scaling.learning_rate.value

    def make_optimizer(self) -> torch.optim.Optimizer:
        return make_optimizer(self.config.optimizer, self.groups, self.config.momentum, self.config.nesterov)

    def make_scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int):
        return make_scheduler(optimizer, self.config.scheduler, total_steps)

    def summary(self) -> str:
        s = self.scaling
        return (
            f"adapter={self.adapter}; graph: {self.graph.num_nodes} nodes, {len(self.graph.active_edges)} active "
            f"edges, {len(self.graph.parameterised_edges)} parameterised, {s.num_paths} paths, "
            f"sum L_p^3={s.learning_rate.depth_power_sum}; init={self.config.init}; rate rule={self.rate_rule}; "
            f"lr={self.learning_rate:.6g} "
            f"({len(self.groups)} param group(s)); {self.init.summary()}; hook {self.seconds * 1e3:.2f} ms"
        )


def _build_groups(model: nn.Module, init: InitReport, rate: float, module_rates, weight_decay: float) -> list[dict]:
    """The param groups at ``rate`` (per module ``module_rates``): frozen tensors left out, a tied tensor once,
    under the name of the use that initialised it (:func:`.apply.group_names`)."""
    if model is None:
        raise RuleError("this preparation holds no model to build param groups from; prepare it with "
                        "prepare_graph or prepare_nb201")
    return build_param_groups(model, rate, module_rates, weight_decay, names=group_names(model, init))


def weight_notes(model: nn.Module, init: InitReport) -> list[str]:
    """The notes on the tensors the init left to themselves: one line for the frozen ones (how many; that the
    graph-derived init and rates assume every layer is as the rule initialises it; that a frozen Linear/Conv still
    counts in its successor's in-degree, eq. 4, and in eq. 8/9's paths), and one per tied tensor (its names and
    the rule its input-side use applied)."""
    notes: list[str] = []
    if init.frozen:
        layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
                  and not m.weight.requires_grad]
        shown = ", ".join(init.frozen[:4]) + (f" and {len(init.frozen) - 4} more" if len(init.frozen) > 4 else "")
        note = (f"frozen: left {len(init.frozen)} tensor(s) with requires_grad=False alone ({shown}): not "
                f"re-initialised and in no param group; the graph-derived init and rates (eq. 4, eq. 8/9) assume "
                f"the rest of the network is as the rule initialises it, which these frozen values need not be")
        if layers:
            more = f" and {len(layers) - 3} more" if len(layers) > 3 else ""
            note += (f"; the frozen layer(s) {', '.join(layers[:3])}{more} stay in the graph: they still add into "
                     f"their target nodes, so the trainable layers beside and after them keep eq. 4's in-degree "
                     f"scaling with them counted, and their paths stay in eq. 8's sum")
        notes.append(note)
    notes += [t.describe() for t in init.tied]
    return notes


def _finish(model, graph, scaling, plan, config, adapter, generator, t0, rates) -> Prepared:
    """Initialise ``model`` by ``plan`` and record it; the param groups are built later, once (see Prepared)."""
    init = apply_init(model, plan, generator)
    notes = weight_notes(model, init)
    for note in notes:
        log.warning("archscale: %s", note)
    return Prepared(graph, scaling, plan, init, config, adapter, time.perf_counter() - t0,
                    list(scaling.learning_rate.notes) + notes, model=model, module_rates=dict(rates or {}))


def prepare_nb201(model: nn.Module, cell: ArchGraph, cells_per_stage: int, config: HookConfig,
                  generator: torch.Generator | None = None, adapter: str = "nb201-sample") -> Prepared:
    """Re-initialise an NNI NasBench201 network whose cells are ``cell`` and build its param groups.

    Raises :class:`~nni_archscale.errors.NoPathError` when the cell has no input-output path.
    """
    t0 = time.perf_counter()
    scaling = scale(cell, config.base_lr, config.scheme, "nb201-cell", per_edge=config.per_edge)
    plan = nb201_plan(cell, config.scheme, cells_per_stage)
    hooks = apply_output_scales(model, nb201_output_scales(cell, cells_per_stage)) if config.scheme.node_scales else []
    rates = {}
    if config.per_edge:
        cells, _ = nb201_cell_indices(cells_per_stage)
        rates = module_rates(cell, scaling.edge_learning_rates, [f"cells.{k}." for k in cells])
    prepared = _finish(model, cell, scaling, plan, config, adapter, generator, t0, rates)
    prepared.hooks.extend(hooks)
    return prepared


def prepare_graph(model: nn.Module, graph: ArchGraph, config: HookConfig, context: str = "dag",
                  readout_module: str | None = None, generator: torch.Generator | None = None,
                  adapter: str = "graph") -> Prepared:
    """Re-initialise a model whose searched graph is ``graph`` (edges name their modules) and build its groups."""
    t0 = time.perf_counter()
    if config.scheme.node_scales:
        raise RuleError("init 'exact' is implemented for NAS-Bench-201 cells (their ReLU-Conv-BN edges fix the "
                        "moments); for other models use init 'paper'")
    scaling = scale(graph, config.base_lr, config.scheme, context, per_edge=config.per_edge)
    plan = graph_plan(graph, config.scheme, context, readout_module)
    rates = module_rates(graph, scaling.edge_learning_rates) if config.per_edge else {}
    return _finish(model, graph, scaling, plan, config, adapter, generator, t0, rates)


def apply_rate_rule(prepared: Prepared, model: nn.Module, rule: str, reference: Reference | None = None,
                    batch=None, explicit: bool = True, leaf=None, dag_cell: CellNetwork | None = None) -> Prepared:
    """Set the rates ``rule`` gives (see :mod:`.rate_choice`) on a prepared candidate, with the guard rails: a
    rate more than ``MAX_OCTAVES`` from the base rate is clamped, and it and any layer the extractor cannot
    model are reported (``prepared.notes`` and a log warning naming the layer or parameter group).

    The rate comes first, then the param groups are built once with it: for ``graph``, eq. 8/9's rate from the
    preparation (per module with ``per_edge``), each group clamped by name; for any other rule, the rule's one
    rate for every trainable parameter. (Groups already read from ``prepared.groups`` before the rule is applied
    are built again for a rule other than ``graph``.)

    A rule chosen by default (``explicit=False``) that lacks what it needs (the measured rule without a batch
    or a reference) falls back to one shared rate, with a note saying what to pass; a rule the user named
    raises instead. The segmented rule without a reference compares with the graph rule's base (one layer per
    segment). The DAG-cell rules need ``dag_cell`` (:func:`.dag_cell.recognise`)."""
    t0 = time.perf_counter()
    cfg = prepared.config
    notes: list[str] = []
    entry = registry.get(rule)
    missing = entry.missing(reference=reference, batch=batch)  # the measured rule's reference and batch
    if missing and not explicit:
        notes.append(f"rate rule {rule} (this network's default) needs the base network's reference and a "
                     f"training batch (prepare_candidate(..., reference=rate_choice.reference_of(base_model, batch, "
                     f"optimizer), batch=(x, y))); trained with the shared base rate {cfg.base_lr:g} instead")
        entry = registry.SHARED
        rule = entry.name
    if entry.per_group:  # the graph rule: its rates per parameter group
        for g in prepared.groups:  # the one build: the graph rule's rates, then each group clamped
            lr, note = clamp_octaves(g["lr"], cfg.base_lr, f"parameter group {g.get('name', '?')}")
            if note:
                g["lr"] = lr
                notes.append(note)
        if notes:  # what the summary reports: the clamped global rate (per-edge groups are clamped one by one)
            prepared.rate = clamp_octaves(prepared.scaling.learning_rate.value, cfg.base_lr, "")[0]
    else:
        if cfg.per_edge:
            notes.append(f"per_edge rates come from the graph rule; rate rule {rule} gives one rate for the whole "
                         f"network, so the per-edge rates are not used (pass rate_rule='graph' to keep them)")
        if "reference" in entry.optional and reference is None:  # the segmented rule
            notes.append("segmented rule without the base network's reference: compared with the graph rule's base "
                         "(every segment one layer of kernel 3, cost 1); pass reference= to compare with a "
                         "calibrated base network")
        if "batch_size" in entry.needs and cfg.batch_size is None:  # readout-limited-sgd
            notes.append(f"{rule}'s readout cap is linear in the training batch size, which the hook was not given "
                         f"(HookConfig.batch_size); computed at batch {DEFAULT_CELL_BATCH}")
        if entry.rate is None:
            raise RuleError(f"rate rule {rule!r} is registered without a rate (RateRule.rate); register it with "
                            f"rate=<function of RuleInputs>")
        rate = entry.rate(registry.RuleInputs(
            model, prepared.graph, prepared.scaling.context, prepared.scaling.preset, cfg.base_lr,
            prepared.scaling, cfg.optimizer, reference, batch, cfg.batch_size, cfg.scheme.value, dag_cell, leaf,
            rule))
        rate, note = clamp_octaves(rate, cfg.base_lr, f"{type(model).__name__} (all parameters)")
        notes += [note] if note else []
        prepared.groups = _build_groups(model, prepared.init, rate, None, cfg.weight_decay)  # the one build
        prepared.rate = rate
    layers = unmodelled_layers(model)
    if layers:
        shown = ", ".join(layers[:6]) + (f" and {len(layers) - 6} more" if len(layers) > 6 else "")
        notes.append(f"guard: layers the graph extractor does not model (their weights follow the network's "
                     f"rate, no path counts them): {shown}")
    for note in notes:
        log.warning("archscale: %s", note)
    prepared.notes.extend(notes)
    prepared.rate_rule = rule
    prepared.seconds += time.perf_counter() - t0
    return prepared
