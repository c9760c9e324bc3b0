"""The measured maximal-update rule: what the first training step does to a network, measured, not counted.

The paper's criterion (§3.3, eqs. 5-7): the maximal learning rate is the largest one for which the first step's
change of the features, ``Δz = -η Σ_μ ∂_μ z ∂_μ L`` (eq. 5), stays O(1). On a ReLU DAG with the paper's init,
``E[(Δz)²] ∝ η² Σ_p L_p³`` at the DAG's output vertex (App. B, eq. 26), which is where eq. 8's
``η* ∝ (Σ_p L_p³)^(-1/2)`` comes from. Counting paths needs a network the graph maths describes (Linear/Conv +
ReLU edges, no normalisation). Measuring ``Δz`` does not: autograd gives it for any module (batch norm,
depthwise and grouped convs, squeeze-excite, attention).

What is measured (:func:`first_step_change`): on one batch, at initialisation, in training mode,

* ``u``: the optimizer's first update direction: the gradient for SGD (with momentum the first step is the
  gradient times a constant; Nesterov's ``1 + μ`` is the same constant for every network); ``g / (|g| + ε)``,
  the bias-corrected first step of Adam;
* ``z``: the features the readout reads (the input of the model's last ``Linear``): the paper's output vertex,
  whose scale the readout's mean-field init is defined against;
* ``m = RMS(∂z/∂η)``, the change of ``z`` per unit learning rate, by a central difference along ``u``.

The rule (:func:`measured_rate`) sets the candidate's rate so that its first step changes ``z`` as much as the
base network's step at the calibrated base rate: ``η = η_base · m_base / m``. Where eq. 8 applies, this is
eq. 8 measured (``tests/test_measured_rate.py`` holds the two to each other on MLP DAGs). Why ``z`` and not the
logits: with a mean-field readout the readout's own update dominates the logits' first-step change (its
gradient is the width-sized feature vector), so the logits' change hardly depends on the graph; ``z`` carries
the ``Σ_p L_p³`` dependence.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .fx_extract import last_linear
from ..errors import RuleError

#: update directions the measurement knows (the optimizer's first step)
DIRECTIONS = ("sgd", "adam")
#: the central difference's step: the parameters move by this fraction of their norm
RELATIVE_STEP = 1e-3


def last_linear_module(model: nn.Module) -> nn.Module:
    """The model's readout: its last ``nn.Linear`` in module order."""
    name = last_linear(model)
    if name is None:
        raise RuleError(f"{type(model).__name__} has no nn.Linear readout; pass readout= (the module whose input "
                        f"is the features the rule should hold steady)")
    return model.get_submodule(name)


def _first_output(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def first_step_change(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: str = "sgd",
                      readout: nn.Module | None = None,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
                      relative_step: float = RELATIVE_STEP) -> float:
    """RMS change of the readout's input per unit learning rate after one step of ``optimizer`` on ``(x, y)``.

    The model is left exactly as it was (parameters, buffers such as batch-norm statistics, train/eval mode).
    Raises :class:`~nni_archscale.errors.RuleError` when the features do not move (no parameter before the
    readout receives a gradient), since no learning rate is then defined.
    """
    if optimizer not in DIRECTIONS:
        raise RuleError(f"unknown optimizer {optimizer!r} for the measured rule; use one of {', '.join(DIRECTIONS)}")
    readout = readout if readout is not None else last_linear_module(model)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise RuleError(f"{type(model).__name__} has no trainable parameters; nothing to measure")
    captured: list[torch.Tensor] = []
    handle = readout.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    modes = [(m, m.training) for m in model.modules()]  # restored one by one (a frozen batch norm stays in eval)
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    saved = [p.detach().clone() for p in params]
    devices = [x.device] if x.device.type == "cuda" else []

    def features() -> torch.Tensor:
        captured.clear()
        with torch.random.fork_rng(devices=devices):  # dropout draws the same masks in every pass
            torch.manual_seed(0)
            out = _first_output(model(x))
        if not captured:
            raise RuleError(f"the readout {type(readout).__name__} was not called in {type(model).__name__}'s "
                            f"forward; pass readout= (the module that reads the features)")
        return out, captured[-1]

    try:
        model.train()
        out, _ = features()
        grads = torch.autograd.grad(loss_fn(out, y), params, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        direction = grads if optimizer == "sgd" else [g / (g.abs() + 1e-8) for g in grads]
        norm_u = math.sqrt(sum(float(d.double().pow(2).sum()) for d in direction))
        norm_p = math.sqrt(sum(float(p.detach().double().pow(2).sum()) for p in params))
        if norm_u == 0.0:
            raise RuleError("the loss has no gradient at initialisation (no trainable path from input to output); "
                            "no learning rate is defined for this candidate")
        eps = relative_step * max(norm_p, 1.0) / norm_u
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(d, alpha=eps)
            _, z_plus = features()
            for p, s, d in zip(params, saved, direction):
                p.copy_(s).sub_(d, alpha=eps)
            _, z_minus = features()
        change = float(((z_plus - z_minus) / (2 * eps)).double().pow(2).mean().sqrt())
    finally:
        handle.remove()
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
            for b, v in buffers:
                b.copy_(v)
        for m, mode in modes:
            m.training = mode
    if not math.isfinite(change) or change == 0.0:
        raise RuleError(f"the first step does not change the readout's input (change {change}); the candidate has "
                        f"no trainable layer before its readout, so no learning rate is defined")
    return change


def measured_rate(base_lr: float, base_change: float, change: float) -> float:
    """``η = η_base · m_base / m``: the rate at which the candidate's first step changes the readout's input as
    much as the base network's does at ``base_lr`` (eq. 7's maximal-update condition, measured)."""
    if not (base_lr > 0 and base_change > 0 and change > 0):
        raise RuleError(f"measured rule needs positive base rate and changes, got {base_lr}, {base_change}, {change}")
    return base_lr * base_change / change
