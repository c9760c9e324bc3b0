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

from ..presets import INITS, Init
from ..scaling_rules import network_spec
from .batched import CellNetSpec, LayerVariances, fan_in

__all__ = ["INITS", "layer_variances"]


def layer_variances(spec: CellNetSpec, init: str = "paper") -> LayerVariances:
    """Variances of stem, every parameterised cell edge and readout (and node scales for ``exact``), from the
    same per-layer gains the first-step rules use (:func:`nni_archscale.scaling_rules.network_spec`)."""
    init = Init.of(init).value
    net = network_spec(spec.cell, spec.kind, init, spec.width, spec.in_features, spec.num_classes,
                       spec.convention, spec.activation)
    # gain = Var * fan_in for every layer (fan_out = fan_in for the width -> width cell layers)
    edges = {e: g / fan_in(spec, "edge", e) for e, g in net.gains.items()}
    return LayerVariances(net.stem_gain / fan_in(spec, "stem"), edges, net.readout_variance, net.node_scales)
