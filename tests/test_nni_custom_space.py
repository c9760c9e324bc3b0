"""Custom NNI spaces (LayerChoice, InputChoice, NNI's Cell) through the fx adapter: the graph derived for known
samples (checked against graphs written by hand), and what training saw inside real sequential-engine searches
with Random, RegularizedEvolution and TPE: the optimizer's learning rates and the weights' variances at the
start of training equal the rule's (``dag`` context on the whole network without its readout)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

warnings.filterwarnings("ignore")

import nni  # noqa: E402
from conftest_nni import contained, no_leaked_nnimanager, one_thread  # noqa: E402,F401
from loading import load_file  # noqa: E402

from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind  # noqa: E402
from nni_archscale.nni_glue import current_sample, prepare_for_trial  # noqa: E402
from nni_archscale.nni_glue.adapters import graph_from_model, prepare_candidate  # noqa: E402
from nni_archscale.core.paths import path_statistics, power_sum  # noqa: E402
from nni_archscale.rules.paper import learning_rate  # noqa: E402
from nni_archscale.rules.registry import SHARED  # noqa: E402
from nni_archscale.torch_layer.apply import fan_of  # noqa: E402
from nni_archscale.torch_layer.data import load_dataset  # noqa: E402
from nni_archscale.torch_layer.hook import HookConfig  # noqa: E402
from nni_archscale.torch_layer.train import train_classifier  # noqa: E402

example = load_file("examples/custom_space.py", "custom_space_example")

P, S = EdgeKind.PARAM, EdgeKind.SKIP
BASE_LR = 0.6
SEEN: list[dict] = []


pytestmark = pytest.mark.usefixtures("no_leaked_nnimanager", "one_thread")  # none that a test started may outlive it


def _rule_variances(model, graph: ArchGraph, readout: str) -> dict[str, float]:
    """What the paper preset says each Linear/Conv weight's variance is, computed here from the graph."""
    deg = graph.in_degree
    want = {}
    for e in graph.parameterised_edges:
        want[e.module] = 2 / (deg[e.dst] * fan_of(dict(model.named_modules())[e.module]))
    want[readout] = 1 / fan_of(dict(model.named_modules())[readout]) ** 2
    return want


def _assert_variances(model, want: dict[str, float], se_bound: float = 4.0):
    """Every weight's sample variance within ``se_bound`` standard errors of the rule's (Gaussian init)."""
    mods = dict(model.named_modules())
    for name, var in want.items():
        w = mods[name].weight.detach().flatten()
        se = var * math.sqrt(2 / (w.numel() - 1))
        assert abs(float(w.var()) - var) <= se_bound * se, (name, float(w.var()), var)


def test_cell_space_graph_of_a_known_sample():
    # node 1 = conv3(x0) + x0, node 2 = conv1(node 1) + conv3(x0), cell output = cat(node 1, node 2)
    sample = {"cell/op_1_0": "conv3", "cell/input_1_0": [0], "cell/op_1_1": "skip", "cell/input_1_1": [0],
              "cell/op_2_0": "conv1", "cell/input_2_0": [1], "cell/op_2_1": "conv3", "cell/input_2_1": [0]}
    model = example.CellSpace(width=32).freeze(sample)
    graph, readout = graph_from_model(model)
    # 0 -stem-> 1; the cell's node 1 is graph node 3 (its skip from x0 enters through node 2: one edge per
    # pair of nodes), the cell's node 2 is graph node 4, the concatenation node 5; the readout is not in it
    want = ArchGraph(6, [Edge(0, 1, P, 3), Edge(1, 3, P, 3), Edge(1, 2, S), Edge(2, 3, S), Edge(3, 4, P, 1),
                         Edge(1, 4, P, 3), Edge(3, 5, S), Edge(4, 5, S)])
    assert readout == "head" and graph.structure_key == want.structure_key  # same numbering and edges
    assert {e.module for e in graph.parameterised_edges} == {"stem.0", "cell.ops.0.0.0", "cell.ops.1.0.0",
                                                             "cell.ops.1.1.0"}
    # paths (L = stem + cell convs): 0-1-3-5: 2, 0-1-2-3-5: 1, 0-1-3-4-5: 3, 0-1-2-3-4-5: 2, 0-1-4-5: 2
    assert power_sum(path_statistics(graph).output, 3) == 8 + 1 + 27 + 8 + 8

    prepared = prepare_candidate(model, HookConfig(base_lr=BASE_LR, weight_decay=0.0, rate_rule="graph"), sample=sample,
                                 generator=torch.Generator().manual_seed(0))
    assert prepared.adapter == "fx"
    assert prepared.learning_rate == pytest.approx(BASE_LR / math.sqrt(52))  # q = q_base = 3 (the stem)
    want_var = _rule_variances(model, graph, "head")
    # convs into the cell's nodes (in-degree 2) get 1/fan_in, the stem 2/fan_in, the readout 1/fan_in^2
    assert want_var["cell.ops.0.0.0"] == pytest.approx(1 / (32 * 9))
    assert want_var["stem.0"] == pytest.approx(2 / 27) and want_var["head"] == pytest.approx(1 / 64**2)
    for name, var in want_var.items():
        assert prepared.init.variance_of(name) == pytest.approx(var)
    _assert_variances(model, want_var)


