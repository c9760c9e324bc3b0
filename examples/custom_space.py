"""A custom NNI ModelSpace (LayerChoice, InputChoice, and NNI's Cell) searched with the hook. Offline (digits),
sequential engine, about a minute on 2 CPU cores.

    python examples/custom_space.py [chain|skip|cell|dagcell] [--strategy random|evolution|tpe] [--trials 4]

(``--strategy tpe`` on ``chain`` and ``dagcell`` only: NNI's TPE samples LayerChoice only.)

Every candidate is frozen by NNI, handed to ``train_candidate`` (a FunctionalEvaluator function), and there one
call, ``prepare_for_trial``, reads the candidate's graph with the ``fx`` adapter, re-initialises it by the paper's
init and returns an optimizer at the rate the network's default rate rule gives. These spaces use batch norm, so
the default is one shared rate (no rule beat it on NNI's batch-norm spaces once every rule's constant was fitted
the same way: ``reports/spaces-maxlr``, re-scored); ``{"rate_rule": "segmented"}`` applies eq. 8 inside the
blocks batch norm delimits, and ``{"rate_rule": "graph"}`` in the hook applies eq. 8 to the whole network without its
readout instead (the stem conv counts as the first layer of every path; see ``nni_archscale.nni_glue.adapters``).

* ``chain``: two LayerChoice blocks in a row (TPE works on it: LayerChoice only);
* ``skip``: the same plus an InputChoice summing two of (stem, block 1, block 2);
* ``cell``: NNI's ``Cell`` (2 nodes, 2 ops per node, each op and its input chosen);
* ``dagcell``: the paper's DAG-cell MLP (§4.1): a Linear+ReLU stem, a 4-node cell whose every edge is a
  LayerChoice of Linear+ReLU, skip or zero, and a Linear readout; no batch norm. The hook recognises it
  (``nni_archscale.torch_layer.dag_cell``) and trains it at the DAG-cell default (``nni_archscale.rules.defaults``:
  one shared rate with SGD and the paper's init since ``reports/fairness/dagcell-e2``; ``{"rate_rule":
  "readout-limited-sgd"}`` names the rule that came closest).

NNI's experiment folders (logs, trial records) go to ``examples/output/custom_space/nni-experiments/``, not to
NNI's default ``~/nni-experiments/``: ``experiment_config`` sets ``experiment_working_directory``
(``search(..., working_dir=...)`` chooses another folder).
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import nni  # noqa: E402
import torch  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.nn.pytorch import Cell, InputChoice, LayerChoice, ModelSpace  # noqa: E402
from nni.nas.strategy import TPE, Random, RegularizedEvolution  # noqa: E402

from nni_archscale.cli.main import positive_int, positive_rate  # noqa: E402  (argument checks, as archscale's)
from torch import nn  # noqa: E402

from nni_archscale.nni_glue import prepare_for_trial  # noqa: E402
from nni_archscale.torch_layer.data import load_dataset  # noqa: E402
from nni_archscale.torch_layer.train import train_classifier  # noqa: E402

#: Where NNI writes this example's experiment folders (instead of ~/nni-experiments).
OUTPUT = Path(__file__).resolve().parent / "output" / "custom_space" / "nni-experiments"


def conv(c: int, k: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c, c, k, padding=k // 2, bias=False), nn.BatchNorm2d(c), nn.ReLU())


def ops(c: int) -> dict:
    return {"conv3": conv(c, 3), "conv1": conv(c, 1), "pool": nn.AvgPool2d(3, 1, 1), "skip": nn.Identity()}


def stem(c: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU())


class ChainSpace(ModelSpace):
    """stem -> LayerChoice b1 -> LayerChoice b2 -> global pool -> Linear readout."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.stem = stem(width)
        self.b1 = LayerChoice(ops(width), label="b1")
        self.b2 = LayerChoice(ops(width), label="b2")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.b2(self.b1(self.stem(x)))), 1))


class SkipSpace(ModelSpace):
    """ChainSpace whose readout input is the sum of two of (stem, b1, b2), chosen by an InputChoice."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.stem = stem(width)
        self.b1 = LayerChoice(ops(width), label="b1")
        self.b2 = LayerChoice(ops(width), label="b2")
        self.merge = InputChoice(3, 2, reduction="sum", label="merge")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x0 = self.stem(x)
        x1 = self.b1(x0)
        x2 = self.b2(x1)
        return self.head(torch.flatten(self.pool(self.merge([x0, x1, x2])), 1))


class CellSpace(ModelSpace):
    """stem -> NNI Cell (2 nodes, each the sum of 2 chosen ops on chosen inputs; output = both nodes
    concatenated) -> global pool -> Linear readout."""

    def __init__(self, width: int = 8, classes: int = 10):
        super().__init__()
        self.stem = stem(width)
        self.cell = Cell(ops(width), num_nodes=2, num_ops_per_node=2, num_predecessors=1, merge_op="all",
                         label="cell")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.cell(self.stem(x))), 1))


class Zero(nn.Module):
    """The paper's zero edge (``is_zero``: the graph extractor reads it as no edge at all)."""

    is_zero = True

    def forward(self, x):
        return x * 0


