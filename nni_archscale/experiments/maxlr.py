"""The paper's maximal-learning-rate measurement (§4 "practical recipe", App. D).

Train the network for one short epoch at every rate of a log grid
(:func:`~nni_archscale.torch_layer.rate_grid.log2_grid`), then take "the maximal learning rate which
achieves the smallest training loss at the end of one epoch": per seed, the rate whose final training loss is
lowest (ties go to the larger rate); diverged runs count as infinite loss. All rates and seeds train at once
(:mod:`nni_archscale.experiments.batched`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..torch_layer.sweep import MaximalRate
from ..rules.first_step import CellInit
from .batched import BatchedCellNet, ReplicaOptimizer

#: the paper's objective as its experiments apply it (§4, App. D): exactly the lowest final loss, ties to the larger
OBJECTIVE = MaximalRate(tolerance=0.0)


@dataclass(frozen=True)
class MaxLRResult:
    """Final training losses ``losses[seed_index, rate_index]`` and the chosen maximal rate per seed."""

    rates: tuple[float, ...]
    seeds: tuple[int, ...]
    losses: np.ndarray
    best_index: tuple[int, ...]

    @property
    def best_rates(self) -> tuple[float, ...]:
        return tuple(self.rates[i] for i in self.best_index)

    @property
    def max_lr(self) -> float:
        """Geometric mean over seeds of the per-seed maximal rate."""
        return float(2 ** np.mean(np.log2(self.best_rates)))

    @property
    def at_grid_edge(self) -> bool:
        """True when some seed's best rate is the grid's smallest or largest (widen the grid)."""
        return any(i in (0, len(self.rates) - 1) for i in self.best_index)


def train_grid(
    init: CellInit,
    x: torch.Tensor,
    y: torch.Tensor,
    rates: Sequence[float],
    seeds: Sequence[int],
    optimizer: str = "sgd",
    batch_size: int = 32,
    epochs: float = 1.0,
    loss: str = "ce",
    data_seed: int = 0,
    lr_multipliers: Mapping[str, float] | None = None,
    readout_multiplier: float = 1.0,
) -> MaxLRResult:
    """Train ``len(seeds) * len(rates)`` replicas of ``init.net`` (weights drawn from ``init``,
    :func:`nni_archscale.rules.first_step.cell_init`) for ``epochs`` epochs and measure the final training loss.

    Every replica sees the same batches (shuffled with ``data_seed``); training runs on ``x``'s device (weights
    are drawn on the CPU, so a seed gives the same init everywhere). ``loss`` is ``"ce"`` (cross-entropy, what
    the paper's experiments use) or ``"mse"`` (on one-hot targets, the theory's eq. 6).
    ``lr_multipliers`` (parameter name -> factor) and ``readout_multiplier`` set per-layer rates and a readout
    forward multiplier, e.g. muP's (:func:`nni_archscale.experiments.mup_cellnet.mup_parametrization`).
    """
    s, k = len(seeds), len(rates)
    replicas = s * k
    device = x.device
    model = BatchedCellNet(init.net, replicas)
    model.initialise(init, [seed for seed in seeds for _ in range(k)])  # drawn on the CPU: same on any device
    model.to(device)
    model.readout_multiplier = float(readout_multiplier)
    lrs = torch.tensor([rate for _ in seeds for rate in rates], device=device)
    names, params = zip(*model.named_parameters())
    multipliers = None
    if lr_multipliers is not None:
        unknown = set(lr_multipliers) - set(names)
        if unknown:
            raise ValueError(f"lr_multipliers names no parameter of the network: {sorted(unknown)}")
        multipliers = [lr_multipliers.get(n, 1.0) for n in names]
    opt = ReplicaOptimizer(params, lrs, optimizer, multipliers=multipliers)
    active = torch.ones(replicas, dtype=torch.bool, device=device)
    n = x.shape[0]
    steps = max(1, int(round(epochs * n / batch_size)))
    gen = torch.Generator().manual_seed(data_seed)
    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(math.ceil(steps * batch_size / n) + 1)])
    order = order.to(device)
    for step in range(steps):
        idx = order[step * batch_size:(step + 1) * batch_size]
        out = model(x[idx])
        per = _loss(out, y[idx], loss)
        finite = torch.isfinite(per)
        active &= finite
        per.where(finite, torch.zeros_like(per)).sum().backward()
        opt.step(active)
    with torch.no_grad():
        final = torch.zeros(replicas, device=device)
        for start in range(0, n, 512):
            out = model(x[start:start + 512])
            final += _loss(out, y[start:start + 512], loss) * out.shape[1]
        final /= n
    final = torch.where(active & torch.isfinite(final), final, torch.full_like(final, float("inf")))
    losses = final.reshape(s, k).cpu().numpy()
    return MaxLRResult(tuple(rates), tuple(seeds), losses, tuple(best_index(row) for row in losses))


def best_index(losses: Sequence[float]) -> int:
    """Index of the lowest final loss over an ascending grid; ties go to the larger rate (the paper's "maximal"
    rate): the engine's objective :data:`OBJECTIVE` (no tolerance). When every rate diverged (all losses
    infinite), the largest."""
    return OBJECTIVE.index(losses)


def _loss(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-replica mean loss; ``out`` is (R, B, C)."""
    r, b, c = out.shape
    if kind == "ce":
        return F.cross_entropy(out.reshape(r * b, c), y.repeat(r), reduction="none").reshape(r, b).mean(1)
    target = F.one_hot(y, c).to(out.dtype)
    return 0.5 * ((out - target) ** 2).sum(-1).mean(1)
