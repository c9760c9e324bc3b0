"""Symbolic derivations for architecture-aware scaling (Chen, Wu, Wang & Hanin, ICLR 2024).

The paper derives its initialisation rule (App. A, eqs. 10-13) and its learning-rate rule (App. B/C,
eqs. 8, 9, 25, 26) by hand for a DAG whose vertices add up their incoming edges (eq. 1). This package
redoes those derivations with sympy for *any* architecture graph, exactly, so that the numeric code in
:mod:`nni_archscale` can be held against them.

One idea per module:

* :mod:`symbolic.gaussian`    - Gaussian moment constants of ReLU and GeLU, derived (not tabulated);
* :mod:`symbolic.moments`     - forward second moments and covariances of every node at infinite width;
* :mod:`symbolic.restore`     - which per-edge variances keep every node at the input's second moment,
  and where none can;
* :mod:`symbolic.rule_check`  - a preset's variances substituted into the moments: per-node drift;
* :mod:`symbolic.pathsums`    - sums over paths of L_p^k in closed form (graphs, chains, stacks of N cells,
  the NAS-Bench-201 macro network);
* :mod:`symbolic.maxupdate`   - the first-step maximal-update condition solved for the learning rate;
* :mod:`symbolic.chain_rules` - the project's default rules on App. D's chains in closed form (``1/L``);
* :mod:`symbolic.verify`      - everything at once for one graph, checked against the numeric code, with
  a canonical-form cache (the engine of ``archscale verify``).

Imports: the core and the rules of :mod:`nni_archscale` (docs/design.md, "Layers") and sympy. Never torch,
never NNI.
"""

from .gaussian import ACTIVATIONS, Activation, activation
from .maxupdate import MaxUpdate, max_update
from .moments import ForwardMoments, PoolModel, second_moments
from .pathsums import (
    chain_power_sums,
    nb201_power_sums,
    path_polynomial,
    polynomial_power_sums,
    stacked_power_sums,
)
from .restore import Restoration, restoring_gains
from .rule_check import RuleCheck, check_rule
from .verify import GraphVerification, Verifier, verify_graph

__all__ = [
    "ACTIVATIONS", "Activation", "activation",
    "ForwardMoments", "PoolModel", "second_moments",
    "Restoration", "restoring_gains",
    "RuleCheck", "check_rule",
    "path_polynomial", "polynomial_power_sums", "chain_power_sums", "stacked_power_sums", "nb201_power_sums",
    "MaxUpdate", "max_update",
    "GraphVerification", "Verifier", "verify_graph",
]
