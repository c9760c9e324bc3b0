"""Typed errors. Every message names what is wrong and what to do next.

All errors derive from :class:`ArchScaleError`, so a caller (the CLI, an NNI trial) can catch one type and
print one line. The subclasses say *which* stage refused the input.
"""

from __future__ import annotations


class ArchScaleError(Exception):
    """Base class of every error this package raises on purpose."""


class ArchitectureParseError(ArchScaleError, ValueError):
    """A textual architecture (NAS-Bench-201 string, paper code, text or JSON graph) could not be read."""


class GraphStructureError(ArchScaleError, ValueError):
    """A graph is structurally invalid: cycle, self-loop, edge out of range, duplicate edge, no nodes."""


class NoPathError(ArchScaleError, ValueError):
    """The graph has no input-to-output path, so the learning-rate rule (eq. 8) is undefined."""


class RuleError(ArchScaleError, ValueError):
    """A scaling rule cannot be applied to this graph or these options."""


class CanonicalFormError(ArchScaleError, RuntimeError):
    """The canonical form of a graph is too expensive to compute (a highly symmetric graph)."""
