"""Where ``archscale experiment nb201`` finds the published NAS-Bench-201 accuracy table.

The table (NATS-Bench topology results for all 15,625 cells: 200-epoch test accuracy on CIFAR-10, CIFAR-100 and
ImageNet16-120, with the ``|op~j|+|...|`` architecture string; about 3 MB) is not shipped inside the package: its
public copy carries no licence file, and the benchmark's data is published by its authors (Dong et al.,
NAS-Bench-201, ICLR 2020; NATS-Bench, TPAMI 2021) for research use. A user puts it at a documented local path
once, and every run finds it there:

1. ``--published PATH`` (an explicit file always wins; a missing one is an error);
2. the environment variable ``ARCHSCALE_NB201_TABLE``;
3. ``$XDG_DATA_HOME/nni-archscale/nb201_accuracies.csv`` (``~/.local/share/...`` when ``XDG_DATA_HOME`` is unset).

Without any of them the experiment runs without published accuracies (cells are stratified by ``sum_p L_p^3``
instead, and no tau against the benchmark is reported), and says where the table would be read from. Any CSV
with an ``ArchitectureString`` column and the accuracy column works (``read_published`` in :mod:`.nb201`); one
source is the NATS-Bench API (``get_more_info(i, dataset, hp=200)``) exported to CSV.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ARCHSCALE_NB201_TABLE"
FILE_NAME = "nb201_accuracies.csv"


def default_table_path() -> Path:
    """``$XDG_DATA_HOME/nni-archscale/nb201_accuracies.csv`` (``~/.local/share`` when unset)."""
    root = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(root) / "nni-archscale" / FILE_NAME


def find_published_table(explicit: str | Path | None = None) -> tuple[Path | None, str]:
    """``(path or None, how it was found)``: the explicit path, else ``$ARCHSCALE_NB201_TABLE``, else the default
    data path when the file is there. An explicit path or an environment variable naming a missing file is
    returned as given (reading it then fails with the fix), never silently skipped."""
    if explicit:
        return Path(explicit).expanduser(), "--published"
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser(), f"${ENV_VAR}"
    default = default_table_path()
    if default.is_file():
        return default, "the default data path"
    return None, (f"no published table: pass --published PATH, set ${ENV_VAR}, or put the CSV at {default} "
                  f"(see nni_archscale/experiments/published_table.py for its source)")
