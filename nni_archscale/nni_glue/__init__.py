"""The NNI glue: the only package that imports ``nni``. Thin by design (see docs/design.md).

* :mod:`.adapters` - NNI sample / frozen model -> ArchGraph (NasBench201 sample adapter, fx for any space);
* :mod:`.evaluators` - the hook for each evaluator style: :class:`ArchScaleEvaluator` (wraps ``Classification`` /
  ``Lightning``), :class:`ArchScaleCallback` (a Lightning callback), :func:`prepare_for_trial` (for
  ``FunctionalEvaluator`` users);
* :mod:`.trial`, :mod:`.search`, :mod:`.calibration` - what ``archscale search`` / ``calibrate`` run.
"""

from .adapters import current_sample, graph_from_nb201_sample, prepare_candidate
from .evaluators import ArchScaleCallback, ArchScaleEvaluator, prepare_for_trial

__all__ = [
    "current_sample", "graph_from_nb201_sample", "prepare_candidate",
    "ArchScaleCallback", "ArchScaleEvaluator", "prepare_for_trial",
]
