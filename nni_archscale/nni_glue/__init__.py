"""The NNI glue: the only package that imports ``nni``. Thin by design (docs/design.md, "Layers").

* :mod:`.adapters` - NNI sample / frozen model -> ArchGraph (NasBench201 sample adapter, fx for any space);
* :mod:`.evaluators` - the hook for each evaluator style: :class:`ArchScaleEvaluator` (wraps ``Classification`` /
  ``Lightning``), :class:`ArchScaleCallback` (a Lightning callback), :func:`prepare_for_trial` (for
  ``FunctionalEvaluator`` users);
* :mod:`.trial`, :mod:`.search`, :mod:`.calibration` - what ``archscale search`` / ``calibrate`` run.

The names below are imported on first use (PEP 562): ``import nni_archscale.nni_glue.adapters`` alone does not
pay for :mod:`.evaluators`' Lightning import (seconds), which ``archscale inspect --space`` never needs.
"""

from importlib import import_module

#: public name -> the submodule that defines it
_EXPORTS = {
    "current_sample": "adapters", "graph_from_nb201_sample": "adapters", "prepare_candidate": "adapters",
    "ArchScaleCallback": "evaluators", "ArchScaleEvaluator": "evaluators", "prepare_for_trial": "evaluators",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
