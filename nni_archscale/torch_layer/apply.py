"""Re-initialise a torch model from an :class:`~nni_archscale.planner.InitPlan`.

* every Linear / Conv weight ~ N(0, variance) with the variance of the plan entry covering the module
  (longest module-name prefix), the plan's default for the rest;
* every bias zero;
* every BatchNorm / GroupNorm / LayerNorm reset (weight 1, bias 0, running statistics cleared).

The report lists what each layer got, so tests and logs can check what training actually sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..planner import InitPlan
from ..run_errors import InitPlanError

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)


def fan_of(module: nn.Module, mode: str = "fan_in") -> int:
    """fan_in = in_features (or in_channels/groups * kernel taps); fan_out = out_features (or out_channels * taps)."""
    w = module.weight
    if w.dim() < 2:
        raise InitPlanError(f"{type(module).__name__} weight has {w.dim()} dimension(s); a fan needs at least 2")
    taps = math.prod(w.shape[2:]) if w.dim() > 2 else 1
    if mode == "fan_in":
        return int(w.shape[1] * taps)
    if mode == "fan_out":
        return int(w.shape[0] * taps)
    raise InitPlanError(f"unknown fan mode {mode!r}; use fan_in or fan_out")


@dataclass(frozen=True)
class AppliedInit:
    module: str
    kind: str
    role: str
    fan: int
    variance: float
    formula: str


@dataclass(frozen=True)
class InitReport:
    layers: tuple[AppliedInit, ...]
    norms_reset: int
    untouched: tuple[str, ...]

    def variance_of(self, module: str) -> float:
        for a in self.layers:
            if a.module == module:
                return a.variance
        raise KeyError(module)

    def summary(self) -> str:
        roles: dict[str, int] = {}
        for a in self.layers:
            roles[a.role] = roles.get(a.role, 0) + 1
        text = ", ".join(f"{n} {r}" for r, n in sorted(roles.items()))
        return f"re-initialised {len(self.layers)} layers ({text}), reset {self.norms_reset} norms"


def apply_init(model: nn.Module, plan: InitPlan, generator: torch.Generator | None = None,
               strict: bool = True) -> InitReport:
    """Re-initialise ``model`` in place from ``plan``; returns what each layer got.

    With ``strict``, a plan entry that matches no Linear/Conv module raises :class:`InitPlanError` (the plan was
    made for another model: a silent no-op would train with the wrong init).
    """
    applied: list[AppliedInit] = []
    untouched: list[str] = []
    used: set[str] = set()
    norms = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, _WEIGHTED):
                spec = plan.lookup(name)
                if spec is not None:
                    used.add(spec.module)
                else:
                    spec = plan.default
                if spec is None:
                    untouched.append(name)
                    continue
                fan = fan_of(module, spec.fan)
                var = spec.variance(fan)
                w = module.weight
                if generator is not None and generator.device != w.device:
                    tmp = torch.empty(w.shape, dtype=w.dtype).normal_(0.0, math.sqrt(var), generator=generator)
                    w.copy_(tmp)
                else:
                    w.normal_(0.0, math.sqrt(var), generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
                applied.append(AppliedInit(name, type(module).__name__, spec.role, fan, var, spec.formula))
            elif isinstance(module, _NORMS):
                if hasattr(module, "reset_running_stats"):
                    module.reset_running_stats()
                if getattr(module, "weight", None) is not None:
                    module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
                norms += 1
    if strict:
        missing = [s.module for s in plan.layers if s.module not in used]
        if missing:
            raise InitPlanError(
                f"init plan entries match no Linear/Conv module of {type(model).__name__}: {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; build the plan for this model (check module names with "
                f"model.named_modules()) or pass strict=False"
            )
    return InitReport(tuple(applied), norms, tuple(untouched))
