"""Typed errors, all of them. Every message names what is wrong and what to do next.

All errors derive from :class:`ArchScaleError`, so a caller (the CLI, an NNI trial) can catch one type and
print one line. The subclasses say *which* stage refused the input: reading and checking graphs and rules (the
core and the rules), then the training side (torch layer, NNI glue, calibration, search). Pure Python: importing
this module imports neither torch nor NNI, so every layer (docs/design.md) may import it.
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


class RateUnderflowError(RuleError):
    """Eq. 8's rate ``base_lr * sqrt(S_base / sum_p L_p^3)`` is below the smallest normal float64 (a graph with
    more than about 10^300 weighted paths): no optimizer can take such a step, so the rule refuses the graph."""


class CanonicalFormError(ArchScaleError, RuntimeError):
    """The canonical form of a graph is too expensive to compute (a highly symmetric graph)."""


class InputFileError(ArchScaleError, ValueError):
    """A file given as input cannot be read safely: it is not a regular file (a named pipe would block the read
    forever, a device such as /dev/zero never ends) or it holds more than the bytes read
    (:func:`nni_archscale.core.files.read_regular_file`). ``kind`` names what the path is when it is not a regular
    file (``"a named pipe (FIFO)"``...); ``size`` is the byte count found when the file is too large (None:
    more than the limit, the exact size unknown)."""

    def __init__(self, message: str, kind: str | None = None, size: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.size = size


#: How many characters of the user's input an error message echoes (see :func:`shorten`).
ECHO_LIMIT = 60


def shorten(value: object, limit: int = ECHO_LIMIT) -> str:
    """The ``repr`` of ``value`` for an error message, cut to about ``limit`` characters.

    A long string keeps its first ``limit`` characters, then ``...`` and its total length, so that a message
    never echoes a whole 80,000-character input: ``shorten("x" * 80000)`` is
    ``'xxx...x'... (80,000 characters)``. Integers too long to print (Python refuses ``repr`` past 4,300
    digits) are described by their number of digits.
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 3 * limit:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103):,} digits"
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        text = f"<{type(value).__name__} object>"
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


# --------------------------------------------------- the training side (torch layer, NNI glue, calibration, search)
class DataError(ArchScaleError, ValueError):
    """A dataset is missing, unreadable or malformed (CIFAR-10/100, ImageNet16-120 directories)."""


class ExtractionError(ArchScaleError, ValueError):
    """No architecture graph could be extracted from a model or an NNI sample."""


class InitPlanError(ArchScaleError, ValueError):
    """An init plan does not fit the model it is applied to (a planned module is missing, a fan is zero)."""


class CalibrationError(ArchScaleError, RuntimeError):
    """The base learning rate could not be calibrated (every grid point diverged, bad grid)."""


class CacheError(ArchScaleError, ValueError):
    """A calibration cache file is corrupt or of another version (reported, then recomputed)."""


class SearchError(ArchScaleError, RuntimeError):
    """A NAS search cannot start or continue (bad options, an output directory holding another run)."""


class OutputError(ArchScaleError, ValueError):
    """An output folder (``--out``) that is a file, cannot be created or cannot be written."""
