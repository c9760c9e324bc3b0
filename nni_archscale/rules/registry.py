"""The learning-rate rules, one object each, in one registry (torch-free: the CLI reads it before importing
torch).

A :class:`RateRule` says what a rule is (name, one-line summary, equation, source), what it needs (a reference
network, a measurement batch, the training batch size, a DAG-cell MLP), which network families it applies to,
where its evidence is, and its one method, ``rate(inputs) -> float`` (:class:`RuleInputs`: the prepared
candidate and what the rule may need), except ``graph``, whose rates are eq. 8/9's per parameter group
(:attr:`RateRule.per_group`). The built-in rules that measure a torch model (``shared``, ``segmented``,
``measured`` and the DAG-cell rules) are registered here without it, because this module imports no torch;
:mod:`nni_archscale.torch_layer.rate_choice` gives them theirs when it is imported (:func:`implement`), before the
hook applies any rule. A rival rule is one module plus one :func:`register` call with its ``rate``: the hook,
``search --rate-rule``, ``inspect --rate-rule`` and ``archscale fairness`` all read this registry. ``auto`` is not a rule: it is the lookup in :mod:`nni_archscale.rules.defaults`
(:data:`AUTO`, :func:`is_auto`).

What a consumer needs to know about a rule is an attribute of its object, never a comparison of its name: what it
needs (:attr:`RateRule.needs`, and which of those it can go without, :attr:`RateRule.optional`;
:meth:`RateRule.missing`), whether its rates are the graph rule's per parameter group (:attr:`RateRule.per_group`)
or the calibrated base rate itself (:attr:`RateRule.base_rate`). The built-in rules are also module constants
(:data:`GRAPH`, :data:`SHARED`, ...), so code and tests name them once. See docs/design.md, "Rules, and conventions".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class RuleInputs:
    """What a registered rule's ``rate`` gets for one prepared candidate: the model (torch), its graph and the
    context the graph rule counted it in, the published convention it counted by (``preset``: ``paper`` or
    ``release``, :attr:`nni_archscale.rules.presets.Init.preset`), the base rate, the graph rule's own result
    (``scaling``, :class:`nni_archscale.rules.paper.Scaling`), and the optional measurements: the base network's
    ``reference``, a training ``batch``, the training ``batch_size``, the ``init``, the model read as the paper's
    DAG-cell MLP (``dag_cell``, a :class:`~nni_archscale.core.networks.CellNetwork`), the modules fx keeps
    whole (``leaf``), and the name of the rule applied (``rule``: one function may implement several)."""

    model: Any
    graph: Any
    context: str
    preset: str
    base_lr: float
    scaling: Any
    optimizer: str = "sgd"
    reference: Any = None
    batch: Any = None
    batch_size: int | None = None
    init: str = "paper"
    dag_cell: Any = None
    leaf: Any = None
    rule: str | None = None


@dataclass(frozen=True)
class RateRule:
    name: str
    summary: str
    equation: str
    source: str
    #: what it needs beyond the network: "reference" (the base network's measurements), "batch" (a training
    #: batch), "batch_size", "dag-cell" (a model recognised as the paper's DAG-cell MLP)
    needs: tuple[str, ...] = ()
    #: the network families it applies to (nni_archscale.rules.defaults.FAMILIES); None: any
    families: tuple[str, ...] | None = None
    evidence: str | None = None
    #: the rule's rate for a prepared candidate (None: ``graph``'s per-group rates; a built-in measuring rule until
    #: the torch layer implements it, :func:`implement`)
    rate: Callable[[RuleInputs], float] | None = None
    #: the entries of ``needs`` the rule can do without (``segmented`` without a reference compares with the graph
    #: rule's base, with a note)
    optional: tuple[str, ...] = ()
    #: True: the rates are the graph rule's own, one per parameter group (eq. 8/9 per edge), each clamped on its own
    per_group: bool = False
    #: True: every candidate trains at the calibrated base rate itself (one shared rate)
    base_rate: bool = False

    def applies_to(self, family: str) -> bool:
        return self.families is None or family in self.families

    @property
    def dag_cell_only(self) -> bool:
        """The rule applies only to a model recognised as the paper's DAG-cell MLP."""
        return "dag-cell" in self.needs

    def missing(self, **given: Any) -> tuple[str, ...]:
        """The required inputs (``needs`` less ``optional``) among ``given`` (``reference=..., batch=...``) that
        are None: what a rule chosen by default lacks before it can run."""
        return tuple(k for k, v in given.items() if v is None and k in self.needs and k not in self.optional)


REGISTRY: dict[str, RateRule] = {}

#: not a rule: "the evidence-backed default for the network's family"
#: (:func:`nni_archscale.rules.defaults.rate_rule_for`)
AUTO = "auto"


def is_auto(name: str) -> bool:
    """Whether a rate-rule option asks for the family's default rather than naming a rule."""
    return name == AUTO


