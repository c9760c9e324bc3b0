"""The experiments' names (datasets, families, recipes, top-K cut-offs), in a module that imports nothing.

The command line builds its argument choices from these at start-up; the modules that run the experiments
(and import torch) re-export them, so ``experiments.datasets.DATASETS`` and the like still work.
"""

#: training sets of the learning-rate experiments (:mod:`nni_archscale.experiments.datasets`)
DATASETS = ("digits", "mnist", "mnist14", "cifar10", "cifar100")

#: network families of the learning-rate prediction experiment (:mod:`nni_archscale.experiments.lr_prediction`)
FAMILIES = ("mlp-topology", "mlp-depth", "cnn-kernel")

#: recipes of the NAS-Bench-201 retraining experiment (:mod:`nni_archscale.experiments.nb201`)
RECIPES = ("benchmark", "shared", "archscale", "paper", "release", "exact", "mup")
#: the recipes run when none are named (the three-arm test names benchmark,shared,archscale)
DEFAULT_RECIPES = ("benchmark", "paper", "release", "exact", "mup")

#: top-K% cut-offs of the ranking comparisons (:mod:`nni_archscale.experiments.nb201`)
TOP_K = (100, 50, 25, 10)

#: NNI model spaces the space learning-rate experiment can measure (:mod:`nni_archscale.experiments.space_maxlr`)
from ..rules.names import SPACE_NAMES as SPACE_LR_SPACES  # noqa: E402
