"""nni-archscale: architecture-aware initialisation and learning rates for every NAS candidate.

Layers, from the bottom (docs/design.md, "Layers"; lower never imports higher): ``core`` (graphs, formats, path
statistics, networks) and ``rules`` (init variances, learning rates, the rate-rule registry, the defaults) are pure
Python; ``torch_layer`` imports torch, never NNI; only ``nni_glue`` imports ``nni``; ``fairness`` and ``cli`` sit on
top. The research (``experiments``) and the symbolic checks (``symbolic``) stand beside the product. This module
re-exports the core's and the rules' public API.
"""

from .errors import (
    ArchitectureParseError,
    ArchScaleError,
    CanonicalFormError,
    GraphStructureError,
    NoPathError,
    RuleError,
)
from .core.formats import (
    from_edges,
    from_json,
    from_nb201,
    from_networkx,
    from_paper_code,
    from_text,
    parse_architecture,
    to_json,
    to_nb201,
    to_networkx,
    to_paper_code,
    to_text,
)
from .core.graph import ArchGraph, Edge, EdgeKind
from .core.paths import PathStatistics, compose_moments, path_statistics
from .core.networks import CellNetwork, Network, bare, dag_cell_network, nb201_network
from .rules.presets import Init, Preset
from .rules.paper import PRESETS, Scaling, learning_rate, scale

__version__ = "0.1.0"

__all__ = [
    "ArchGraph", "Edge", "EdgeKind", "PathStatistics", "Scaling", "PRESETS",
    "ArchScaleError", "ArchitectureParseError", "GraphStructureError", "NoPathError", "RuleError",
    "CanonicalFormError",
    "from_edges", "from_json", "from_nb201", "from_networkx", "from_paper_code", "from_text",
    "parse_architecture", "to_json", "to_nb201", "to_networkx", "to_paper_code", "to_text",
    "path_statistics", "compose_moments", "learning_rate", "scale",
    "Init", "Preset", "Network", "CellNetwork", "bare", "dag_cell_network", "nb201_network",
]
