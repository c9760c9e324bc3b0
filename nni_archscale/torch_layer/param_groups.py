"""Optimizer param groups carrying a rule's learning rate(s), optimizers and schedulers built on them.

One global rate (the paper's rule, eq. 8/9: one rate for all hidden weights) gives one group; per-module rates
(``per_edge``) give one group per distinct rate. Every group is named after the modules it holds, so a log or a
test can read what the optimizer uses. A frozen parameter (``requires_grad=False``) is in no group; a tensor
shared by several modules (a tied weight) is in exactly one: torch's optimizers refuse a parameter that appears
in two groups.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ..errors import RuleError

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("none", "cosine", "step")


def _owner(name: str, rates: Mapping[str, float]) -> str | None:
    best = None
    for prefix in rates:
        if name == prefix or name.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return best


def build_param_groups(model: nn.Module, rate: float, module_rates: Mapping[str, float] | None = None,
                       weight_decay: float = 0.0, decay_norms_and_biases: bool = True,
                       names: Mapping[int, str] | None = None) -> list[dict]:
    """Param groups: each parameter gets the rate of the longest ``module_rates`` prefix owning it, else ``rate``.

    Frozen parameters (``requires_grad=False``) are left out. Each tensor appears once, under the first name
    ``model.named_parameters()`` gives it, or ``names[id(p)]`` when given (a tied weight goes by the use that
    initialised it, :func:`.apply.group_names`, so its per-module rate is that use's rate too).
    With ``decay_norms_and_biases=False`` biases and normalisation parameters go to groups without weight decay.
    """
    if not (math.isfinite(rate) and rate > 0):
        raise RuleError(f"learning rate must be positive and finite, got {rate!r}")
    module_rates = dict(module_rates or {})
    groups: dict[tuple[float, float], dict] = {}
    norm_params: set[int] = set()
    if not decay_norms_and_biases:
        for m in model.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)):
                norm_params.update(id(p) for p in m.parameters(recurse=False))
    names = names or {}
    for name, p in model.named_parameters():  # each tensor once, even when several modules hold it
        if not p.requires_grad:
            continue
        name = names.get(id(p), name)
        module = name.rsplit(".", 1)[0] if "." in name else ""
        owner = _owner(module, module_rates)
        lr = module_rates[owner] if owner is not None else rate
        wd = weight_decay
        if not decay_norms_and_biases and (name.endswith("bias") or id(p) in norm_params):
            wd = 0.0
        key = (lr, wd)
        g = groups.setdefault(key, {"params": [], "lr": lr, "weight_decay": wd, "names": []})
        g["params"].append(p)
        g["names"].append(name)
    out = []
    for g in groups.values():
        names = g.pop("names")
        g["name"] = names[0] if len(names) == 1 else f"{names[0]} (+{len(names) - 1})"
        g["param_names"] = tuple(names)
        out.append(g)
    return out


def make_optimizer(name: str, groups: list[dict], momentum: float = 0.9, nesterov: bool = True) -> torch.optim.Optimizer:
    """SGD (with momentum/Nesterov), Adam or AdamW over ``groups``; every group keeps its own rate."""
    key = name.lower()
    default_lr = groups[0]["lr"] if groups else 1e-3
    if key == "sgd":
        return torch.optim.SGD(groups, lr=default_lr, momentum=momentum, nesterov=nesterov and momentum > 0)
    if key == "adam":
        return torch.optim.Adam(groups, lr=default_lr)
    if key == "adamw":
        return torch.optim.AdamW(groups, lr=default_lr)
    raise RuleError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")


def make_scheduler(optimizer: torch.optim.Optimizer, kind: str, total_steps: int,
                   step_size: int | None = None, gamma: float = 0.1):
    """A per-step scheduler on the groups' own (scaled) rates: cosine to 0 over ``total_steps``, or step decay.

    Every group's ``initial_lr`` is its rule rate, so the schedule multiplies the scaled rates, never resets them.
    """
    key = kind.lower()
    if key == "none":
        return None
    if total_steps < 1:
        raise RuleError(f"a scheduler needs total_steps >= 1, got {total_steps}")
    if key == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if key == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size or max(1, total_steps // 3), gamma=gamma)
    raise RuleError(f"unknown scheduler {kind!r}; use one of {', '.join(SCHEDULERS)}")
