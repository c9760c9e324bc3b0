"""The NAS-Bench-201 cells the experiments train: moved to the product (:mod:`nni_archscale.nb201_sampling`,
which ``archscale fairness`` uses too); re-exported here for the experiments."""

from ..nb201_sampling import (Candidate, ExperimentError, all_cells, depth_power_sum, nni_sample,  # noqa: F401
                              sample_candidates, stratified_sample)
