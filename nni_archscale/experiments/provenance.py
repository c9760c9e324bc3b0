"""Where a run came from: moved to the product (:mod:`nni_archscale.provenance`, which ``archscale fairness``
uses too). This name is the same module object, so the experiments and their tests see one module."""

import sys

from .. import provenance as _provenance

sys.modules[__name__] = _provenance
