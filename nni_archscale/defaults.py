"""The project's default learning-rate rule for each (init, optimizer) pair, chosen by measured evidence.

Evidence: ``reports/beyond-paper/`` (the paper's §4.1 protocol on 3,000 real MNIST digits pooled to 14x14,
5-node DAG cells between a Linear+ReLU stem and a linear readout, the released Linear-then-activation edges,
3 seeds, quarter-octave grids, one epoch). Mean absolute error of the predicted maximal rate, in octaves, over
cells no constant was fitted on (the base cell's measured rate is the only fitted number). Every default won a
held-out test whose runs and decision rule were committed before it ran:

* SGD, both inits: ``second-step-sgd``, ``(Theta_h * mean over paths of (k_p + 3))^(-1/2)``. Its own test
  (``heldout8-w128``, ``heldout9-w256``, ``depth-w192``: 20 + 12 new cells, chains at a new width) gave
  0.23 / 0.19 / 0.21 octaves with the exact init (``feature-sgd`` 0.31 / 0.28 / 0.15) and 0.25 / 0.29 / 0.21
  with the paper's (``feature-sgd`` 0.27 / 0.33 / 0.15; one shared rate 0.70 / 0.32 / 1.29). On all 96 cells of
  the three tests (60 at width 128, 36 at width 256; the first two were seen when the rule was formed):
  exact 0.20 ± 0.02 / 0.27 ± 0.03, paper 0.27 ± 0.03 / 0.41 ± 0.05; chains at width 256: 0.15.
* Adam, exact init: ``feature-adam``, ``sqrt(E[z_out^2]) / Theta_1,h``: 0.20 ± 0.03 / 0.35 ± 0.07 on the 64 cells
  of the first two tests, 0.39 on width-256 chains.
* Adam, paper init: ``feature-sgd``, ``sqrt(E[z_out^2]) / Theta_h``: 0.25 ± 0.05 / 0.29 ± 0.04, chains 0.40.

(± is the standard error over cells; widths 128 / 256.) The three decision rules: (1) a ``feature-*`` rule
replaced a pair's default if its mean error over ``heldout3-w128``, ``heldout4-w256`` and ``depth-w256`` was
lower (it did for exact SGD and Adam and paper SGD: 0.29, 0.31, 0.39 against 0.33, 0.44, 0.93; not for
paper-init Adam: 0.40 against 0.38); (2) for paper-init Adam, ``feature-sgd`` replaced ``path-mean-depth`` if
lower over ``heldout6-w128`` and ``heldout5-w256`` (0.27 against 0.37); (3) ``second-step-sgd`` replaced
``feature-sgd`` for an init if lower over the third test's runs: exact 0.21 against 0.25, paper 0.248 against
0.251 (a tie within noise that the rule, fixed beforehand, resolves). The Adam choice (2) is empirical: Adam's
first step moves weights by ``eta sign(g)``, whose kernel is ``Theta_1``, yet the SGD kernel predicts its rate
better.

The 0.35-octave goal of issue 7 is met at widths 128 and 256 in every pair but one, and on SGD chains. It is
missed with the paper's init and SGD at width 256 (0.41 over 36 cells; 0.29 on the 12 cells of the clean test),
and on width-256 chains with Adam (0.39-0.40, where two seeds of one network differ by 0.57 octaves on average).
Held-out GeLU cells (seen before the tests): ``second-step-sgd`` 0.25 (exact) and 0.33 (paper), ``feature-adam``
0.24 (exact), ``feature-sgd`` 0.21 (paper, Adam).

History: ``depth-centered-sgd`` and ``moment-adam`` were the exact-init defaults chosen on the first runs (0.34 /
0.35 and 0.30 / 0.31 at widths 128 / 256, then 0.37 / 0.29 and 0.27 / 0.33 on held-out cells); one shared rate
(``standard``) was the paper-init SGD default; ``path-mean-depth`` (eq. 8's depth term averaged over paths, no
kernel) won an earlier pre-registered test for paper-init Adam (0.24 / 0.48 against one rate's 0.34 / 0.55) and
then lost test (2); ``feature-sgd`` was the SGD default between tests (1) and (3).

Convolutional cells (``--network cnn``): on 8x8 digits (``reports/lr-prediction-cnn-kernel/``) and on 14x14
MNIST at width 16 (12 cells, 3 seeds, ``reports/beyond-paper/cnn-mnist14/``) every rule erred by about one octave
or more (the feature rules by 2.2-2.8: their ``q^2`` kernel factor over-shrinks), and the measured rates showed no
kernel trend; so for CNNs the default is one shared rate (``standard``) until better evidence exists.

The ``paper`` and ``release`` presets stay available by name (``--preset``) for reproduction.
"""

from __future__ import annotations

from .errors import RuleError

DEFAULT_RULES: dict[tuple[str, str], str] = {
    ("exact", "sgd"): "second-step-sgd",
    ("exact", "adam"): "feature-adam",
    ("paper", "sgd"): "second-step-sgd",
    ("paper", "adam"): "feature-sgd",
}

INITS = ("paper", "exact", "release", "standard")
OPTIMIZERS = ("sgd", "adam")


def default_rule(init: str, optimizer: str, network: str = "mlp") -> str:
    """The evidence-backed rule for an (init, optimizer) pair; the init's own preset where none was measured;
    one shared rate for CNN cells (see the module docstring)."""
    if init not in INITS:
        raise RuleError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    if optimizer not in OPTIMIZERS:
        raise RuleError(f"unknown optimizer {optimizer!r}; use one of {', '.join(OPTIMIZERS)}")
    if network == "cnn":
        return "standard"
    return DEFAULT_RULES.get((init, optimizer), init)
