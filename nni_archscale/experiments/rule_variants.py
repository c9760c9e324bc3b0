"""Research learning-rate rules: the variants that lost their pre-registered tests, kept so that every report
can still be regenerated and every rule re-scored (``archscale experiment lr-prediction`` scores them all).
The product (:mod:`nni_archscale.rules.first_step`) never imports this module; the variants reach its
:func:`~nni_archscale.rules.first_step.multiplier` as :class:`~nni_archscale.rules.first_step.KernelRule` objects.

Each rule is a multiplier relative to the base cell, anchored by the one calibrated constant (module docstring of
:mod:`nni_archscale.rules.first_step` for the first-step kernels ``Theta``, ``Theta_1`` and their centred and hidden
parts):

* ``moment-sgd`` / ``moment-adam``: ``1 / Theta`` and ``1 / Theta_1`` from the exact moments (the first-step
  maximal-update condition at the output).
* ``centered-sgd`` / ``centered-adam``: the same with centred layer inputs: with a classification loss at init
  the logits are near zero, the batch gradient's output factor ``p - y`` sums to about zero over a balanced
  batch, so only the input-dependent part of each layer's input moves a logit differently from another.
* ``depth-centered-sgd``: ``centered-sgd`` times ``(mean over paths of (k_p + 3)^3)^(-1/2)``: the first-step
  kernel is dominated by the readout and hardly changes along a chain, while the measured maximal rate falls
  with depth as eq. 8 says (App. D). Formed after seeing the width-128/256 topology runs and the depth run; its
  results were committed with the rule (``reports/beyond-paper/heldout-exact-sgd``), so they are exploratory.
* ``path-mean-depth``: that depth factor alone, eq. 8 with the release's ``L_p = k_p + 3`` and a mean over paths
  instead of a sum; no kernel, no init, no width. Noticed while rescoring (``scripts/score_variants.py``), then put
  to held-out cells (``reports/beyond-paper/heldout-paper-*``); lost test 2 to ``feature-sgd``.
* ``second-step-sgd``: ``(Theta_h * mean over paths of (k_p + 3))^(-1/2)``, the hidden features' second-step
  limit on its own (the product keeps it as the first limit inside ``readout-limited-sgd``); the SGD default from
  test 3 until tests 4-5.
* ``readout-capped-sgd``: ``second-step-sgd`` capped by the readout's first-step limit relative to the base
  cell, ``min(second-step ratio, Var_base(z_out) / Var(z_out))``; the exact-init SGD default from test 4 until
  test 6, where ``readout-limited-sgd`` (the same cap in absolute units) beat it at widths 384 and 512.

``moment``, ``centered`` and ``feature`` pick the SGD or Adam member by optimizer.
"""

from __future__ import annotations

from ..core.graph import ArchGraph
from ..core.networks import CellNetwork
from ..core.paths import path_statistics, power_sum
from ..rules.first_step import (
    ALIASES as PRODUCT_ALIASES,
    DEPTH_OFFSET,
    RULES as PRODUCT_RULES,
    KernelRule,
    multiplier as _product_multiplier,
    resolve_rule,
    rule_multiplier as _product_rule_multiplier,
    second_step_multiplier,
)


def path_mean_depth_factor(cell: ArchGraph, offset: int = DEPTH_OFFSET) -> float:
    """``(mean over input-output paths of (k_p + offset)^3)^(-1/2)`` (1 for a cell without paths): eq. 8's depth
    term averaged over paths, the factor of ``depth-centered-sgd`` and ``path-mean-depth``."""
    m = path_statistics(cell).output
    return 1.0 if m[0] == 0 else (power_sum(m, 3, offset) / m[0]) ** -0.5


def _readout_capped(k, cell: ArchGraph, context) -> float:
    """Relative to the base cell: ``min(second-step ratio, readout ratio)``, times the base's second-step value
    (so that dividing by the base's own multiplier leaves the min of the two ratios)."""
    kb = context.kernel_of(context.base)
    at_base = second_step_multiplier(kb, context.base)
    return at_base * min(second_step_multiplier(k, cell) / at_base, kb.readout_centered2 / k.readout_centered2)


VARIANTS: dict[str, KernelRule] = {
    "moment-sgd": KernelRule("moment-sgd", "1 / Theta, Theta = sum (df/dtheta)^2 from exact moments",
                             lambda k, cell, context: 1.0 / k.theta2),
    "moment-adam": KernelRule("moment-adam", "1 / Theta_1, Theta_1 = sum |df/dtheta| from exact moments",
                              lambda k, cell, context: 1.0 / k.theta1),
    "centered-sgd": KernelRule("centered-sgd", "1 / Theta with centred layer inputs",
                               lambda k, cell, context: 1.0 / k.centered2),
    "centered-adam": KernelRule("centered-adam", "1 / Theta_1 with centred layer inputs",
                                lambda k, cell, context: 1.0 / k.centered1),
    "depth-centered-sgd": KernelRule("depth-centered-sgd", "centered-sgd x (mean over paths of (k_p + 3)^3)^(-1/2)",
                                     lambda k, cell, context: path_mean_depth_factor(cell) / k.centered2),
    "path-mean-depth": KernelRule("path-mean-depth", "(mean over paths of (k_p + 3)^3)^(-1/2)",
                                  lambda k, cell, context: path_mean_depth_factor(cell), needs_kernel=False),
    "second-step-sgd": KernelRule("second-step-sgd", "(Theta_h x mean over paths of (k_p + 3))^(-1/2)",
                                  lambda k, cell, context: second_step_multiplier(k, cell)),
    "readout-capped-sgd": KernelRule("readout-capped-sgd", "second-step-sgd capped by Var_base(z_out) / Var(z_out)",
                                     _readout_capped),
}

#: every kernel rule, the product's and the research variants, in the order the reports' columns follow
ALL_RULES: dict[str, KernelRule] = {name: {**PRODUCT_RULES, **VARIANTS}[name] for name in (
    "moment-sgd", "moment-adam", "centered-sgd", "centered-adam", "depth-centered-sgd", "path-mean-depth",
    "feature-sgd", "feature-adam", "second-step-sgd", "readout-capped-sgd")}
#: names that pick a rule by optimizer
ALIASES = (*PRODUCT_ALIASES, "moment", "centered")


def lookup(rule: str, optimizer: str = "sgd") -> str | KernelRule:
    """A kernel rule by name (aliases resolved for ``optimizer``); presets and the absolute rule pass through as
    names."""
    name = resolve_rule(rule, optimizer, ALIASES)
    return ALL_RULES.get(name, rule)


def rule_multiplier(rule: str, net: CellNetwork, init: str = "paper", optimizer: str = "sgd") -> float:
    """:func:`nni_archscale.rules.first_step.rule_multiplier` for any rule, research variants included."""
    return _product_rule_multiplier(lookup(rule, optimizer), net, init, optimizer)


def multiplier(rule: str, net: CellNetwork, init: str, optimizer: str) -> float:
    """:func:`nni_archscale.rules.first_step.multiplier` for any kernel rule, research variants included."""
    return _product_multiplier(lookup(rule, optimizer), net, init, optimizer)
