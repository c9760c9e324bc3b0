"""Re-initialise a torch model from an :class:`~nni_archscale.rules.planner.InitPlan`.

* every Linear / Conv weight ~ N(0, variance) with the variance of the plan entry covering the module
  (longest module-name prefix), the plan's default for the rest: eq. 4's ``2 / (d_in fan_in)`` for hidden layers,
  eq. 2's mean-field ``1 / fan_in^2`` for the readout (Chen et al. ICLR 2024, §3.2);
* every bias zero;
* every BatchNorm / GroupNorm / LayerNorm reset (weight 1, bias 0, running statistics cleared).

Two kinds of tensor are treated with care:

* **frozen** (``requires_grad=False``, e.g. a pretrained backbone): left exactly as they are, never redrawn or
  zeroed; a normalisation layer whose affine parameters are all frozen keeps its running statistics too. The
  graph is not changed by freezing: a frozen layer still adds into its target node, so the layers beside and
  after it keep eq. 4's in-degree scaling with the frozen edge counted.
* **tied** (one ``nn.Parameter`` held by several modules, e.g. an input embedding shared with the readout):
  initialised once, by its *input-side* use (the first use in module order that the plan does not treat as the
  readout), never redrawn by a later use. When that use is a module the plan does not initialise (an
  ``nn.Embedding``), the tensor is left as built.

The report lists what each layer got, and what was left alone, so tests and logs can check what training sees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..rules.planner import InitPlan
from ..errors import InitPlanError

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
class TiedInit:
    """One tensor held by several modules: every name it goes by, the name of the use that set it (its input-side
    use) and what that use applied (None: left as built, the use has no rule in the plan)."""

    names: tuple[str, ...]
    chosen: str
    role: str | None
    variance: float | None
    formula: str | None

    def describe(self) -> str:
        others = [n for n in self.names if n != self.chosen]
        if self.variance is None:
            how = f"left as built (its input-side use {self.chosen} is a layer the init plan does not set)"
        else:
            how = (f"initialised once by its input-side use {self.chosen} ({self.role}: {self.formula}, variance "
                   f"{self.variance:.4g})")
        return (f"tied weight: {self.chosen} is the same tensor as {', '.join(others)}; {how}, not redrawn by "
                f"the other use(s); one param group holds it, as {self.chosen}")


@dataclass(frozen=True)
class InitReport:
    layers: tuple[AppliedInit, ...]
    norms_reset: int
    untouched: tuple[str, ...]
    #: parameter names left alone because they are frozen (``requires_grad=False``)
    frozen: tuple[str, ...] = ()
    #: tensors held by several modules, each set once (:class:`TiedInit`)
    tied: tuple[TiedInit, ...] = ()

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
        extra = (f", left {len(self.frozen)} frozen tensor(s) alone" if self.frozen else "") + \
                (f", {len(self.tied)} tied tensor(s) set once" if self.tied else "")
        return f"re-initialised {len(self.layers)} layers ({text}), reset {self.norms_reset} norms{extra}"


def _param_name(module: str, attr: str) -> str:
    return f"{module}.{attr}" if module else attr


def _uses(model: nn.Module) -> dict[int, list[tuple[str, nn.Module, str]]]:
    """Every module that holds each parameter tensor directly, in module order: ``id -> [(module name, module,
    attribute)]``; a tensor with two or more is tied."""
    uses: dict[int, list[tuple[str, nn.Module, str]]] = {}
    for name, module in model.named_modules():
        for attr, p in module._parameters.items():
            if p is not None:
                uses.setdefault(id(p), []).append((name, module, attr))
    return uses


def _spec_of(plan: InitPlan, name: str, module: nn.Module):
    if not isinstance(module, _WEIGHTED):
        return None
    spec = plan.lookup(name)
    return spec if spec is not None else plan.default


def _input_side(plan: InitPlan, uses: list[tuple[str, nn.Module, str]]) -> tuple[str, nn.Module, str]:
    """The use that sets a tied tensor: the first, in module order, that the plan does not treat as the readout
    (the readout is the network's last layer, so any other use is nearer the input); the first when all are."""
    for use in uses:
        spec = _spec_of(plan, use[0], use[1])
        if spec is None or spec.role != "readout":
            return use
    return uses[0]


def apply_init(model: nn.Module, plan: InitPlan, generator: torch.Generator | None = None,
               strict: bool = True) -> InitReport:
    """Re-initialise ``model`` in place from ``plan``; returns what each layer got.

    Frozen tensors (``requires_grad=False``) are left as they are; a tied tensor is set once, by its input-side
    use (see the module docstring). With neither, the draws are exactly those of one pass over the modules in
    order. With ``strict``, a plan entry that matches no Linear/Conv module raises :class:`InitPlanError` (the
    plan was made for another model: a silent no-op would train with the wrong init).
    """
    applied: list[AppliedInit] = []
    untouched: list[str] = []
    frozen: dict[str, None] = {}  # ordered, without repeats
    used: set[str] = set()
    norms = 0
    uses = _uses(model)
    chosen = {pid: _input_side(plan, u) for pid, u in uses.items() if len(u) > 1}
    tied_set: dict[int, AppliedInit] = {}

    def owns(name: str, module: nn.Module, p: nn.Parameter) -> bool:
        """Whether this use sets ``p``: it is not tied, or this is its input-side use."""
        c = chosen.get(id(p))
        return c is None or (c[0] == name and c[1] is module)

    def settable(name: str, module: nn.Module, attr: str) -> bool:
        p = module._parameters.get(attr)
        if p is None:
            return False
        if not p.requires_grad:
            if owns(name, module, p):
                frozen[_param_name(name, attr)] = None
            return False
        return owns(name, module, p)

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
                if settable(name, module, "weight"):
                    fan = fan_of(module, spec.fan)
                    var = spec.variance(fan)
                    w = module.weight
                    if generator is not None and generator.device != w.device:
                        tmp = torch.empty(w.shape, dtype=w.dtype).normal_(0.0, math.sqrt(var), generator=generator)
                        w.copy_(tmp)
                    else:
                        w.normal_(0.0, math.sqrt(var), generator=generator)
                    a = AppliedInit(name, type(module).__name__, spec.role, fan, var, spec.formula)
                    applied.append(a)
                    if id(w) in chosen:
                        tied_set[id(w)] = a
                if module.bias is not None and settable(name, module, "bias"):
                    module.bias.zero_()
            elif isinstance(module, _NORMS):
                affine = [module._parameters.get(k) for k in ("weight", "bias")]
                affine = [p for p in affine if p is not None]
                if affine and not any(p.requires_grad for p in affine):  # a frozen norm keeps its statistics
                    for k in ("weight", "bias"):
                        settable(name, module, k)  # records them as frozen
                    continue
                if hasattr(module, "reset_running_stats"):
                    module.reset_running_stats()
                if settable(name, module, "weight"):
                    module.weight.fill_(1.0)
                if settable(name, module, "bias"):
                    module.bias.zero_()
                norms += 1
        for name, module in model.named_modules():  # frozen tensors no init rule visits are left alone too
            for attr, p in module._parameters.items():
                if p is not None and not p.requires_grad and owns(name, module, p):
                    frozen[_param_name(name, attr)] = None
    if strict:
        missing = [s.module for s in plan.layers if s.module not in used]
        if missing:
            raise InitPlanError(
                f"init plan entries match no Linear/Conv module of {type(model).__name__}: {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; build the plan for this model (check module names with "
                f"model.named_modules()) or pass strict=False"
            )
    tied = []
    for pid, (name, module, attr) in chosen.items():
        p = module._parameters[attr]
        if not p.requires_grad or attr != "weight" or isinstance(module, _NORMS):
            continue  # frozen: in ``frozen``; a tied bias or norm parameter is only zeroed or set to one
        a = tied_set.get(pid)
        tied.append(TiedInit(tuple(_param_name(n, k) for n, _, k in uses[pid]), _param_name(name, attr),
                             a.role if a else None, a.variance if a else None, a.formula if a else None))
    return InitReport(tuple(applied), norms, tuple(untouched), tuple(frozen), tuple(tied))


def group_names(model: nn.Module, report: InitReport) -> dict[int, str]:
    """For :func:`.param_groups.build_param_groups`: the name each tied tensor goes by (the use that set it), so
    its group and its per-module rate follow that use; ``id(parameter) -> name``."""
    return {id(model.get_parameter(t.chosen)): t.chosen for t in report.tied}
