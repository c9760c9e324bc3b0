"""The NAS-Bench-201 cells the experiments and ``archscale fairness`` train: the space of all 15,625 cell strings,
each cell's NNI ``NasBench201`` sample and path statistic, and the stratified, seeded sample of cells (by the
deciles of a published accuracy table when one is given, else by the deciles of ``sum_p L_p^3``; isomorphic
cells are drawn once)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import ArchScaleError
from ..core.formats import NB201_TO_NNI_OPS, from_nb201, nb201_cells
from ..core.graph import ArchGraph
from ..core.paths import path_statistics, power_sum
from .published_table import PublishedTable


class ExperimentError(ArchScaleError, ValueError):
    """The experiment's options are inconsistent (unknown recipe, too few cells, a missing optional package)."""


def all_cells() -> list[str]:
    """Every one of the 15,625 NAS-Bench-201 cell strings (product order, not the benchmark's index order)."""
    return list(nb201_cells())


def nni_sample(arch: str, label: str = "cell") -> dict[str, str]:
    """The NNI ``NasBench201`` sample dict (``'cell/<j>_<i>'`` -> op) of a NAS-Bench-201 string."""
    from_nb201(arch)  # validates, with the parser's own error messages
    sample = {}
    for i, group in enumerate(arch.strip().split("+"), start=1):
        for token in group.strip()[1:-1].split("|"):
            op, _, j = token.partition("~")
            sample[f"{label}/{int(j)}_{i}"] = NB201_TO_NNI_OPS[op]
    return sample


def depth_power_sum(cell: ArchGraph) -> int:
    """sum_p L_p^3 with L_p = 1 + k_p (the ``nb201-cell`` rule's count; 0 for a cell without a path)."""
    return power_sum(path_statistics(cell).output, 3, 1)


@dataclass(frozen=True)
class Candidate:
    cell: int               # position in the sample
    arch: str               # NAS-Bench-201 string
    stratum: int            # 0 (lowest decile) .. bins-1
    published: float | None  # published accuracy (percent) when a table was given
    index: int | None        # row of the published table



def _strata(order: Sequence[int], bins: int) -> list[list[int]]:
    return [list(chunk) for chunk in np.array_split(np.asarray(order, dtype=int), bins) if len(chunk)]


def stratified_sample(values: Sequence[float], archs: Sequence[str], count: int, seed: int = 0,
                      bins: int = 10) -> list[tuple[int, int]]:
    """``count`` (item, stratum) pairs: items ranked by ``values`` (ties broken by a seeded shuffle), split into
    ``bins`` equal-count strata (deciles), the same number drawn from each stratum (the remainder from randomly
    chosen strata), uniformly inside a stratum; an item isomorphic to one already drawn is skipped."""
    if count < 1:
        raise ExperimentError(f"cells must be at least 1, got {count}")
    rng = random.Random(seed)
    tiebreak = list(range(len(values)))
    rng.shuffle(tiebreak)
    order = sorted(range(len(values)), key=lambda i: (values[i], tiebreak[i]))
    strata = _strata(order, min(bins, len(order)))
    quota = [count // len(strata)] * len(strata)
    for s in rng.sample(range(len(strata)), count % len(strata)):
        quota[s] += 1
    pools = [rng.sample(s, len(s)) for s in strata]
    seen: set[ArchGraph] = set()
    chosen: list[tuple[int, int]] = []
    short = 0
    for s, pool in enumerate(pools):
        got = 0
        while got < quota[s] and pool:
            i = pool.pop()
            g = from_nb201(archs[i])
            if g in seen:
                continue
            seen.add(g)
            chosen.append((i, s))
            got += 1
        short += quota[s] - got
    # a stratum ran out of distinct cells: fill the shortfall from the other strata, in stratum order
    while short and any(pools):
        for s, pool in enumerate(pools):
            while short and pool:
                i = pool.pop()
                g = from_nb201(archs[i])
                if g not in seen:
                    seen.add(g)
                    chosen.append((i, s))
                    short -= 1
                    break
    return sorted(chosen, key=lambda t: (t[1], t[0]))


def sample_candidates(count: int, seed: int = 0, table: PublishedTable | None = None,
                      bins: int = 10) -> list[Candidate]:
    """The stratified sample: by published-accuracy deciles with a table, else by ``sum_p L_p^3`` deciles."""
    if table is not None:
        picks = stratified_sample(table.accuracy, table.archs, count, seed, bins)
        return [Candidate(k, table.archs[i], s, table.accuracy[i], i) for k, (i, s) in enumerate(picks)]
    archs = all_cells()
    values = [depth_power_sum(from_nb201(a)) for a in archs]
    picks = stratified_sample(values, archs, count, seed, bins)
    return [Candidate(k, archs[i], s, None, None) for k, (i, s) in enumerate(picks)]

