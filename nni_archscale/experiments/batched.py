"""Many copies of one DAG-cell network trained at once, each with its own learning rate and seed.

The paper's maximal-learning-rate protocol (§4, App. D) trains every candidate at every rate of a grid. For
the small networks of its §4.1/§4.2 experiments the cost is all Python overhead, so we train ``R`` replicas
in one batched module: replica ``r`` has its own weights (a leading replica dimension, ``torch.bmm`` for
Linear layers, a grouped convolution for Conv layers) and its own learning rate; replicas that share a seed
share their initial weights, so the grid compares rates from the same init.

The network is the paper's DAG-cell network as released (paper-notes §1): a stem (Linear or Conv, then the
activation) gives node 0; every cell edge is zero, identity, or Linear/Conv then activation (the released
convention, ``"linear-act"``) or activation then Linear/Conv (eq. 1, ``"eq1"``); a node sums its incoming
edges, optionally times a fixed scalar (``node_scales``, the variance-exact init); the last node feeds a
linear readout (after global average pooling for CNNs).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..core.graph import Edge, EdgeKind
from ..core.networks import CellNetwork
from ..rules.first_step import CellInit


def cell_forward(spec: CellNetwork, stem_out: torch.Tensor, linear, act,
                 node_scales: torch.Tensor | None = None) -> torch.Tensor:
    """The cell's last node, from the stem's output (before its activation). ``linear(edge, z)`` applies a
    parameterised edge's Linear/Conv; the convention decides where the activation goes (after it for the
    release's ``linear-act``, before it for eq. 1, whose node 0 is the symmetric pre-activation). Skips pass the
    node on, pools average (CNNs), and a node sums its edges, times ``node_scales[v]`` when given."""
    nodes = [stem_out if spec.convention == "eq1" else act(stem_out)]
    for v in range(1, spec.cell.num_nodes):
        total = None
        for e in spec.cell.in_edges[v]:
            src = nodes[e.src]
            if e.kind is EdgeKind.PARAM:
                out = act(linear(e, src)) if spec.convention == "linear-act" else linear(e, act(src))
            elif e.kind is EdgeKind.POOL and spec.kind == "cnn":
                out = F.avg_pool2d(src, e.kernel_size, stride=1, padding=e.kernel_size // 2, count_include_pad=False)
            else:
                out = src
            total = out if total is None else total + out
        if total is None:
            total = torch.zeros_like(nodes[0])
        nodes.append(total if node_scales is None else total * node_scales[v])
    return nodes[-1]


class BatchedCellNet(torch.nn.Module):
    """``replicas`` independent copies of a DAG-cell network in one module (see the module docstring)."""

    def __init__(self, spec: CellNetwork, replicas: int):
        super().__init__()
        self.spec = spec
        self.replicas = replicas
        r, n = replicas, spec.width
        self.act = torch.relu if spec.activation == "relu" else F.gelu
        self.edges = list(spec.cell.parameterised_edges)
        if spec.kind == "mlp":
            self.stem_w = torch.nn.Parameter(torch.empty(r, spec.in_features, n))
            self.edge_w = torch.nn.ParameterList([torch.nn.Parameter(torch.empty(r, n, n)) for _ in self.edges])
        else:
            k = spec.kernel_size
            self.stem_w = torch.nn.Parameter(torch.empty(r * n, spec.in_features, k, k))
            self.edge_w = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.empty(r * n, n, e.kernel_size, e.kernel_size)) for e in self.edges]
            )
        self.stem_b = torch.nn.Parameter(torch.zeros(r, n))
        self.edge_b = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(r, n)) for _ in self.edges])
        self.readout_w = torch.nn.Parameter(torch.empty(r, n, spec.num_classes))
        self.readout_b = torch.nn.Parameter(torch.zeros(r, spec.num_classes))
        self.register_buffer("node_scales", torch.ones(spec.cell.num_nodes))
        self.readout_multiplier = 1.0  # a fixed forward multiplier on the readout's input (muP's 1 / width_mult)

    # ------------------------------------------------------------------ init
    @torch.no_grad()
    def initialise(self, init: CellInit, seeds: Sequence[int]) -> None:
        """Draw weights from ``init``'s variances (:func:`nni_archscale.rules.first_step.cell_init`): replica ``r``
        uses ``seeds[r]``; replicas with equal seeds get equal weights."""
        if len(seeds) != self.replicas:
            raise ValueError(f"need one seed per replica ({self.replicas}), got {len(seeds)}")
        drawn: dict[int, list[torch.Tensor]] = {}
        for r, seed in enumerate(seeds):
            if seed not in drawn:
                gen = torch.Generator().manual_seed(int(seed))
                drawn[seed] = [
                    torch.randn(self._one(self.stem_w).shape, generator=gen) * math.sqrt(init.variance("stem")),
                    *(torch.randn(self._one(w).shape, generator=gen) * math.sqrt(init.variance("edge", e))
                      for e, w in zip(self.edges, self.edge_w)),
                    torch.randn(self.readout_w.shape[1:], generator=gen) * math.sqrt(init.readout_variance),
                ]
            stem, *edges, readout = drawn[seed]
            self._one(self.stem_w, r).copy_(stem)
            for w, value in zip(self.edge_w, edges):
                self._one(w, r).copy_(value)
            self.readout_w[r].copy_(readout)
        for b in [self.stem_b, self.readout_b, *self.edge_b]:
            b.zero_()
        if init.node_scales is not None:
            self.node_scales.copy_(torch.tensor(init.node_scales, dtype=self.node_scales.dtype))

    def _one(self, w: torch.Tensor, r: int | None = None) -> torch.Tensor:
        """The slice of a parameter that belongs to replica ``r`` (shape of one replica when r is None)."""
        if self.spec.kind == "mlp" or w.dim() == 3:
            return w[0 if r is None else r]
        n = self.spec.width
        return w[(0 if r is None else r) * n:((0 if r is None else r) + 1) * n]

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: (B, features) for MLPs or (B, C, H, W) for CNNs, shared by all replicas. Returns (R, B, classes)."""
        spec, r, n = self.spec, self.replicas, self.spec.width
        if spec.kind == "mlp":
            h = torch.einsum("bi,rin->rbn", x, self.stem_w) + self.stem_b[:, None, :]
        else:
            xr = x.repeat(1, r, 1, 1)
            h = F.conv2d(xr, self.stem_w, padding=spec.kernel_size // 2, groups=r)
            h = h + self.stem_b.reshape(1, r * n, 1, 1)
        index = {e: i for i, e in enumerate(self.edges)}

        def linear(e: Edge, z: torch.Tensor) -> torch.Tensor:
            return self._linear(z, self.edge_w[index[e]], self.edge_b[index[e]], e.kernel_size)

        last = cell_forward(spec, h, linear, self.act, self.node_scales)
        if spec.kind == "cnn":
            last = last.mean(dim=(2, 3)).reshape(last.shape[0], r, n).transpose(0, 1)
        if self.readout_multiplier != 1.0:
            last = last * self.readout_multiplier
        return torch.bmm(last, self.readout_w) + self.readout_b[:, None, :]

    def _linear(self, z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, q: int) -> torch.Tensor:
        if self.spec.kind == "mlp":
            return torch.bmm(z, w) + b[:, None, :]
        r, n = self.replicas, self.spec.width
        return F.conv2d(z, w, padding=q // 2, groups=r) + b.reshape(1, r * n, 1, 1)

    def replica_parameters(self) -> list[torch.Tensor]:
        return list(self.parameters())


def replica_view(p: torch.Tensor, replicas: int) -> torch.Tensor:
    """A parameter (or its gradient) reshaped to (replicas, -1)."""
    return p.reshape(replicas, -1)


class ReplicaOptimizer:
    """SGD or Adam where replica ``r`` uses learning rate ``lrs[r]`` (one tensor op per parameter).

    SGD: ``p -= lr * g`` (momentum 0, no weight decay: the paper's one-epoch search, paper-notes §3).
    Adam: the standard update (beta1 0.9, beta2 0.999, eps 1e-8, bias-corrected).
    Replicas marked diverged are frozen. ``multipliers`` (one per parameter, default all 1) scale each
    parameter's rate, as per-layer rates do (muP's, :mod:`.mup_cellnet`).
    """

    def __init__(self, params: Sequence[torch.Tensor], lrs: torch.Tensor, kind: str = "sgd",
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 multipliers: Sequence[float] | None = None):
        if kind not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {kind!r}")
        self.params = list(params)
        self.multipliers = [1.0] * len(self.params) if multipliers is None else [float(m) for m in multipliers]
        if len(self.multipliers) != len(self.params):
            raise ValueError(f"need one multiplier per parameter ({len(self.params)}), got {len(self.multipliers)}")
        self.replicas = int(lrs.numel())
        self.lrs = lrs.reshape(-1, 1).to(torch.float32)
        self.kind = kind
        self.betas, self.eps, self.step_count = betas, eps, 0
        self.state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params] if kind == "adam" else None

    @torch.no_grad()
    def step(self, active: torch.Tensor) -> None:
        """Update replicas where ``active`` (bool, (R,)) is true."""
        self.step_count += 1
        lr = self.lrs * active.reshape(-1, 1).to(self.lrs.dtype)
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = replica_view(torch.nan_to_num(p.grad, nan=0.0, posinf=0.0, neginf=0.0), self.replicas)
            pv = replica_view(p.data, self.replicas)
            lr_p = lr if self.multipliers[i] == 1.0 else lr * self.multipliers[i]
            if self.kind == "sgd":
                pv.sub_(lr_p * g)
            else:
                m, v = (replica_view(s, self.replicas) for s in self.state[i])
                b1, b2 = self.betas
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                mhat = m / (1 - b1**self.step_count)
                vhat = v / (1 - b2**self.step_count)
                pv.sub_(lr_p * mhat / (vhat.sqrt() + self.eps))
            p.grad = None
