"""The project's default learning-rate rule for each (init, optimizer) pair, chosen by measured evidence.

Evidence: ``reports/beyond-paper/`` (the paper's §4.1 protocol on 5,000 real MNIST digits pooled to 14x14,
5-node DAG cells between a Linear+ReLU stem and a linear readout, widths 128 and 256, 3 seeds, quarter-octave
grids; mean absolute error of the predicted maximal rate, in octaves, over cells no constant was fitted on).

=========  ==========  ===================  ==================================================================
init       optimizer   default rule         why
=========  ==========  ===================  ==================================================================
exact      sgd         ``centered-sgd``     0.32 octaves at width 128 (r 0.67); eq. 8 errs by 1.37
exact      adam        ``centered-adam``    0.29 octaves at width 128 (r 0.73); eq. 8 errs by 1.08
paper      sgd         ``standard``         no rule beat one shared rate (0.51); eq. 8 errs by 1.07
paper      adam        ``standard``         no rule beat one shared rate (0.38); eq. 8 errs by 0.84
=========  ==========  ===================  ==================================================================

The ``paper`` and ``release`` presets stay available by name (``--preset``) for reproduction.
"""

from __future__ import annotations

from .errors import RuleError

DEFAULT_RULES: dict[tuple[str, str], str] = {
    ("exact", "sgd"): "centered-sgd",
    ("exact", "adam"): "centered-adam",
    ("paper", "sgd"): "standard",
    ("paper", "adam"): "standard",
}

INITS = ("paper", "exact", "release", "standard")
OPTIMIZERS = ("sgd", "adam")


def default_rule(init: str, optimizer: str) -> str:
    """The evidence-backed rule for an (init, optimizer) pair; the init's own preset where none was measured."""
    if init not in INITS:
        raise RuleError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if optimizer not in OPTIMIZERS:
        raise RuleError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    return DEFAULT_RULES.get((init, optimizer), init)