def register(rule: RateRule) -> RateRule:
    """Add ``rule`` (its name must be new and not ``auto``); returns it."""
    if is_auto(rule.name) or rule.name in REGISTRY:
        raise ValueError(f"rate rule name {rule.name!r} is taken; choose another")
    REGISTRY[rule.name] = rule
    return rule


def implement(name: str, rate: Callable[[RuleInputs], float]) -> RateRule:
    """Give the registered rule ``name`` its ``rate`` method: how the torch layer, which this torch-free module
    cannot import, supplies the built-in measuring rules' (:mod:`nni_archscale.torch_layer.rate_choice`). Only a
    rule registered without one, and not ``graph``'s per-group kind, takes one; the object stays the same (the
    module constants, :data:`SHARED` and the others, are what the registry holds)."""
    rule = get(name)
    if rule.per_group or rule.rate not in (None, rate):
        raise ValueError(f"rate rule {name!r} already has its rates; register a rival under a new name")
    object.__setattr__(rule, "rate", rate)  # frozen for everyone else: this is the one place a rule gains a method
    return rule


def unregister(name: str) -> None:
    """Remove a rule (tests register toy rules and take them out again)."""
    REGISTRY.pop(name, None)


def rule_names() -> tuple[str, ...]:
    """Every registered rule, in registration order."""
    return tuple(REGISTRY)


def get(name: str) -> RateRule:
    from ..errors import RuleError

    if name not in REGISTRY:
        raise RuleError(f"unknown rate rule {name!r}; use auto or one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _shortest_path_rate(inputs: RuleInputs) -> float:
    from .shortest_path import shortest_path_rate

    return shortest_path_rate(inputs.graph, inputs.base_lr, inputs.preset, inputs.context,
                              float(inputs.scaling.learning_rate.kernel_factor))


_DAG = ("dag-cell",)
GRAPH = register(RateRule(
    "graph", "the paper's path sum on the adapter's graph", "eta = c (sum_p L_p^3)^(-1/2) q^(-1)",
    "Chen et al. ICLR 2024, eq. 8/9", evidence="reports/lr-prediction-*", per_group=True))
SEGMENTED = register(RateRule(
    "segmented", "eq. 8/9 inside the blocks normalisation layers delimit, relative to the base network",
    "eta = c f(candidate) / f(base), f = prod over segments of (sum_p L_p^3)^(-1/2)",
    "this project (torch_layer/segments.py)", needs=("reference",), optional=("reference",),
    evidence="reports/spaces-maxlr"))
MEASURED = register(RateRule(
    "measured", "the first step's change of the readout's input, relative to the base network's",
    "eta = c m_base / m(candidate) (eq. 8's condition measured by autograd)",
    "this project (torch_layer/measured_rate.py)", needs=("reference", "batch"), evidence="reports/spaces-maxlr"))
SHARED = register(RateRule("shared", "one rate for every candidate", "eta = c", "the NAS default", base_rate=True))
FEATURE = register(RateRule(
    "feature", "feature-sgd or feature-adam by optimizer", "see feature-sgd / feature-adam",
    "this project (first_step.cell_rate)", needs=("dag-cell",), families=_DAG, evidence="reports/beyond-paper"))
FEATURE_SGD = register(RateRule(
    "feature-sgd", "the hidden features' first-step change held at the base cell's (SGD form)",
    "first_step.cell_rate", "this project", needs=("dag-cell",), families=_DAG, evidence="reports/beyond-paper"))
FEATURE_ADAM = register(RateRule(
    "feature-adam", "the hidden features' first-step change held at the base cell's (Adam form)",
    "first_step.cell_rate", "this project", needs=("dag-cell",), families=_DAG, evidence="reports/beyond-paper"))
READOUT_LIMITED_SGD = register(RateRule(
    "readout-limited-sgd", "the feature rule capped by the readout's first-step limit (linear in batch)",
    "first_step.cell_rate", "this project", needs=("dag-cell", "batch_size"), families=_DAG,
    evidence="reports/beyond-paper"))
SHORTEST_PATH = register(RateRule(
    "shortest-path", "the fewest parameterised layers on any input-output path sets the rate",
    "eta = c (L_min,base / L_min)^(3/2) q^(-1)", "arXiv 2510.04327 (the rival rule, issue 23)",
    evidence="reports/fairness", rate=_shortest_path_rate))


def stored_options(options: Mapping) -> dict:
    """Hook options an earlier version stored (a run's ``run.json``, a trial's payload, a fairness run's options)
    in today's words: its ``preset``/``init`` pair as ``init`` (None: the preset's own), and the preset ``standard``
    (He's init at one rate for every candidate) as ``init='standard'`` with ``rate_rule='shared'``. Other options
    as they are. For reading results back only: what a user passes that says ``preset`` is refused."""
    out = dict(options)
    if "preset" not in out:
        return out
    preset = out.pop("preset")
    out["init"] = out.get("init") or preset
    if preset == "standard":
        out["rate_rule"] = SHARED.name
    return out
