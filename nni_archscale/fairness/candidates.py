"""The candidates a fairness run trains: a seeded sample of a space, each rebuildable from a small JSON spec.

Spaces: every NNI hub space ``archscale search --space`` takes (:mod:`nni_archscale.nni_glue.spaces`), and
``dagcell``, the paper's DAG-cell MLP space (§4.1: the 3^10 five-node cells of zero / skip / Linear+ReLU edges,
a Linear+ReLU stem and a linear readout, no normalisation; :class:`~nni_archscale.torch_layer.dag_cell.DagCellMLP`).

NAS-Bench-201 candidates are stratified by a published accuracy table when one is found (deciles of the
CIFAR-10 column, :mod:`nni_archscale.fairness.published_table`), else by ``sum_p L_p^3``; cells without an input-output
path are left out (they compute a constant: every rate scores chance, so they would only add ties). Other NNI
spaces are sampled by seed (NNI's own ``space.random``), skipping samples NNI rejects; DAG cells uniformly
among the distinct cells with a path, the base cell excluded.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

from ..core.formats import from_paper_code, to_nb201, to_paper_code
from ..core.paths import depth_range, has_input_output_path, live_edges_only

#: the DAG-cell space's base network: one Linear edge from input to output (the rate ``c`` is calibrated on it)
DAG_BASE_CELL = "0_00_000_2000"
BASE_KEY = "base"


@dataclass(frozen=True)
class CandidateSpec:
    """How to rebuild one candidate: ``key`` (its name in the records), the NNI ``sample`` (NNI spaces) or the
    DAG cell's paper code (``code``), the sampling seed (NNI spaces other than NB201), its stratum and published
    accuracies (NB201 with a table)."""

    key: str
    sample: dict | None = None
    code: str | None = None
    seed: int | None = None
    stratum: int | None = None
    published: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CandidateSpec":
        return cls(**d)


def sample_dag_cells(count: int, seed: int = 0) -> list[CandidateSpec]:
    """``count`` distinct five-node cells, uniformly among the codes of the 3^10 space, each reduced to its live
    edges (those on an input-output path: dead-end branches compute nothing the output sees, so the network is
    the same) and kept when at least one parameterised edge lies on an input-output path: a cell whose every path
    is skips is the base network's stem and readout in disguise (a scaled identity), which the hook does not
    recognise as a DAG cell and which no rate rule tells apart. The base cell and repeats are excluded."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[CandidateSpec] = []
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > 100_000:
            raise ValueError(f"could not draw {count} distinct DAG cells with a path; ask for fewer")
        drawn = from_paper_code("_".join("".join(rng.choice("012") for _ in range(i)) for i in range(1, 5)))
        if not has_input_output_path(drawn):
            continue
        live = live_edges_only(drawn)
        code = to_paper_code(live)
        if code in seen or code == DAG_BASE_CELL or depth_range(live)[1] < 1:
            continue
        seen.add(code)
        out.append(CandidateSpec(key=code, code=code))
    return out


def sample_nb201(count: int, seed: int = 0, table_path=None) -> tuple[list[CandidateSpec], str]:
    """``count`` stratified NB201 cells (module docstring) and a line saying how they were stratified."""
    from .nb201_sampling import nni_sample, stratified_sample
    from .published_table import PUBLISHED_COLUMNS, find_published_table, read_published
    from ..core.formats import from_nb201

    path, how = find_published_table(table_path)
    if path is not None:
        tables = {name: read_published(path, col) for name, col in PUBLISHED_COLUMNS.items()}
        first = tables["cifar10"]
        keep = [i for i, a in enumerate(first.archs) if has_input_output_path(from_nb201(a))]
        archs = [first.archs[i] for i in keep]
        values = [first.accuracy[i] for i in keep]
        picks = stratified_sample(values, archs, count, seed)
        by_arch = {name: dict(zip(t.archs, t.accuracy)) for name, t in tables.items()}
        specs = [CandidateSpec(key=to_nb201(from_nb201(archs[i])), sample=nni_sample(archs[i]), stratum=s,
                               published={n: by_arch[n][archs[i]] for n in by_arch}) for i, s in picks]
        return specs, f"stratified by published CIFAR-10 accuracy deciles ({path}, found by {how})"
    from .nb201_sampling import all_cells, depth_power_sum

    archs = [a for a in all_cells() if has_input_output_path(from_nb201(a))]
    values = [depth_power_sum(from_nb201(a)) for a in archs]
    picks = stratified_sample(values, archs, count, seed)
    return ([CandidateSpec(key=archs[i], sample=nni_sample(archs[i]), stratum=s) for i, s in picks],
            f"stratified by sum_p L_p^3 deciles ({how})")


def sample_space(space: str, count: int, seed: int = 0, options: dict | None = None,
                 num_classes: int = 10) -> list[CandidateSpec]:
    """``count`` distinct samples of an NNI hub space, by NNI's ``space.random`` at seeds ``seed, seed+1, ...``
    (seeds NNI rejects are skipped; the space's base network, seed 0's sample, is left out)."""
    from ..nni_glue.spaces import SampleRejected, sample_model
    from ..nni_glue.trial import arch_key

    out, seen = [], set()
    s = seed
    base_sample, _ = sample_model(space, 0, num_classes, **(options or {}))
    seen.add(arch_key(base_sample))
    while len(out) < count:
        if s > seed + 50 * count + 100:
            raise ValueError(f"{space}: too many seeds rejected or repeated; ask for fewer candidates")
        try:
            sample, _ = sample_model(space, s, num_classes, **(options or {}))
        except SampleRejected:
            s += 1
            continue
        key = arch_key(sample)
        if key not in seen:
            seen.add(key)
            out.append(CandidateSpec(key=key, sample=sample, seed=s))
        s += 1
    return out
