"""Torch layer: what training actually sees (weight variances, optimizer rates), fx extraction, calibration."""

from __future__ import annotations

import json
import math
import warnings
from fractions import Fraction

import pytest

import torch
from torch import nn

from nni_archscale.core.formats import from_nb201
from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind
from nni_archscale.core.networks import nb201_network
from nni_archscale.core.paths import path_statistics
from nni_archscale.rules.planner import InitPlan, LayerInit, nb201_plan
from nni_archscale.rules.paper import edge_init, learning_rate, readout_init
from nni_archscale.errors import CalibrationError, InitPlanError
from nni_archscale.torch_layer.apply import apply_init, fan_of
from nni_archscale.torch_layer.rate_grid import CalibrationCache, Calibration, choose_rate, log_grid
from nni_archscale.torch_layer.fx_extract import extract_graph
from nni_archscale.torch_layer.hook import HookConfig, prepare_graph
from nni_archscale.torch_layer.param_groups import build_param_groups, make_optimizer, make_scheduler
from nni_archscale.torch_layer.train import train_classifier
from nni_archscale.torch_layer.data import ArrayData, load_dataset

from conftest_nni import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


class Net(nn.Module):
    """A DAG of wide Linear layers: 0 -a-> 1, 0 -b-> 2, 1 -c-> 2, 2 -> readout."""

    def __init__(self, n=512, classes=10):
        super().__init__()
        self.a = nn.Linear(n, n)
        self.b = nn.Linear(n, n)
        self.c = nn.Linear(n, n)
        self.head = nn.Linear(n, classes)

    def forward(self, x):
        h1 = self.a(x).relu()
        h2 = self.b(x).relu() + self.c(h1).relu()
        return self.head(h2)


def test_fx_extracts_the_dag_and_the_init_reaches_the_weights():
    model = Net()
    g = extract_graph(model)
    # 0 -a-> 1, 0 -b-> 2, 1 -c-> 2 (merge), 2 -head-> 3
    ref = ArchGraph(4, [Edge(0, 1, EdgeKind.PARAM), Edge(0, 2, EdgeKind.PARAM), Edge(1, 2, EdgeKind.PARAM),
                        Edge(2, 3, EdgeKind.PARAM)])
    assert g == ref
    assert {e.module for e in g.parameterised_edges} == {"a", "b", "c", "head"}
    prepared = prepare_graph(model, g, HookConfig(base_lr=0.5, init="paper", weight_decay=0.0), "dag", "head",
                             torch.Generator().manual_seed(0))
    # measured variances equal the rule's: b and c enter node 2 (in-degree 2) -> 2/(2*512); a -> 2/512
    n = 512
    for name, want in (("a", 2 / n), ("b", 1 / n), ("c", 1 / n), ("head", 1 / n**2)):
        w = getattr(model, name).weight
        assert float(w.detach().var()) == pytest.approx(want, rel=0.05), name
        assert float(getattr(model, name).bias.detach().abs().max()) == 0.0
    # the optimizer's groups carry the rule's rate: paths a-c-head (3 layers) and b-head (2): sum L^3 = 35
    opt = prepared.make_optimizer()
    rule = learning_rate(g, 0.5, "paper", "dag")
    assert rule.depth_power_sum == 27 + 8
    assert [grp["lr"] for grp in opt.param_groups] == pytest.approx([0.5 / math.sqrt(35)])
    assert sum(len(grp["params"]) for grp in opt.param_groups) == 8


