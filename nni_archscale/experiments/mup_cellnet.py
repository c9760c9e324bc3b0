"""μP for the DAG-cell networks of the learning-rate experiment, decided by the ``mup`` package itself.

The paper's App. E.3 compares against μP set up by the package's "basic usage": the readout replaced by
``MuReadout``, base shapes from a narrower copy of the same network (``set_base_shapes``), and ``MuSGD``. μP
makes no topology prediction: it claims that a rate tuned on one network transfers across *width*, so as a
predictor of each candidate's maximal rate it predicts the base network's rate for every cell. The experiment
measures how far that is off when every network is trained the μP way.

The batched trainer (:mod:`.batched`) cannot hold the package's modules, so :func:`mup_parametrization` builds
one reference copy of the network from plain torch layers plus ``MuReadout`` (:class:`CellNet`), lets the package
set its base shapes and build ``MuSGD``/``MuAdam``, and reads off what the package decided: every parameter's
learning-rate multiplier, the readout's init rescale and its forward multiplier. A test trains the reference copy
with the package's own optimizer and the batched copy with these numbers, and asserts they stay equal step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import RuleError
from ..core.networks import CellNetwork
from ..rules.first_step import CellInit
from .batched import cell_forward

INSTALL_HINT = ("the mup init needs the mup package: pip install --no-deps mup==1.0.0 (plain 'pip install mup' "
                "also pulls torchvision and a CUDA torch), or drop 'mup' from --inits")


def mup_available() -> bool:
    try:
        import mup  # noqa: F401
    except ImportError:
        return False
    return True


class CellNet(nn.Module):
    """One copy of the DAG-cell network of :class:`.batched.BatchedCellNet`, from plain torch layers.

    ``readout`` is ``mup.MuReadout`` when ``mup_readout`` is true (μP), else ``nn.Linear``.
    """

    def __init__(self, spec: CellNetwork, mup_readout: bool = True):
        super().__init__()
        self.spec = spec
        n, cnn = spec.width, spec.kind == "cnn"
        self.edge_list = list(spec.cell.parameterised_edges)
        if cnn:
            self.stem = nn.Conv2d(spec.in_features, n, spec.kernel_size, padding=spec.kernel_size // 2)
            self.edges = nn.ModuleList(nn.Conv2d(n, n, e.kernel_size, padding=e.kernel_size // 2)
                                       for e in self.edge_list)
        else:
            self.stem = nn.Linear(spec.in_features, n)
            self.edges = nn.ModuleList(nn.Linear(n, n) for _ in self.edge_list)
        if mup_readout:
            from mup import MuReadout

            self.readout = MuReadout(n, spec.num_classes)
        else:
            self.readout = nn.Linear(n, spec.num_classes)
        self.act = torch.relu if spec.activation == "relu" else F.gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = {e: i for i, e in enumerate(self.edge_list)}
        last = cell_forward(self.spec, self.stem(x), lambda e, z: self.edges[index[e]](z), self.act)
        if self.spec.kind == "cnn":
            last = last.mean(dim=(2, 3))
        return self.readout(last)


def batched_name(name: str) -> str:
    """The BatchedCellNet parameter that holds CellNet's ``name`` (``edges.2.weight`` -> ``edge_w.2``)."""
    layer, _, kind = name.rpartition(".")
    suffix = "_w" if kind == "weight" else "_b"
    if layer.startswith("edges."):
        return f"edge{suffix}.{layer.split('.')[1]}"
    return f"{layer}{suffix}"


@dataclass(frozen=True)
class MupParametrization:
    """What the ``mup`` package decided for one network: init variances (stem and cell edges are the network's
    standard He fan-in init, which μP keeps; the readout's is rescaled by ``set_base_shapes``), a learning-rate
    multiplier per parameter (BatchedCellNet names) and the readout's forward multiplier."""

    init: CellInit
    lr_multipliers: Mapping[str, float]
    readout_multiplier: float
    base_width: int


def resolve_base_width(width: int, base_width: int | None = None) -> int:
    """The μP base model's width: ``base_width``, or half the width as the NAS-Bench-201 μP recipe uses; it must
    be narrower than ``width``."""
    base = base_width or width // 2
    if not 1 <= base < width:
        raise RuleError(f"--mup-base-width must be between 1 and the width {width} (exclusive), got {base}: mup "
                        f"needs a narrower base model to tell width dimensions apart")
    return base


def mup_model(spec: CellNetwork, base_width: int) -> CellNet:
    """A :class:`CellNet` with μP base shapes from a copy of width ``base_width`` (the package's basic usage)."""
    if not mup_available():
        raise RuleError(INSTALL_HINT)
    from mup import set_base_shapes

    resolve_base_width(spec.width, base_width)
    base = CellNet(replace(spec, width=base_width), mup_readout=True)
    model = CellNet(spec, mup_readout=True)
    set_base_shapes(model, base, rescale_params=False)
    return model


def mup_parametrization(spec: CellNetwork, optimizer: str, base_width: int | None = None) -> MupParametrization:
    """Read μP's per-parameter learning-rate multipliers, readout rescale and readout multiplier off the package
    (``set_base_shapes`` then ``MuSGD``/``MuAdam`` at rate 1; App. E.3's setup). ``base_width`` defaults to
    half the width, as the NAS-Bench-201 μP recipe does."""
    if optimizer not in ("sgd", "adam"):
        raise RuleError(f"unknown optimizer {optimizer!r}; use sgd or adam")
    base_width = resolve_base_width(spec.width, base_width)
    model = mup_model(spec, base_width)
    from mup import MuAdam, MuSGD

    # the readout rescale that set_base_shapes(rescale_params=True) would apply to its weight
    with torch.no_grad():
        model.readout.weight.fill_(1.0)
        model.readout._rescale_parameters()
        readout_rescale = float(model.readout.weight.flatten()[0]) ** 2
    opt = (MuSGD if optimizer == "sgd" else MuAdam)(model.parameters(), lr=1.0)
    lr_of = {id(p): group["lr"] for group in opt.param_groups for p in group["params"]}
    multipliers = {batched_name(name): float(lr_of[id(p)]) for name, p in model.named_parameters()}
    readout_multiplier = float(model.readout.output_mult / model.readout.width_mult())
    from ..rules.first_step import cell_init

    standard = cell_init(spec, "standard")
    init = replace(standard, readout_variance=standard.readout_variance * readout_rescale)
    return MupParametrization(init, multipliers, readout_multiplier, base_width)


def copy_into_batched(model: CellNet, batched, replica: int = 0) -> None:
    """Copy a :class:`CellNet`'s weights into one replica of a BatchedCellNet (for the equivalence test)."""
    params = dict(batched.named_parameters())
    with torch.no_grad():
        for name, p in model.named_parameters():
            target = params[batched_name(name)]
            if p.dim() == 2:  # Linear (out, in) -> batched (in, out)
                target[replica].copy_(p.t())
            elif p.dim() == 4:
                n = batched.spec.width
                target[replica * n:(replica + 1) * n].copy_(p)
            else:
                target[replica].copy_(p)

