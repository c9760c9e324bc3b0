"""Fixed scalars on node sums (the variance-exact init, ``--init exact``), applied to torch modules.

A node that sums its incoming edges and is then multiplied by ``alpha`` is the same as every incoming edge's
output multiplied by ``alpha``. So the scalars are applied as forward hooks on the edge modules (any module:
convolutions, identities, pooling), with no change to the model's code. The scalars themselves come from
:func:`nni_archscale.rules.forward_moments.exact_node_scales`; see :func:`nni_archscale.rules.planner.nb201_output_scales`.
"""

from __future__ import annotations

from typing import Mapping

from torch import nn

from ..errors import InitPlanError


def apply_output_scales(model: nn.Module, scales: Mapping[str, float]) -> list:
    """Multiply the output of each named module by its scalar; returns the hook handles (``.remove()`` undoes).

    Raises :class:`~nni_archscale.errors.InitPlanError` when a name matches no module, so a wrong plan never passes silently.
    """
    modules = dict(model.named_modules())
    missing = [name for name in scales if name not in modules]
    if missing:
        raise InitPlanError(
            f"node scales name {len(missing)} module(s) the model does not have (first: {missing[0]!r}); "
            "the graph and the model disagree: rebuild the model from the same architecture"
        )
    handles = []
    for name, alpha in scales.items():
        module = modules[name]
        for key, hook in list(module._forward_hooks.items()):  # preparing a model again replaces, never stacks
            if isinstance(hook, _Scale):
                del module._forward_hooks[key]
        if alpha != 1.0:
            handles.append(module.register_forward_hook(_Scale(float(alpha))))
    return handles


class _Scale:
    """A picklable forward hook: ``output * alpha``."""

    def __init__(self, alpha: float):
        self.alpha = alpha

    def __call__(self, module, inputs, output):
        return output * self.alpha
