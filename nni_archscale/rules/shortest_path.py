"""The shortest-path rate rule: the rate set by the shallowest input-output path, ``eta ∝ L_min^(-3/2)``.

A rival to the paper's path sum (eq. 8, ``eta ∝ (sum_p L_p^3)^(-1/2)``): where a skip connection gives the
network a short path, that path's depth bounds the rate (arXiv 2510.04327). ``L_min`` counts the parameterised
layers on the shallowest path the way the preset counts ``L_p`` (:func:`nni_archscale.rules.paper.depth_offset`), so
the base network (one path of ``L_base`` layers, ``L_base^3`` = the preset's base sum) gets ``base_lr``:

    eta = base_lr * (L_base / L_min)^(3/2) * kernel_factor

with the graph rule's kernel factor (eq. 9's ``q_base / q``). Pure graph maths: no torch.
"""

from __future__ import annotations

from ..errors import NoPathError
from ..core.graph import ArchGraph
from ..core.paths import depth_range
from .paper import base_depth_power_sum, depth_offset


def shortest_depth(graph: ArchGraph, preset: str, context: str) -> int:
    """``L_min``: the fewest parameterised layers on any input-output path, counted as ``preset`` counts in
    ``context`` (at least 1: a path of skips still crosses the layer the preset counts as the base's)."""
    span = depth_range(graph)
    if span is None:
        raise NoPathError("the graph has no input-output path, so it has no shortest path; the network computes a "
                          "constant")
    return max(1, span[0] + depth_offset(preset, context))


def base_depth(preset: str, context: str) -> int:
    """``L_base``: the depth of the base network's one path (the cube root of the preset's base sum)."""
    return max(1, round(base_depth_power_sum(preset, context) ** (1.0 / 3.0)))


def shortest_path_rate(graph: ArchGraph, base_lr: float, preset: str, context: str,
                       kernel_factor: float = 1.0) -> float:
    """``base_lr * (L_base / L_min)^(3/2) * kernel_factor`` (module docstring)."""
    return base_lr * (base_depth(preset, context) / shortest_depth(graph, preset, context)) ** 1.5 * kernel_factor