def test_layer_and_input_choice_graph_of_a_known_sample():
    # y = x0 + conv1(skip(x0)): two paths, L = 1 (stem) and L = 2 (stem, conv1)
    sample = {"b1": "skip", "b2": "conv1", "merge": [0, 2]}
    model = example.SkipSpace(width=64).freeze(sample)
    graph, readout = graph_from_model(model)
    assert graph.structure_key == ArchGraph(4, [Edge(0, 1, P, 3), Edge(1, 2, S), Edge(2, 3, P, 1),
                                                Edge(1, 3, S)]).structure_key
    assert graph.edge(2, 3).module == "b2.0" and readout == "head"
    prepared = prepare_candidate(model, HookConfig(base_lr=BASE_LR, weight_decay=0.0, rate_rule="graph"), sample=sample,
                                 generator=torch.Generator().manual_seed(1))
    assert prepared.learning_rate == pytest.approx(BASE_LR / 3)  # sqrt(1 / (1 + 8))
    opt = prepared.make_optimizer()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([BASE_LR / 3])
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.parameters()}
    want_var = _rule_variances(model, graph, "head")
    assert want_var["b2.0"] == pytest.approx(1 / 64)  # conv1 into the sum (in-degree 2): 2 / (2 * 64)
    _assert_variances(model, want_var)

    # a chain: LayerChoice only; pooling after a conv on the same way is absorbed (it adds no layer): one path
    # with L = 2 (stem, conv3)
    chain = example.ChainSpace(width=8).freeze({"b1": "conv3", "b2": "pool"})
    g, _ = graph_from_model(chain)
    assert g.structure_key == ArchGraph(3, [Edge(0, 1, P, 3), Edge(1, 2, P, 3)]).structure_key
    assert learning_rate(g, BASE_LR, "paper", "dag").value == pytest.approx(BASE_LR / math.sqrt(8))
    # no searched layer (pool, skip): the stem alone, i.e. the base network the rate c is calibrated on
    base, _ = graph_from_model(example.ChainSpace(width=8).freeze({"b1": "pool", "b2": "skip"}))
    assert base == ArchGraph(2, [Edge(0, 1, P, 3)])
    assert learning_rate(base, BASE_LR, "paper", "dag").value == pytest.approx(BASE_LR)


def recording_trial(model, epochs, base_lr, limit):
    """The example's trial function, recording what training starts with."""
    data = load_dataset("digits", limit=limit)
    optimizer, scheduler, prepared = prepare_for_trial(model, {"base_lr": base_lr, "weight_decay": 0.0, "rate_rule": "graph"},
                                                       total_steps=epochs * math.ceil(len(data.train) / 64))
    SEEN.append({"sample": current_sample(), "graph": prepared.graph, "model": model,
                 "lrs": [g["lr"] for g in optimizer.param_groups],
                 "variances": {n: float(m.weight.detach().var()) for n, m in model.named_modules()
                               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))},
                 "weights": {n: m.weight.detach().clone() for n, m in model.named_modules()
                             if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}})
    result = train_classifier(model, data.train, data.val, optimizer, epochs, 64, scheduler, num_classes=10)
    nni.report_final_result(result.accuracy)


@pytest.mark.nni
@pytest.mark.parametrize("space,strategy", [("cell", "evolution"), ("skip", "random"), ("chain", "tpe")])
def test_search_trains_every_candidate_with_the_rule(space, strategy, tmp_path):
    SEEN.clear()
    top = example.search(space, strategy, trials=3, width=16, epochs=1, base_lr=BASE_LR, limit=128,
                         function=recording_trial, working_dir=tmp_path)
    assert len(SEEN) == 3 and top
    assert any(tmp_path.iterdir())  # NNI's experiment folder is where the example says, not ~/nni-experiments
    space_obj = example.SPACES[space](16)
    for rec in SEEN:
        # the adapter read the candidate NNI sampled: freezing the space with the sample gives the same graph
        graph, readout = graph_from_model(space_obj.freeze(rec["sample"]))
        assert graph.identical(rec["graph"])
        rate = learning_rate(graph, BASE_LR, "paper", "dag").value
        assert rec["lrs"] == pytest.approx([rate])
        model = rec["model"]
        want = _rule_variances(model, graph, readout)
        mods = dict(model.named_modules())
        for name, var in want.items():
            w = rec["weights"][name].flatten()
            se = var * math.sqrt(2 / (w.numel() - 1))
            assert abs(float(w.var()) - var) <= 4 * se, (rec["sample"], name)
        # layers outside the graph (none here but the readout) get nothing unexpected
        assert set(want) == {n for n, m in mods.items() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}


