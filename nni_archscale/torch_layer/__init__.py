"""The torch layer: re-initialise a model from a rule's variances, build optimizer param groups, extract graphs
with torch.fx, choose each candidate's rate, read datasets and train. Imports torch, never NNI (docs/design.md,
"Layers")."""

from .apply import AppliedInit, InitReport, apply_init, fan_of
from .param_groups import build_param_groups, make_optimizer, make_scheduler

__all__ = [
    "AppliedInit", "InitReport", "apply_init", "fan_of",
    "build_param_groups", "make_optimizer", "make_scheduler",
]
