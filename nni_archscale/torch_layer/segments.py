"""Normalisation-aware path counting: eq. 8 applied inside the blocks that normalisation layers delimit.

Eq. 8 (``η* ∝ (Σ_p L_p³)^(-1/2)``, §3.3) counts the parameterised layers on every input-output path, because
on a ReLU network without normalisation a weight update's effect compounds along the whole path. A
normalisation layer (batch, layer, group or instance norm) divides its input by its own scale, so an update
before it no longer compounds with the layers after it. The paper's NAS-Bench-201 experiments act on this: they
count the paths of one cell, not of the 15 stacked, normalised cells (paper-notes §4).

This module applies that reading to any traceable network: walking the ``torch.fx`` graph, every value carries
the power sums ``S_k = Σ_p L_p^k`` (k = 0..3) of the paths that reach it *since the last normalisation*; a
Linear/Conv shifts ``L`` by one, a sum (or any operation on several tensors) adds the sums of its inputs, a
normalisation layer closes a *segment* (its ``S_3``, weighted by its largest kernel as eq. 9's ``q``, is
recorded) and starts a new one with one path of depth 0. The readout (the model's last Linear) is not counted
(eq. 8 counts hidden layers; the readout has its own mean-field init).

The rule (:func:`segment_rate_factor`): ``(max over segments of S_3 · (q/3)²)^(-1/2)``, the segment that the
first step changes most sets the rate. A network without normalisation is one segment: eq. 8 (with eq. 9's
kernel factor taken from the largest kernel).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
from torch import fx, nn

from ..errors import ExtractionError
from .fx_extract import _LeafTracer

_PARAM = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d,
         nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LocalResponseNorm)
_QUERY = {"size", "dim", "numel", "type", "get_device", "is_contiguous", "nelement"}


@dataclass(frozen=True)
class _Sums:
    """Power sums ``(S_0, S_1, S_2, S_3)`` of the paths reaching a value in the current segment, and the
    largest kernel side among their parameterised layers."""

    s: tuple[int, int, int, int]
    kernel: int = 1

    def shifted(self, kernel: int) -> "_Sums":
        s0, s1, s2, s3 = self.s  # Σ(L+1)^k by the binomial theorem
        return _Sums((s0, s1 + s0, s2 + 2 * s1 + s0, s3 + 3 * s2 + 3 * s1 + s0), max(self.kernel, kernel))

    def __add__(self, other: "_Sums") -> "_Sums":
        return _Sums(tuple(a + b for a, b in zip(self.s, other.s)), max(self.kernel, other.kernel))

    @property
    def cost(self) -> float:
        """``S_3 · (q/3)²`` (eq. 8 with eq. 9's kernel factor, base kernel 3 as the authors' code)."""
        return self.s[3] * (self.kernel / 3.0) ** 2


_START = _Sums((1, 0, 0, 0))


@dataclass(frozen=True)
class Segments:
    """Every closed segment's ``S_3 · (q/3)²`` and the module that closed it (``"output"`` for the last one)."""

    costs: tuple[tuple[str, float], ...]

    @property
    def worst(self) -> tuple[str, float]:
        return max(self.costs, key=lambda c: c[1])


def _kernel(m: nn.Module) -> int:
    k = getattr(m, "kernel_size", 1)
    return int(max(k)) if isinstance(k, (tuple, list)) else int(k)


def _inputs(args, env) -> list[_Sums]:
    found: list[_Sums] = []

    def visit(a):
        if isinstance(a, fx.Node):
            v = env.get(a.name)
            if isinstance(v, _Sums):
                found.append(v)
            elif isinstance(v, list):
                found.extend(v)
        elif isinstance(a, (list, tuple)):
            for b in a:
                visit(b)
        elif isinstance(a, dict):
            for b in a.values():
                visit(b)

    visit(args)
    return found


def segment_sums(model: nn.Module, readout: str | None = None, leaf=None) -> Segments:
    """Trace ``model`` and return its segments' costs (see the module docstring). ``readout``: the qualified
    name of the readout module (default: the last ``nn.Linear``), which is not counted. ``leaf(module, name)``:
    modules to keep whole (ones whose own forward fx cannot trace); a leaf counts as one parameterised layer
    with its largest kernel when it holds any, else it passes its input through."""
    if readout is None:
        for name, m in model.named_modules():
            if isinstance(m, nn.Linear):
                readout = name
    try:
        graph = _LeafTracer(leaf).trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise ExtractionError(f"torch.fx cannot trace {type(model).__name__} ({type(exc).__name__}); freeze NNI "
                              f"spaces before tracing") from None
    modules = dict(model.named_modules())
    env: dict[str, object] = {}
    closed: list[tuple[str, float]] = []
    placeholders = 0
    for node in graph.nodes:
        if node.op == "placeholder":
            env[node.name] = None if placeholders else _START  # one input tensor; others are not features
            placeholders += 1
            continue
        if node.op == "get_attr" or (node.op == "call_method" and node.target in _QUERY):
            env[node.name] = None
            continue
        ins = _inputs((node.args, node.kwargs), env)
        if node.op == "output":
            total = _merge(ins)
            if total is not None:
                closed.append(("output", total.cost))
            continue
        if not ins:
            env[node.name] = None
            continue
        if _is_times_zero(node):  # NNI's Zero op: x.mul(0.)
            env[node.name] = None
            continue
        if node.op == "call_function" and node.target is torch.stack:
            env[node.name] = list(ins)  # summed (or indexed) later
            continue
        total = _merge(ins)
        if node.op == "call_module":
            m = modules[node.target]
            if node.target == readout:
                pass
            elif isinstance(m, _PARAM):
                total = total.shifted(_kernel(m))
            elif leaf is not None and leaf(m, node.target):
                kernels = [_kernel(c) for c in m.modules() if isinstance(c, _PARAM)]
                total = total.shifted(max(kernels)) if kernels else total
            elif isinstance(m, _NORM):
                closed.append((node.target, total.cost))
                total = _START
        env[node.name] = total
    if not closed:
        raise ExtractionError(f"{type(model).__name__}'s output does not depend on its input; nothing to count")
    return Segments(tuple(closed))


def _is_times_zero(node: fx.Node) -> bool:
    is_mul = (node.op == "call_function" and node.target in (operator.mul, torch.mul)) or \
        (node.op == "call_method" and node.target == "mul")
    return is_mul and any(isinstance(a, (int, float)) and not isinstance(a, bool) and a == 0 for a in node.args)


def _merge(ins: list[_Sums]) -> _Sums | None:
    if not ins:
        return None
    total = ins[0]
    for v in ins[1:]:
        total = total + v
    return total


def segment_rate_factor(model: nn.Module, readout: str | None = None, leaf=None) -> float:
    """``(max_segment S_3 · (q/3)²)^(-1/2)``: the normalisation-aware reading of eq. 8/9 (up to the constant
    ``c``, calibrated on a base network like every rule). A segment without parameterised layers costs 0; a
    network whose every segment costs 0 (no parameterised layer outside the readout) has factor 1."""
    worst = segment_sums(model, readout, leaf).worst[1]
    return 1.0 / math.sqrt(worst) if worst > 0 else 1.0