def dag_cell_trial(model, epochs, base_lr, limit):
    """The example's trial function with the hook's defaults, recording the rule and rate training starts with."""
    data = load_dataset("digits", limit=limit)
    optimizer, scheduler, prepared = prepare_for_trial(model, {"base_lr": base_lr, "batch_size": 64},
                                                       total_steps=epochs * math.ceil(len(data.train) / 64))
    SEEN.append({"sample": current_sample(), "model": model, "rule": prepared.rate_rule,
                 "lrs": [g["lr"] for g in optimizer.param_groups]})
    result = train_classifier(model, data.train, data.val, optimizer, epochs, 64, scheduler, num_classes=10)
    nni.report_final_result(result.accuracy)


@pytest.mark.nni
def test_a_dag_cell_search_trains_at_the_evidence_backed_rule(tmp_path):
    """Issue 16.1: the DAG-cell default (defaults.DEFAULT_RULES, paper init + SGD: one shared rate since the
    fairness benchmark, issue 23) reaches the hook in a real NNI search, and the DAG cell is recognised."""
    from nni_archscale.torch_layer.dag_cell import recognise

    SEEN.clear()
    example.search("dagcell", "random", trials=3, width=16, epochs=1, base_lr=0.2, limit=128,
                   function=dag_cell_trial, working_dir=tmp_path)
    assert len(SEEN) == 3
    for rec in SEEN:
        assert rec["rule"] == SHARED.name, rec["sample"]
        assert recognise(example.DagCellSpace(16).freeze(rec["sample"])) is not None
        assert rec["lrs"] == pytest.approx([0.2]), rec["sample"]


class _StartRecorder:
    """A Lightning callback (built lazily: pytorch_lightning is imported by the glue) recording what training
    starts with."""

    @staticmethod
    def make():
        import pytorch_lightning as pl

        class Recorder(pl.Callback):
            def on_train_start(self, trainer, pl_module):
                SEEN.append({"sample": current_sample(), "model": pl_module.model,
                             "lrs": [g["lr"] for opt in trainer.optimizers for g in opt.param_groups],
                             "weights": {n: m.weight.detach().clone() for n, m in pl_module.model.named_modules()
                                         if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}})

        return Recorder()


@pytest.mark.nni
def test_wrapped_classification_on_a_cell_space():
    from nni.nas.evaluator.pytorch import Classification, DataLoader
    from nni.nas.experiment import NasExperiment, NasExperimentConfig
    from nni.nas.strategy import Random

    from nni_archscale.nni_glue import ArchScaleEvaluator

    SEEN.clear()
    data = load_dataset("digits", limit=128)
    tr = torch.utils.data.TensorDataset(*data.train.batch(torch.arange(len(data.train))))
    va = torch.utils.data.TensorDataset(*data.val.batch(torch.arange(64)))
    inner = Classification(train_dataloaders=DataLoader(tr, batch_size=64), val_dataloaders=DataLoader(va, batch_size=64),
                           num_classes=10, optimizer=torch.optim.SGD, max_epochs=1, enable_progress_bar=False,
                           enable_model_summary=False, logger=False, enable_checkpointing=False,
                           callbacks=[_StartRecorder.make()])
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = 2
    with contained(config):
        exp = NasExperiment(example.CellSpace(16), ArchScaleEvaluator(inner, {"base_lr": BASE_LR,
                                                                              "rate_rule": "graph"}),
                            Random(seed=2, dedup=True), config)
        try:
            exp.run()
        finally:
            exp.stop()
    assert len(SEEN) == 2
    for rec in SEEN:
        graph, readout = graph_from_model(example.CellSpace(16).freeze(rec["sample"]))
        assert rec["lrs"] == pytest.approx([learning_rate(graph, BASE_LR, "paper", "dag").value])
        for name, var in _rule_variances(rec["model"], graph, readout).items():
            w = rec["weights"][name].flatten()
            assert abs(float(w.var()) - var) <= 4 * var * math.sqrt(2 / (w.numel() - 1)), (rec["sample"], name)


def test_examples_keep_nni_experiment_folders_under_their_output():
    """Issue 18: the examples wrote NNI experiment folders to ~/nni-experiments; now under examples/output."""
    from loading import ROOT

    evaluator_example = load_file("examples/functional_evaluator.py", "functional_evaluator_example")
    for module, name in ((example, "custom_space"), (evaluator_example, "functional_evaluator")):
        assert module.OUTPUT == ROOT / "examples" / "output" / name / "nni-experiments"
        assert module.experiment_config(3).experiment_working_directory == str(module.OUTPUT)
        assert f"examples/output/{name}/nni-experiments/" in module.__doc__