def test_nb201_plan_variances_on_nni_network():
    warnings.simplefilter("ignore")
    from nni_archscale.nni_glue.calibration import build_nb201
    from nni_archscale.nni_glue.adapters import graph_from_nb201_sample

    sample = {"cell/0_1": "conv_3x3", "cell/0_2": "conv_1x1", "cell/1_2": "conv_3x3", "cell/0_3": "skip_connect",
              "cell/1_3": "conv_3x3", "cell/2_3": "conv_3x3"}
    model = build_nb201(16, 1, 10, sample)
    cell = graph_from_nb201_sample(sample)
    for preset in ("paper", "release"):
        report = apply_init(model, nb201_plan(cell, preset, 1), torch.Generator().manual_seed(1))
        specs = {s.edge.name: s for s in edge_init(cell, preset, "nb201-cell")}
        for a in report.layers:
            w = dict(model.named_modules())[a.module].weight
            assert float(w.detach().var()) == pytest.approx(a.variance, rel=0.25), a.module
        # edge 1->3 (conv 3x3 into node 3, in-degree 3; source 1 has in-degree 1)
        conv = model.cells[0].layers[2][1].op[1]
        fan = fan_of(conv)
        assert report.variance_of("cells.0.layers.2.1.op.1") == pytest.approx(float(specs["1->3"].gain) / fan)
        expected = Fraction(2, 3) if preset == "paper" else Fraction(2, 1)
        assert specs["1->3"].gain == expected
        ro = readout_init(preset, "nb201-cell")
        assert report.variance_of("classifier") == pytest.approx(float(ro.scale) / 64**2)
        # reduction blocks
        red = {"paper": (2, 1, 1), "release": (1, 2, 1)}[preset]
        for k in (1, 3):
            for m, g in zip(("conv_a.op.1", "conv_b.op.1", "downsample.1"), red):
                mod = dict(model.named_modules())[f"cells.{k}.{m}"]
                assert report.variance_of(f"cells.{k}.{m}") == pytest.approx(g / fan_of(mod))
    bn = model.cells[0].layers[0][0].op[2]
    assert float(bn.running_mean.abs().max()) == 0 and float(bn.weight.min()) == 1.0


def test_plan_for_another_model_is_refused():
    plan = InitPlan((LayerInit("missing", Fraction(2)),), None, "paper")
    with pytest.raises(InitPlanError, match="match no Linear/Conv"):
        apply_init(Net(8), plan)


def test_param_groups_and_scheduler_use_scaled_rates():
    model = Net(8)
    groups = build_param_groups(model, 0.1, {"c": 0.02}, weight_decay=1e-4)
    opt = make_optimizer("sgd", groups)
    rates = {n: g["lr"] for g in opt.param_groups for n in g["param_names"]}
    assert rates["c.weight"] == 0.02 and rates["c.bias"] == 0.02 and rates["a.weight"] == 0.1
    sched = make_scheduler(opt, "cosine", 10)
    assert sorted(sched.base_lrs) == [0.02, 0.1]
    for _ in range(5):
        opt.step()
        sched.step()
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([0.01, 0.05])
    adam = make_optimizer("adam", build_param_groups(model, 3e-3))
    assert [g["lr"] for g in adam.param_groups] == [3e-3]
    # as few groups as possible: one per distinct rate, however many modules share it
    shared = build_param_groups(model, 0.1, {"a": 0.02, "b": 0.02, "c": 0.1}, weight_decay=1e-4)
    assert sorted((g["lr"], len(g["params"])) for g in shared) == [(0.02, 4), (0.1, 4)]


def test_fx_agrees_with_nb201_sample_adapter():
    warnings.simplefilter("ignore")
    import random

    from nni_archscale.nni_glue.adapters import graph_from_nb201_sample
    from nni_archscale.nni_glue.calibration import build_nb201

    ops = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
    keys = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]
    rng = random.Random(3)
    # freezing an NNI network deep-copies it (~0.4 s each on a busy 2-core machine): 5 cells that put every op on
    # every edge (edge j of cell i: op (i + j) mod 5), then 3 drawn at random
    latin = [{k: ops[(i + j) % len(ops)] for j, k in enumerate(keys)} for i in range(len(ops))]
    for sample in latin + [{k: rng.choice(ops) for k in keys} for _ in range(3)]:
        model = build_nb201(4, 2, 10, sample)
        cell = graph_from_nb201_sample(sample)
        assert extract_graph(model.cells[0]) == cell
        whole = extract_graph(model)
        assert path_statistics(whole).output == nb201_network(cell, 2).output_moments


