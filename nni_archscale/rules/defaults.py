"""Which rate rule each network gets by default, and which objective calibrates its base rate: decisions, as data.

* :data:`DEFAULT_RULES` - the paper's DAG-cell MLP, per (init, optimizer): SGD with the exact init
  ``readout-limited-sgd``, ``eta = min(base_lr x the second-step multiplier relative to the base cell,
  READOUT_LIMIT x B / (n Var(z_out)))``, and Adam with the paper init ``feature-sgd``, ``eta ∝ sqrt(E[z_out^2]) /
  Theta_h`` (:mod:`nni_archscale.rules.first_step`); one shared rate (``shared``) for the other two pairs and
  for CNN cells, eq. 8/9 (``graph``) for the inits not measured (:func:`default_rule`).
* :data:`SPACE_RATE_RULES` - NNI's spaces, per network family and optimizer: one shared rate on ``nb201``,
  ``cells`` and ``mobile``; eq. 8/9 (``graph``) without normalisation (``plain``) and for optimizers not measured
  (:func:`default_rate_rule`; ``auto`` resolves through :func:`rate_rule_for`).
* :data:`BASE_RATE_OBJECTIVES` - how the base rate is calibrated per family: the paper's one-epoch maximal rate of
  the base network (``maxlr``), or the best mean over a few sampled candidates at the search's budget
  (``population``: ``dag-cell`` and ``cells``).

Source: each entry was decided by a pre-registered measurement (the statement and the decision rule committed
before the run) and one decision rule: a challenger replaces the incumbent only when it beats it by more than
twice the paired standard error, Holm-corrected across a statement's decisions; ties keep the incumbent
(:func:`nni_archscale.experiments.decision.decide`, :func:`~nni_archscale.experiments.decision.holm_decisions`).
The paper's own rule stays available by name for reproduction: ``--rate-rule graph`` (with ``--init release``,
counted as the authors' release counts).

Evidence: ``reports/beyond-paper/`` and ``reports/fairness/dagcell-e2`` (DAG cells), ``reports/spaces-maxlr/``
(NNI's spaces), ``reports/fairness/`` (the base-rate objectives). Which test decided what, its figures and how the
defaults changed: ``reports/defaults.md``.
"""

from __future__ import annotations

from ..errors import RuleError
from .presets import Init
from .registry import GRAPH, SHARED, is_auto

DEFAULT_RULES: dict[tuple[str, str], str] = {
    ("exact", "sgd"): "readout-limited-sgd",
    ("exact", "adam"): "shared",
    ("paper", "sgd"): "shared",  # one shared rate: reports/fairness/dagcell-e2 (reports/defaults.md)
    ("paper", "adam"): "feature-sgd",
}

#: inits whose default rate rule is the same for every family and optimizer: He's init is the NAS default's, and
#: no measurement scales its rate, so ``auto`` gives it the NAS default's one shared rate (as the earlier preset
#: ``standard``, He's init at one rate, did)
INIT_RATE_RULES: dict[str, str] = {"standard": "shared"}

#: the rate rule per network family and optimizer (``torch_layer.rate_choice``): one shared rate wherever it was
#: measured (reports/spaces-maxlr/, pre-registered, as re-scored by issue 23.5: no rule beats one shared rate on
#: any space or optimizer); families and optimizers not listed get eq. 8/9 (``graph``). Whatever the rule, the hook
#: clamps a rate more than 4 octaves from the base rate (``torch_layer.rate_choice.MAX_OCTAVES``). The figures:
#: reports/defaults.md, "The network-family defaults".
SPACE_RATE_RULES: dict[tuple[str, str], str] = {
    ("nb201", "sgd"): "shared",
    ("nb201", "adam"): "shared",
    ("cells", "sgd"): "shared",  # "segmented" until issue 23.5's re-scoring (reports/defaults.md)
    ("cells", "adam"): "shared",
    ("mobile", "sgd"): "shared",
    ("mobile", "adam"): "shared",
}
FAMILIES = ("nb201", "cells", "mobile", "dag-cell", "plain")

OPTIMIZERS = ("sgd", "adam")


def default_rule(init: str, optimizer: str, network: str = "mlp") -> str:
    """The evidence-backed rate rule for the DAG-cell network with an (init, optimizer) pair: eq. 8/9 (``graph``)
    where none was measured; one shared rate for CNN cells (see the module docstring)."""
    init = Init.of(init).value
    if optimizer not in OPTIMIZERS:
        raise RuleError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    if init in INIT_RATE_RULES:
        return INIT_RATE_RULES[init]
    if network == "cnn":
        return SHARED.name
    return DEFAULT_RULES.get((init, optimizer), GRAPH.name)


def default_rate_rule(family: str, optimizer: str, init: str = "paper") -> str:
    """The evidence-backed rate rule the hook applies to a network of ``family`` (see :data:`SPACE_RATE_RULES`).

    ``dag-cell`` (a model recognised as the paper's DAG-cell MLP, :mod:`nni_archscale.torch_layer.dag_cell`):
    :func:`default_rule` for the init and optimizer. He's init (``standard``) one shared rate everywhere
    (:data:`INIT_RATE_RULES`). ``graph`` (eq. 8/9) for other networks without
    normalisation, and for optimizers the measurement did not cover (AdamW on a DAG cell too)."""
    if family not in FAMILIES:
        raise RuleError(f"unknown network family {family!r}; use one of {', '.join(FAMILIES)}")
    if Init.of(init).value in INIT_RATE_RULES:
        return INIT_RATE_RULES[Init.of(init).value]
    if family == "dag-cell" and optimizer in OPTIMIZERS:
        return default_rule(init, optimizer, "mlp")
    return SPACE_RATE_RULES.get((family, optimizer), "graph")


def rate_rule_for(rule: str, family: str, optimizer: str, init: str = "paper") -> str:
    """The rate rule a candidate of ``family`` trains with: ``rule`` itself, or, for ``auto``
    (:func:`nni_archscale.rules.registry.is_auto`), the family's default (:func:`default_rate_rule`)."""
    return default_rate_rule(family, optimizer, init) if is_auto(rule) else rule


#: how ``archscale search`` calibrates its base rate (and the shared-rate baseline) when none is given, per network
#: family: "maxlr" (the paper's one-epoch maximal rate of the base network), "accuracy" (the base network's best
#: validation accuracy after the search's epochs) or "population" (the best mean over a few sampled candidates;
#: nni_archscale/fairness/objectives.py). An objective replaces maxlr for a family only where its pre-registered
#: comparison adopted it (reports/fairness/: dag-cell and cells; the figures: reports/defaults.md, "The base-rate
#: objectives"); mobile and plain are not measured at the search's budget yet.
BASE_RATE_OBJECTIVES: dict[str, str] = {"nb201": "maxlr", "cells": "population", "mobile": "maxlr",
                                        "dag-cell": "population", "plain": "maxlr"}
#: families no fairness run has measured calibrate by the paper's recipe
BASE_RATE_OBJECTIVE = "maxlr"


def base_rate_objective(family: str) -> str:
    """The calibration objective of a network ``family`` (:data:`BASE_RATE_OBJECTIVES`)."""
    return BASE_RATE_OBJECTIVES.get(family, BASE_RATE_OBJECTIVE)
