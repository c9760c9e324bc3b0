"""Typed errors of the training side (torch layer, NNI glue, calibration, search).

They subclass :class:`~nni_archscale.errors.ArchScaleError`, so the CLI prints them as one line naming the
problem and the fix. Pure Python: importing this module imports neither torch nor NNI.
"""

from __future__ import annotations

from .errors import ArchScaleError


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