def test_training_loop_reports_divergence_and_oom():
    data = load_dataset("digits")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    opt = torch.optim.SGD(model.parameters(), lr=1e20)
    r = train_classifier(model, data.train, data.val, opt, epochs=3, num_classes=10)
    assert r.status == "diverged" and r.accuracy == pytest.approx(0.1) and "loss became" in r.message

    class Boom(nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")

    r = train_classifier(Boom(), data.train, data.val, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1),
                         num_classes=10)
    assert r.status == "oom" and "out of memory" in r.message
    # a plain error is not an outcome: it propagates
    class Bad(nn.Module):
        def forward(self, x):
            raise ValueError("bug")

    with pytest.raises(ValueError):
        train_classifier(Bad(), data.train, data.val, torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1))


def test_calibration_choice_and_cache(tmp_path):
    assert log_grid(0.001, 10, 5) == [0.001, 0.01, 0.1, 1.0, 10.0]
    assert choose_rate({0.1: 1.0, 0.3: 0.5, 1.0: 0.505, 3.0: math.inf}) == 1.0
    with pytest.raises(CalibrationError, match="diverged"):
        choose_rate({0.1: math.inf})
    path = tmp_path / "cal.json"
    cache = CalibrationCache(path)
    key = CalibrationCache.key("s", "digits", "sgd", 128)
    cache.put(Calibration(key, 0.5, {"grid": [1, 2]}, {1: 0.3, 2: math.inf}, 1.0))
    data = json.loads(path.read_text())
    assert data["format"].endswith("@1") and data["entries"][key]["base_lr"] == 0.5
    again = CalibrationCache(path)
    assert again.get(key, {"grid": [1, 2]}).source == "cache"
    assert again.get(key, {"grid": [1, 3]}) is None and "stale" in again.problems[-1]
    path.write_text("{not json")
    broken = CalibrationCache(path)
    assert "corrupt" in broken.problems[0] and broken.get(key, {"grid": [1, 2]}) is None
    path.write_text(json.dumps({"format": "other@9", "entries": {}}))
    assert "format" in CalibrationCache(path).problems[0]


def test_missing_dataset_dir_is_a_clear_error(tmp_path):
    from nni_archscale.errors import DataError
    from nni_archscale.torch_layer.data import load_cifar

    with pytest.raises(DataError, match="--data-dir"):
        load_cifar("cifar10", None)
    with pytest.raises(DataError, match="no cifar10 files"):
        load_cifar("cifar10", tmp_path)
    d = tmp_path / "cifar-10-batches-py"
    d.mkdir()
    (d / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read dataset file"):
        load_cifar("cifar10", tmp_path)


def test_calibration_cache_files_inits_apart_and_reads_an_earlier_versions_entries(tmp_path):
    """Inits draw the base network differently: separate entries. An entry an earlier version filed under
    ``|preset=`` with ``preset`` in its recipe is the same calibration, read under today's key (no result lost)."""
    from nni_archscale.torch_layer.rate_grid import Calibration, CalibrationCache

    paper = CalibrationCache.key("s", "digits", "sgd", 128, "paper")
    release = CalibrationCache.key("s", "digits", "sgd", 128, "release")
    assert paper != release and paper.endswith("|init=paper")
    cache = CalibrationCache(tmp_path / "cal.json")
    old_key = paper.replace("|init=", "|preset=")
    cache.put(Calibration(old_key, 0.25, {"preset": "paper", "epochs": 1}, {0.25: 1.0}, 1.0))
    found = CalibrationCache(tmp_path / "cal.json").get(paper, {"init": "paper", "epochs": 1})
    assert found is not None and found.base_lr == 0.25 and found.key == paper
    assert CalibrationCache(tmp_path / "cal.json").get(paper, {"init": "paper", "epochs": 2}) is None  # stale
