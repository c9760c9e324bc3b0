"""Init variances of every layer of a DAG-cell network, for each init scheme.

* ``paper``: He fan-in stem; cell edges ``2 / (d_in(target) fan_in)`` (eq. 4 as App. A eq. 12); readout
  ``1 / fan_in^2`` (mean-field, eq. 2).
* ``release``: the released MLP/CNN code: fan_out everywhere (the stem too), source in-degree, readout
  ``(2 / num_classes)^2``.
* ``standard``: He fan-in everywhere, readout ``1 / fan_in``.
* ``exact``: ``paper`` plus fixed node-sum scalars that keep every node at the input's second moment
  (:func:`nni_archscale.moments.exact_node_scales`, computed for the network's edge convention).
"""

from __future__ import annotations

from ..moments import exact_node_scales
from ..scaling_rules import node0_moments
from ..rules import edge_init, readout_init
from .batched import CellNetSpec, LayerVariances, fan_in

INITS = ("paper", "release", "standard", "exact")


def _fan_out(spec: CellNetSpec, layer: str, edge=None) -> int:
    if layer == "stem":
        return spec.width * (spec.kernel_size**2 if spec.kind == "cnn" else 1)
    if layer == "readout":
        return spec.num_classes
    q = edge.kernel_size if spec.kind == "cnn" else 1
    return spec.width * q * q


def layer_variances(spec: CellNetSpec, init: str = "paper") -> LayerVariances:
    """Variances of stem, every parameterised cell edge and readout (and node scales for ``exact``)."""
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; use one of {', '.join(INITS)}")
    context = "cnn-cell" if spec.kind == "cnn" else "mlp-cell"
    preset = "paper" if init == "exact" else init
    edges = {}
    for item in edge_init(spec.cell, preset, context):
        fan = _fan_out(spec, "edge", item.edge) if item.fan == "fan_out" else fan_in(spec, "edge", item.edge)
        edges[item.edge] = item.variance(fan)
    ro = readout_init(preset, context)
    readout = ro.variance(_fan_out(spec, "readout") if ro.fan == "fan_out" else fan_in(spec, "readout"))
    stem = 2.0 / (_fan_out(spec, "stem") if init == "release" else fan_in(spec, "stem"))
    scales = None
    if init == "exact":
        gains = {item.edge: float(item.gain) for item in edge_init(spec.cell, "paper", context)}
        mean, second = node0_moments(2.0, spec.convention, spec.activation)  # He stem
        scales = exact_node_scales(spec.cell, gains, convention=spec.convention, activation=spec.activation,
                                   input_second_moment=second, input_mean=mean)
    return LayerVariances(stem, edges, readout, scales)