def edge_ops(width: int) -> dict:
    return {"linear": nn.Sequential(nn.Linear(width, width), nn.ReLU()), "skip": nn.Identity(), "zero": Zero()}


class DagCellSpace(ModelSpace):
    """The paper's DAG-cell MLP on flattened 3x8x8 digits: stem, a cell of 4 nodes (every edge j->i chosen among
    Linear+ReLU, skip and zero; each node the sum of its inputs), Linear readout."""

    def __init__(self, width: int = 8, classes: int = 10, nodes: int = 4, in_features: int = 3 * 8 * 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Linear(in_features, width), nn.ReLU())
        self.edges = nn.ModuleDict({f"e{j}_{i}": LayerChoice(edge_ops(width), label=f"e{j}_{i}")
                                    for i in range(1, nodes) for j in range(i)})
        self.nodes = nodes
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        z = [self.stem(torch.flatten(x, 1))]
        for i in range(1, self.nodes):
            # one sum over a node's inputs (torch.stack(...).sum(0)): the extractor reads one node, as eq. 1 has it
            z.append(torch.stack([self.edges[f"e{j}_{i}"](z[j]) for j in range(i)]).sum(0))
        return self.head(z[-1])


SPACES = {"chain": ChainSpace, "skip": SkipSpace, "cell": CellSpace, "dagcell": DagCellSpace}


def train_candidate(model, epochs: int = 1, base_lr: float = 0.5, limit: int | None = None, batch_size: int = 64):
    """The FunctionalEvaluator function: the hook (one call), then ordinary training; reports accuracy to NNI."""
    data = load_dataset("digits", limit=limit)
    steps = epochs * math.ceil(len(data.train) / batch_size)
    optimizer, scheduler, prepared = prepare_for_trial(
        model, {"base_lr": base_lr, "weight_decay": 5e-4, "batch_size": batch_size}, total_steps=steps)
    print(f"  {prepared.summary()}")
    result = train_classifier(model, data.train, data.val, optimizer, epochs, batch_size, scheduler,
                              num_classes=data.num_classes)
    nni.report_final_result(result.accuracy)


#: NNI's TPE samples LayerChoice only: it raises NotImplementedError on a space with an InputChoice (``skip``) or
#: NNI's ``Cell`` (``cell``), so the example offers it on these two
TPE_SPACES = ("chain", "dagcell")


def strategy(name: str, seed: int = 0):
    if name == "random":
        return Random(seed=seed, dedup=True)
    if name == "evolution":
        return RegularizedEvolution(population_size=2, sample_size=1, seed=seed, dedup=True)
    if name == "tpe":
        # NNI's TPE refuses spaces with an InputChoice: use it on "chain". It minimises unless told otherwise,
        # and the trials report accuracy.
        return TPE(optimize_mode="maximize", seed=seed)
    raise ValueError(f"unknown strategy {name!r}")


def experiment_config(trials: int, working_dir: str | Path = OUTPUT) -> NasExperimentConfig:
    """Sequential engine, ``trials`` trials, experiment folders under ``working_dir``."""
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = trials
    config.experiment_working_directory = str(working_dir)
    return config


def search(space: str = "cell", strategy_name: str = "evolution", trials: int = 4, width: int = 8,
           epochs: int = 1, base_lr: float = 0.5, limit: int | None = None, function=train_candidate,
           working_dir: str | Path = OUTPUT) -> list:
    """Run a sequential-engine NNI search of ``space``; returns the top candidates' samples (best first).
    NNI's experiment folders go under ``working_dir`` (default ``examples/output/custom_space/nni-experiments``)."""
    config = experiment_config(trials, working_dir)
    evaluator = FunctionalEvaluator(function, epochs=epochs, base_lr=base_lr, limit=limit)
    exp = NasExperiment(SPACES[space](width), evaluator, strategy(strategy_name), config)
    try:
        exp.run()
    finally:
        exp.stop()
    return exp.export_top_models(top_k=trials, formatter="dict")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("space", nargs="?", default="cell", choices=sorted(SPACES))
    ap.add_argument("--strategy", default="evolution", choices=("random", "evolution", "tpe"),
                    help=f"NNI's strategy (default evolution; tpe only on {' and '.join(TPE_SPACES)})")
    ap.add_argument("--trials", type=positive_int, default=4, help="candidates to train (default 4)")
    ap.add_argument("--epochs", type=positive_int, default=2, help="epochs per candidate (default 2)")
    ap.add_argument("--base-lr", type=positive_rate, default=0.5, help="the base rate c (default 0.5)")
    args = ap.parse_args()
    if args.strategy == "tpe" and args.space not in TPE_SPACES:
        ap.error(f"NNI's TPE samples LayerChoice only and refuses the {args.space} space (it has an InputChoice or "
                 f"a Cell); use --strategy random or evolution, or the space {' or '.join(TPE_SPACES)}")
    nni.runtime.log.silence_stdout()  # NNI's INFO lines; they stay in the experiment's log file
    torch.set_num_threads(1)          # tiny models: one thread is faster than two busy ones
    top = search(args.space, args.strategy, args.trials, epochs=args.epochs, base_lr=args.base_lr)
    print("best candidates:")
    for sample in top:
        print(" ", sample)
