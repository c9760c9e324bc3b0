"""The published NAS-Bench-201 accuracy table: where ``archscale experiment nb201`` finds it, and reading it.

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
with an ``ArchitectureString`` column and the accuracy column works (:func:`read_published`, which validates
every row); one source is the NATS-Bench API (``get_more_info(i, dataset, hp=200)``) exported to CSV.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArchitectureParseError, DataError, GraphStructureError
from ..core.formats import from_nb201

ENV_VAR = "ARCHSCALE_NB201_TABLE"
FILE_NAME = "nb201_accuracies.csv"
ARCH_COLUMN = "ArchitectureString"
#: published accuracy column per dataset (NATS-Bench topology table, as in ../shared/data/nb201_accuracies.csv)
PUBLISHED_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}


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
                  f"(see nni_archscale/fairness/published_table.py for its source)")


@dataclass(frozen=True)
class PublishedTable:
    path: str
    column: str
    archs: tuple[str, ...]
    accuracy: tuple[float, ...]


def read_published(path: str | Path, column: str) -> PublishedTable:
    """Read a published accuracy table (CSV with ``ArchitectureString`` and ``column``), validating everything."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"published accuracy table {str(p)!r} does not exist; pass --published PATH to a CSV with "
                        f"columns {ARCH_COLUMN} and {column} (see nni_archscale/fairness/published_table.py for where it is looked up)")
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read published table {str(p)!r} ({type(exc).__name__}: {exc}); it must be a "
                        f"UTF-8 CSV file with a header row") from None
    if not header:
        raise DataError(f"published table {str(p)!r} is empty; it needs a header row with {ARCH_COLUMN} and "
                        f"{column}")
    header = [h.strip() for h in header]
    missing = [c for c in (ARCH_COLUMN, column) if c not in header]
    if missing:
        raise DataError(f"published table {str(p)!r} lacks column(s) {', '.join(missing)} (found: "
                        f"{', '.join(header[:8])}{' ...' if len(header) > 8 else ''}); name the accuracy column "
                        f"with --published-column, or fix the CSV header")
    if not rows:
        raise DataError(f"published table {str(p)!r} has a header but no rows")
    archs, accs = [], []
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        arch, value = (row.get(ARCH_COLUMN) or "").strip(), (row.get(column) or "").strip()
        try:
            from_nb201(arch)
        except (ArchitectureParseError, GraphStructureError) as exc:
            raise DataError(f"published table {str(p)!r}, line {line}: {ARCH_COLUMN} {arch!r} is not a "
                            f"NAS-Bench-201 cell ({exc})") from None
        try:
            acc = float(value)
        except ValueError:
            acc = math.nan
        if not math.isfinite(acc) or not (0.0 <= acc <= 100.0):
            raise DataError(f"published table {str(p)!r}, line {line}: {column} = {value!r} is not an accuracy "
                            f"in percent (a number from 0 to 100)")
        archs.append(arch)
        accs.append(acc)
    return PublishedTable(str(p), column, tuple(archs), tuple(accs))
