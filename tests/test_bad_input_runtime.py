"""Bad input at run time: NNI sample dicts, models torch.fx cannot trace, CLI arguments of the wrong type or
range (every subcommand), corrupt or stale calibration caches, unreadable or missing data directories.

Each case must raise a typed error (a subclass of ArchScaleError) whose message names the problem and the fix;
through the CLI it is one line on stderr, exit status 2, and a traceback only with --debug.
(tests/test_bad_input.py covers architecture strings, paper codes and JSON graphs.)
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re

import numpy as np
import pytest
import torch
from named_pipes import make_fifo, unblocked
from torch import nn

from nni_archscale.cli.main import main
from nni_archscale.errors import (ArchScaleError, CacheError, DataError, ExtractionError, GraphStructureError, RuleError,
                                  SearchError)
from nni_archscale.nni_glue.adapters import graph_from_nb201_sample, is_nb201_sample, prepare_candidate
from nni_archscale.torch_layer.rate_grid import CACHE_FORMAT, Calibration, CalibrationCache
from nni_archscale.torch_layer.data import load_dataset
from nni_archscale.torch_layer.fx_extract import extract_graph
from nni_archscale.torch_layer.hook import HookConfig

FULL = {"cell/0_1": "conv_3x3", "cell/0_2": "skip_connect", "cell/1_2": "none", "cell/0_3": "conv_1x1",
        "cell/1_3": "avg_pool_3x3", "cell/2_3": "none"}


def _without(key):
    return {k: v for k, v in FULL.items() if k != key}




@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Commands that fall back to the user's calibration cache get a fresh one, never the machine's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))

# ---------------------------------------------------------------------------------------------- NNI samples
SAMPLES = [
    ("none", None, ExtractionError, r"must be a dict .* got NoneType; pass the running trial's sample"),
    ("list", [("cell/0_1", "conv_3x3")], ExtractionError, r"must be a dict .* got list"),
    ("string", "|nor_conv_3x3~0|", ExtractionError, r"must be a dict .* got str"),
    ("empty", {}, ExtractionError, r"no 'cell/<j>_<i>' keys .* use the fx adapter"),
    ("wrong keys", {"op1": "conv_3x3", "op2": "none"}, ExtractionError, r"no 'cell/<j>_<i>' keys \(\['op1'"),
    ("wrong label", {k.replace("cell", "node"): v for k, v in FULL.items()}, ExtractionError,
     r"no 'cell/<j>_<i>' keys .*node/0_1"),
    ("unknown op", {**FULL, "cell/0_1": "conv_5x5"}, ExtractionError,
     r"'cell/0_1' = 'conv_5x5' is not a NAS-Bench-201 operation; expected one of none, skip_connect"),
    ("op as int", {**FULL, "cell/1_2": 2}, ExtractionError, r"'cell/1_2' = 2 is not a NAS-Bench-201 operation"),
    ("op as list", {**FULL, "cell/0_3": ["conv_3x3"]}, ExtractionError,
     r"'cell/0_3' = \['conv_3x3'\] is not a NAS-Bench-201 operation"),
    ("op as None", {**FULL, "cell/2_3": None}, ExtractionError, r"'cell/2_3' = None is not a NAS-Bench-201"),
    ("missing edge", _without("cell/1_2"), ExtractionError,
     r"lacks 'cell/1_2': .* needs a choice for every edge .*use 'none' for an absent edge"),
    ("missing edges", _without("cell/0_1") | {"cell/0_1x": "none"}, ExtractionError, r"lacks 'cell/0_1'"),
    ("extra node", {**FULL, "cell/0_4": "conv_3x3"}, ExtractionError, r"lacks 'cell/1_4', 'cell/2_4', 'cell/3_4'"),
    ("self loop", {**FULL, "cell/2_2": "skip_connect"}, GraphStructureError, r"edge 2->2 is a self-loop"),
    ("backward edge", {**FULL, "cell/3_1": "skip_connect"}, GraphStructureError,
     r"edge 3->1 closes a cycle.*remove or reverse that edge"),
]


@pytest.mark.parametrize("name, sample, error, message", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_bad_nni_sample_is_named(name, sample, error, message):
    with pytest.raises(error, match=message) as info:
        graph_from_nb201_sample(sample)
    assert isinstance(info.value, ArchScaleError)
    assert is_nb201_sample(sample) is False or name in ("missing edge", "extra node", "self loop", "backward edge",
                                                       "missing edges")


def test_complete_sample_still_reads():
    g = graph_from_nb201_sample(FULL)
    assert g.num_nodes == 4 and len(g.edges) == 6
    assert sorted((e.src, e.dst) for e in g.edges if e.kind.value == "zero") == [(1, 2), (2, 3)]
    assert is_nb201_sample(FULL) and is_nb201_sample({**FULL, "cell/0_1": "nor_conv_3x3"})


@pytest.fixture(scope="module")
def nb201_model():
    from nni_archscale.nni_glue.calibration import build_nb201

    return build_nb201(4, 1, 10, FULL)


def test_sample_errors_come_through_prepare_candidate(nb201_model):
    cfg = HookConfig(base_lr=0.1)
    with pytest.raises(ExtractionError, match="lacks 'cell/1_2'"):
        prepare_candidate(nb201_model, cfg, sample=_without("cell/1_2"), adapter="nb201-sample")
    with pytest.raises(ExtractionError, match=r"must be a dict .* got list"):
        prepare_candidate(nb201_model, cfg, sample=["cell/0_1"], adapter="nb201-sample")
    with pytest.raises(ExtractionError, match="unknown adapter 'nb201'; use auto, nb201-sample or fx"):
        prepare_candidate(nb201_model, cfg, sample=FULL, adapter="nb201")
    with pytest.raises(ExtractionError, match="has no 'cells'; it is not NNI's NasBench201 network"):
        prepare_candidate(nn.Sequential(nn.Linear(4, 4)), cfg, sample=FULL, adapter="nb201-sample")


# ------------------------------------------------------------------------------------ untraceable models
class _DataDependentIf(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if x.sum() > 0:
            return self.fc(x)
        return x


class _LoopOverBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        for _ in range(int(x.shape[0])):
            x = self.fc(x)
        return x


class _ItemCall(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) * int(x.max().item())


class _NumpyRoundTrip(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(torch.from_numpy(x.numpy()))


class _RaisesInForward(nn.Module):
    def forward(self, x):
        raise RuntimeError("forward refuses")


class _ConstantOutput(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("c", torch.ones(1, 4))

    def forward(self, x):
        return self.fc(self.c)


class _NoneOutput(nn.Module):
    def forward(self, x):
        return None


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x, y):
        return self.fc(x) + y


UNTRACEABLE = [
    (_DataDependentIf(), r"cannot trace _DataDependentIf \(TraceError: .*control flow\); .*make data-dependent "
                         r"control flow a leaf module"),
    (_LoopOverBatch(), r"cannot trace _LoopOverBatch \(TypeError.*Proxy.*\); .*leaf module"),
    (_ItemCall(), r"cannot trace _ItemCall .*; .*build the ArchGraph yourself"),
    (_NumpyRoundTrip(), r"cannot trace _NumpyRoundTrip .*; freeze NNI spaces before tracing"),
    (_RaisesInForward(), r"cannot trace _RaisesInForward \(RuntimeError: forward refuses\)"),
    (torch.jit.script(nn.Linear(2, 2)), r"cannot trace RecursiveScriptModule"),
    ("not a model", r"cannot trace str"),
    (_ConstantOutput(), r"output of _ConstantOutput does not depend on its input .*return a tensor computed"),
    (_NoneOutput(), r"output of _NoneOutput does not depend on its input"),
    (_TwoInputs(), r"takes 2\+ inputs; .*pass concrete_args for the others"),
    (nn.Sequential(), r"Sequential has no layer between its input and output .*nothing to scale"),
    (nn.Identity(), r"Identity has no layer between its input and output"),
]


@pytest.mark.parametrize("model, message", UNTRACEABLE, ids=[type(m).__name__.strip("_") for m, _ in UNTRACEABLE])
def test_untraceable_model_is_named(model, message):
    with pytest.raises(ExtractionError, match=message):
        extract_graph(model)


def test_untraceable_model_through_the_fx_adapter():
    with pytest.raises(ExtractionError, match="cannot trace _DataDependentIf"):
        prepare_candidate(_DataDependentIf(), HookConfig(base_lr=0.1), adapter="fx")


def test_leaf_fixes_data_dependent_control_flow():
    """The fix the message proposes works: the offending module as a leaf traces."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = _DataDependentIf()
            self.head = nn.Linear(4, 2)

        def forward(self, x):
            return self.head(self.block(x))

    with pytest.raises(ExtractionError):
        extract_graph(Net())
    g = extract_graph(Net(), leaf=lambda m, name: isinstance(m, _DataDependentIf))
    assert g.num_nodes >= 2 and any(e.module == "head" for e in g.edges)


# ------------------------------------------------------------------------------------ CLI arguments
GRAPH201 = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"
CLI = [
    # search
    (["search", "--trials", "0"], "--trials: expected a positive integer, got '0'"),
    (["search", "--trials", "many"], "--trials: expected a positive integer, got 'many'"),
    (["search", "--epochs", "-2"], "--epochs: expected a positive integer"),
    (["search", "--width", "2.5"], "--width: expected a positive integer"),
    (["search", "--batch-size", "0"], "--batch-size: expected a positive integer"),
    (["search", "--limit", "-5"], "--limit: expected a positive integer"),
    (["search", "--base-lr", "nan"], "--base-lr: expected a positive finite number"),
    (["search", "--base-lr", "-0.001"], "--base-lr: expected a positive finite number"),
    (["search", "--base-lr", "-inf"], "--base-lr: expected a positive finite number, got '-inf'"),  # issue 18
    (["search", "--base-lr", "-1e-3"], "--base-lr: expected a positive finite number, got '-1e-3'"),
    (["search", "--weight-decay", "-nan"], "--weight-decay: expected a finite number >= 0, got '-nan'"),
    (["search", "--weight-decay", "-1"], "--weight-decay: expected a finite number >= 0"),
    (["search", "--weight-decay", "inf"], "--weight-decay: expected a finite number >= 0"),
    (["search", "--seed", "-1"], "--seed: expected an integer >= 0"),
    (["search", "--seed", "one"], "--seed: expected an integer >= 0, got 'one'"),
    (["search", "--dataset", "svhn"], "--dataset: invalid choice: 'svhn'"),
    (["search", "--engine", "parallel"], "--engine: invalid choice: 'parallel'"),
    (["search", "--strategy", "bohb"], "--strategy: invalid choice: 'bohb'"),
    (["search", "--device", "tpu"], "--device: expected auto, cpu, cuda or cuda:N, got 'tpu'"),
    (["search", "--device", "cuda:x"], "--device: expected auto, cpu, cuda or cuda:N"),
    (["search", "--concurrency", "0"], "--concurrency: expected a positive integer"),
    (["search", "--training-service", "kubeflow"], "--training-service: invalid choice: 'kubeflow'"),
    (["search", "--remote-port", "70000"], "--remote-port: expected a port in 1..65535"),
    (["search", "--training-service", "remote"], "needs workers: pass --remote-host HOST"),
    (["search", "--remote-host", "node1"], "--remote-host only applies with --training-service remote"),
    (["search", "--engine", "sequential", "--concurrency", "2"], "need --engine ts"),
    (["search", "--training-service", "remote", "--remote-host", "h", "--remote-user", "u", "--remote-key",
      "/nonexistent/key"], "SSH key '/nonexistent/key' for 'h' does not exist or is not a file; fix --remote-key"),
    (["search", "--training-service", "remote", "--remote-host", "h", "--remote-user", "u", "--remote-key",
      "{key}", "--remote-python", "venv/bin/python"], "must be an absolute path to the worker's interpreter"),
    (["search", "--training-service", "remote", "--machines", "{missing}"], "machine list .* does not exist"),
    (["search", "--unknown-flag"], "unrecognized arguments: --unknown-flag"),
    # calibrate
    (["calibrate", "--points", "1"], "needs 0 < low < high and >= 2 points.*fix --low, --high or --points"),
    (["calibrate", "--low", "1", "--high", "0.1"], "needs 0 < low < high.*fix --low, --high or --points"),
    (["calibrate", "--low", "0"], "--low: expected a positive finite number"),
    (["calibrate", "--high", "-inf"], "--high: expected a positive finite number, got '-inf'"),
    (["calibrate", "--optimizer", "lamb"], "--optimizer: invalid choice: 'lamb'"),
    (["calibrate", "--steps", "0"], "--steps: expected a positive integer"),
    (["calibrate", "--device", "gpu"], "--device: expected auto, cpu, cuda or cuda:N, got 'gpu'"),
    (["calibrate", "--weight-decay", "-0.1"], "--weight-decay: expected a finite number >= 0"),
    (["calibrate", "--cache", "{dir}"], "calibration cache .* is a directory; pass a file path"),
    # experiment
    (["experiment"], "the following arguments are required: EXPERIMENT"),
    (["experiment", "lr-prediction", "--width", "0"], "--width: expected a positive integer"),
    (["experiment", "lr-prediction", "--family", "resnet"], "--family: invalid choice: 'resnet'"),
    (["experiment", "lr-prediction", "--sgd-grid", "1"], "--sgd-grid: expected 2 arguments"),
    (["experiment", "nb201", "--cells", "0"], "--cells: expected a positive integer"),
    (["experiment", "nb201", "--top-k", "abc"], "--top-k: expected a comma list of percentages"),
    # inspect
    (["inspect"], "inspect needs ARCH .* or --space NAME --seed N"),
    (["inspect", "2_02_002", "--space", "darts"], "give either ARCH or --space NAME --seed N, not both"),
    (["inspect", "--space", "nope"], "--space: invalid choice"),
    (["inspect", "2_02_002", "--base-lr", "0"], "--base-lr: expected a positive finite number"),
    (["inspect", "2_02_002", "--kernel-size", "x"], "--kernel-size: expected a positive integer"),
    (["inspect", "2_02_002", "--init", "zzz"], "--init: invalid choice: 'zzz'"),
    (["inspect", "2_02_002", "--base-lr", "-inf"], "--base-lr: expected a positive finite number, got '-inf'"),
    # verify
    (["verify", "--random", "-3"], "--random: expected a positive integer, got '-3'"),
    (["verify", "2_02", "--base-lr", "-1e-3"], "--base-lr: expected a positive finite number, got '-1e-3'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    # issue 25: bounds (a hang, overflows and an unsupported device before)
    (["verify", "--random", "1", "--max-nodes", "100000"],
     r"--max-nodes: expected 2\.\.64 nodes \(nni_archscale.cli.verify_cmd.MAX_RANDOM_NODES: a dense random graph of 64 "
     r"nodes verifies in about 10 s\), got '100000'; verify a larger graph as ARCH"),
    (["verify", "--random", "1", "--max-nodes", "1"], r"--max-nodes: expected 2\.\.64 nodes"),
    (["search", "--device", "mps"], "--device: expected auto, cpu, cuda or cuda:N, got 'mps'; the trainers support the "
                                    "CPU and CUDA devices only"),
    (["calibrate", "--device", "mps"], "--device: expected auto, cpu, cuda or cuda:N, got 'mps'"),
    (["search", "--seed", "1180591620717411303424"], r"--seed: expected a seed of at most 2\*\*32 - 1 = 4,294,967,295 "
                                                     r"\(numpy's seed range\), got '1180591620717411303424'"),
    (["search", "--seed", "4294967296"], r"--seed: expected a seed of at most 2\*\*32 - 1"),
    (["calibrate", "--seed", "4294967296"], r"--seed: expected a seed of at most 2\*\*32 - 1"),
    (["inspect", "--space", "nb201", "--seed", "-1"], "--seed: expected an integer >= 0, got '-1'"),
    (["inspect", "--space", "nb201", "--seed", str(2**70)], r"--seed: expected a seed of at most 2\*\*32 - 1"),
    (["search", "--base-lr", "1e300"], r"--base-lr: expected a learning rate of at most 1,000,000 "
                                       r"\(nni_archscale.rules.paper.MAX_LEARNING_RATE: a larger rate only diverges, and "
                                       r"overflows float32 in the optimizer\), got '1e300'"),
    (["search", "--compare", "--shared-lr", "1e300"], "--shared-lr: expected a learning rate of at most 1,000,000"),
    (["calibrate", "--high", "1e300", "--points", "4"], "--high: expected a learning rate of at most 1,000,000"),
    (["calibrate", "--low", "1e7"], "--low: expected a learning rate of at most 1,000,000"),
    (["experiment", "lr-prediction", "--sgd-grid", "1", "0.1", "--cells", "1", "--seeds", "1"],
     r"--sgd-grid needs LO < HI \(a log2 grid from LO up to HI\), got 1 0.1; fix --sgd-grid, e.g. --sgd-grid 0.1 1$"),
    (["experiment", "lr-prediction", "--adam-grid", "0.01", "0.01"], r"--adam-grid needs LO < HI .* got 0.01 0.01"),
    (["experiment", "lr-prediction", "--sgd-grid", "1", "1e300"], "--sgd-grid: expected a learning rate of at most"),
    (["inspect", "2_02_002", "--base-kernel-size", "99999"],
     r"--base-kernel-size: expected a kernel size of at most 1,024 \(nni_archscale.core.graph.MAX_KERNEL_SIZE\): the side q "
     r"of a square kernel, e.g. 3 for 3x3, got '99999'"),
    (["inspect", "2_02_002", "--base-kernel-size", "0"], "--base-kernel-size: expected a positive integer, got '0'"),
    (["inspect", GRAPH201, "--kernel-size", "1025"], "--kernel-size: expected a kernel size of at most 1,024"),
]


def _fill(argv, tmp_path):
    key = tmp_path / "id_test"
    key.write_text("not really a key, but a file\n")
    return [a.format(key=key, missing=tmp_path / "machines.json", dir=tmp_path) for a in argv]


@pytest.mark.parametrize("argv, message", CLI, ids=[" ".join(a)[:50] for a, _ in CLI])
def test_cli_bad_argument_is_one_line(argv, message, tmp_path, capsys):
    assert main(_fill(argv, tmp_path)) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("archscale: error: ")
    assert re.search(message, lines[0]), lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_cli_runtime_errors_are_one_line_and_traceback_only_with_debug(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    argv = ["search", "--base-lr", "0.1", "--no-progress"]
    cases = [
        (argv + ["--out", str(tmp_path / "file")], "is a file, not a directory; choose another --out"),
        (argv + ["--out", str(tmp_path / "o1"), "--dataset", "cifar10"], "pass --data-dir DIR"),
        (argv + ["--out", str(tmp_path / "o2"), "--dataset", "cifar100", "--data-dir", str(tmp_path / "none")],
         "does not exist or is not a directory; fix --data-dir"),
    ]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err, err
        assert main(["--debug", *args]) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and message in err


# ------------------------------------------------------------------------------- calibration caches
KEY = CalibrationCache.key("nb201-C4-N1", "digits", "sgd", 32)
RECIPE = {"grid": [0.1, 1.0], "epochs": 1}


def _entry(**over):
    e = {"key": KEY, "base_lr": 0.5, "recipe": RECIPE, "losses": {"0.1": 1.0, "1.0": 0.9}, "seconds": 1.0,
         "created": 0.0}
    e.update(over)
    return e


def _cache_text(entry=None, **top):
    return json.dumps({"format": CACHE_FORMAT, "entries": {KEY: entry if entry is not None else _entry()}, **top})


CACHES = [
    ("not json", "{not json", "is corrupt \\(JSONDecodeError\\); it is not trusted and will be rewritten"),
    ("half written", _cache_text()[:57], "is corrupt \\(JSONDecodeError\\)"),
    ("empty file", "", "is corrupt"),
    ("binary garbage", b"\xff\xfe\x00\x81garbage", "is corrupt \\(UnicodeDecodeError\\)"),
    ("top-level list", "[1, 2, 3]", "has format 'list', expected 'nni-archscale/calibration@1'"),
    ("other version", json.dumps({"format": "nni-archscale/calibration@0", "entries": {}}),
     "has format 'nni-archscale/calibration@0'.*delete it, or pass --refresh"),
    ("entries not a dict", json.dumps({"format": CACHE_FORMAT, "entries": [1]}), "has format"),
    ("entry not a dict", _cache_text("0.5"), "entry .* is malformed \\(an entry must be an object, not str\\)"),
    ("missing field", _cache_text({k: v for k, v in _entry().items() if k != "recipe"}),
     "is malformed \\(missing field 'recipe'\\); not trusted, recomputing"),
    ("base_lr NaN", _cache_text(_entry(base_lr=float("nan"))), "base_lr nan is not a positive number"),
    ("base_lr negative", _cache_text(_entry(base_lr=-0.1)), "base_lr -0.1 is not a positive number"),
    ("base_lr string", _cache_text(_entry(base_lr="0.5")), "base_lr '0.5' is not a positive number"),
    ("base_lr bool", _cache_text(_entry(base_lr=True)), "base_lr True is not a positive number"),
    ("recipe not a dict", _cache_text(_entry(recipe=[1])), "recipe is list, not an object"),
    ("filed under another key", _cache_text(_entry(key="space=x")), "filed under another key"),
    ("stale recipe", _cache_text(_entry(recipe={"grid": [0.1, 1.0], "epochs": 2})),
     "is stale \\(recipe changed: epochs\\); recomputing"),
]


@pytest.mark.parametrize("name, content, message", CACHES, ids=[c[0] for c in CACHES])
def test_corrupt_or_stale_cache_is_never_trusted(name, content, message, tmp_path):
    path = tmp_path / "calibration.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    # strict: a typed error naming the problem and the fix
    with pytest.raises(CacheError, match=message):
        CalibrationCache(path, strict=True).get(KEY, RECIPE)
    # default: reported, not trusted (recomputed), and the next write replaces the file with a valid one
    cache = CalibrationCache(path)
    assert cache.get(KEY, RECIPE) is None
    assert any(re.search(message, p) for p in cache.problems), cache.problems
    cache.put(Calibration(KEY, 0.25, RECIPE, {0.1: 1.0, 1.0: math.inf}, 0.5))
    again = CalibrationCache(path, strict=True)
    assert again.get(KEY, RECIPE).base_lr == 0.25 and again.problems == []


def test_valid_cache_is_trusted(tmp_path):
    path = tmp_path / "calibration.json"
    path.write_text(_cache_text())
    cal = CalibrationCache(path, strict=True).get(KEY, RECIPE)
    assert cal.base_lr == 0.5 and cal.source == "cache"


def test_cache_path_that_cannot_be_written(tmp_path):
    with pytest.raises(CacheError, match="is a directory; pass a file path such as"):
        CalibrationCache(tmp_path)
    (tmp_path / "blocker").write_text("a file where a directory should be")
    cache = CalibrationCache(tmp_path / "blocker" / "calibration.json")
    with pytest.raises(CacheError, match="cannot write the calibration cache .*; pass a writable file"):
        cache.put(Calibration(KEY, 0.25, RECIPE, {0.1: 1.0}, 0.5))


def test_calibrate_cli_reports_a_corrupt_cache_and_recomputes(tmp_path, capsys, monkeypatch,
                                                            reuse_seeded_nb201_builds):
    """The cache's side of ``archscale calibrate``: a torn cache file is reported, recomputed and rewritten. The
    training is stubbed (a loss smooth in log-rate, lowest at the middle of a quarter-octave grid of 3 rates, so
    that the rate search settles at once); the search itself is tested on its own (test_compare) and trained for
    real by the search and fairness tests."""
    from nni_archscale.nni_glue import calibration
    from nni_archscale.torch_layer.train import TrainResult

    trained = []

    def fake_train(model, train, val, optimizer, epochs=1, batch_size=128, max_steps=None, on_step=None, **kw):
        lr = optimizer.param_groups[0]["lr"]
        trained.append(lr)
        for step in range(max_steps or 1):
            on_step(step, 1.0 + math.log(lr / 0.3) ** 2)
        return TrainResult("ok", 0.1, 1.0, epochs, max_steps or 1, 0.0, 0.0)

    monkeypatch.setattr(calibration, "train_classifier", fake_train)
    path = tmp_path / "cal.json"
    path.write_text('{"format": "nni-archscale/calibration@1", "entries": {"space=')  # a torn write
    args = ["calibrate", "--cache", str(path), "--points", "3", "--low", "0.25", "--high", "0.353553", "--steps", "2",
            "--limit", "64", "--width", "2", "--batch-size", "32", "--no-progress", "--json"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning: calibration cache" in out and "is corrupt" in out
    assert len(trained) == 3 and json.loads(out[out.index("{"):])["source"] == "computed"  # not read back
    entries = json.loads(path.read_text())["entries"]  # rewritten, valid
    assert len(entries) == 1 and next(iter(entries.values()))["base_lr"] > 0


# ---------------------------------------------------------------------------------------- data directories
def _pickle(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _replace(path, content: bytes):
    path.write_bytes(content)
    return path.parent


def _cifar_batch(n=4, side=32, labels="labels"):
    return {b"data": np.zeros((n, 3 * side * side), dtype=np.uint8), labels.encode(): [0] * n}


def _cifar10(root, **override):
    d = root / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        obj = override.get(name, _cifar_batch())
        if obj is not None:
            _pickle(d / name, obj)
    return d


DATA = [
    ("cifar10 without --data-dir", "cifar10", lambda t: None, "never downloaded: pass --data-dir DIR"),
    ("imagenet without --data-dir", "imagenet16-120", lambda t: None, "pass --data-dir DIR .*ImageNet16/val_data"),
    ("missing directory", "cifar10", lambda t: t / "nowhere", "does not exist or is not a directory; fix --data-dir"),
    ("a file, not a directory", "cifar100", lambda t: (t / "f").write_text("x") and t / "f",
     "does not exist or is not a directory"),
    ("empty directory", "cifar10", lambda t: t, "no cifar10 files under .*extract the dataset's python-format"),
    ("marker is a directory", "cifar10", lambda t: (t / "data_batch_1").mkdir() or t, "no cifar10 files under"),
    ("incomplete archive", "cifar10", lambda t: _cifar10(t, data_batch_3=None),
     "missing dataset file .*data_batch_3.*looks incomplete"),
    ("truncated pickle", "cifar10", lambda t: _replace(_cifar10(t) / "data_batch_2", b"\x80\x04\x95garbage"),
     "cannot read dataset file .*data_batch_2.*re-extract the archive"),
    ("not a pickle", "cifar10", lambda t: _replace(_cifar10(t) / "test_batch", b"hello"),
     "cannot read dataset file .*test_batch"),
    ("pickle of a list", "cifar10", lambda t: _cifar10(t, data_batch_1=[1, 2, 3]),
     "does not hold a dict of arrays; is it the python version"),
    ("missing labels", "cifar10", lambda t: _cifar10(t, data_batch_4={b"data": np.zeros((2, 3072), np.uint8)}),
     "lacks 'data' or 'labels'; is it the python version"),
    ("wrong image size", "cifar10", lambda t: _cifar10(t, data_batch_5=_cifar_batch(side=16)),
     "rows of \\(768,\\) values, expected 3072"),
    ("cifar100 without test", "cifar100", lambda t: _pickle(t / "cifar-100-python" / "train",
                                                            _cifar_batch(labels="fine_labels")) or t,
     "missing dataset file .*test"),
    ("imagenet16 batch missing", "imagenet16-120",
     lambda t: _pickle(t / "ImageNet16" / "val_data", _cifar_batch(side=16)) or t,
     "missing dataset file .*train_data_batch_1"),
    ("unknown dataset", "svhn", lambda t: t, "unknown dataset 'svhn'; use one of digits, mnist, cifar10"),
]


@pytest.mark.parametrize("name, dataset, make, message", DATA, ids=[d[0] for d in DATA])
def test_bad_data_directory_is_named(name, dataset, make, message, tmp_path):
    data_dir = make(tmp_path)
    with pytest.raises(DataError, match=message):
        load_dataset(dataset, None if data_dir is None else str(data_dir), None, 0)


def test_good_cifar_layout_loads(tmp_path):
    _cifar10(tmp_path)
    data = load_dataset("cifar10", str(tmp_path), None, 0)
    assert len(data.train) == 20 and data.image_size == 32


# ------------------------------------------------------------------------------- machine lists (remote)
MACHINES = [
    ("[]", "must hold a non-empty list of machines"),
    ("{bad", "is not valid JSON"),
    ('[{"host": "h"}]', "entry #0: .*every machine needs 'host' and 'user'"),
    ('[{"host": "h", "user": "u", "cores": 4}]', "unknown field\\(s\\) cores"),
    ('["h"]', "entry #0 must be an object"),
    ('[{"host": "h", "user": "u", "port": 0, "password": "p"}]', "port 0 is not in 1..65535"),
    ('[{"host": "h", "user": "u", "sshKeyFile": "/none/key"}]', "SSH key '/none/key' for 'h' does not exist"),
    ('[{"host": "a", "user": "u", "password": "p", "python": "/a/bin/python"}, '
     '{"host": "b", "user": "u", "password": "p", "pythonPath": "/b/bin/python"}]', "different python interpreters"),
]


@pytest.mark.parametrize("text, message", MACHINES, ids=[m[1][:30] for m in MACHINES])
def test_bad_machine_list_is_named(text, message, tmp_path):
    from nni_archscale.nni_glue.training_service import read_machine_list, trial_python

    path = tmp_path / "machines.json"
    path.write_text(text)
    with pytest.raises(SearchError, match=message):
        trial_python(read_machine_list(path), "/usr/bin/python3")


# ------------------------------------------------------------------ files that are not files (issue 25: hangs)
def _one_line(err: str, message: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archscale: error: "), err
    assert re.search(message, lines[0]), lines[0]


PIPE = r"is a named pipe \(FIFO\), not a regular file \(reading it could block or never end\); pass the path of a"


@pytest.mark.parametrize("argv, message", [
    (["inspect", "{fifo}"], rf"^archscale: error: JSON graph file '.*fifo' {PIPE} regular file$"),
    (["verify", "{fifo}"], rf"JSON graph file '.*fifo' {PIPE}"),
    (["verify", "{link}"], rf"JSON graph file '.*x.json' {PIPE}"),  # a symlink named x.json to the pipe
    (["inspect", "{link}", "--json"], rf"JSON graph file '.*x.json' {PIPE}"),
    (["calibrate", "--cache", "{fifo}", "--points", "2"],
     rf"^archscale: error: calibration cache '.*fifo' {PIPE} regular file \(--cache / --calibration-cache\), or leave "
     rf"it out for the default cache$"),
    (["calibrate", "--cache", "{link}", "--points", "2"], rf"calibration cache '.*x.json' {PIPE}"),
], ids=["inspect", "verify", "verify symlink", "inspect symlink", "calibrate --cache", "calibrate --cache symlink"])
def test_a_named_pipe_is_refused_unread(argv, message, tmp_path, capsys):
    fifo = make_fifo(tmp_path / "fifo")
    (tmp_path / "x.json").symlink_to(fifo)
    argv = [a.format(fifo=fifo, link=tmp_path / "x.json") for a in argv]
    assert unblocked(lambda: main(argv), fifo) == 2
    captured = capsys.readouterr()
    _one_line(captured.err, message)
    assert "Traceback" not in captured.err + captured.out


def test_inspect_of_a_device_is_refused_unread(capsys):
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    assert main(["inspect", "/dev/zero"]) == 2  # it read until memory ran out
    _one_line(capsys.readouterr().err, r"JSON graph file '/dev/zero' is a character device, not a regular file")


def test_a_cache_path_that_is_a_pipe_is_never_opened(tmp_path):
    fifo = make_fifo(tmp_path / "fifo")
    with pytest.raises(CacheError, match=rf"^calibration cache '.*fifo' {PIPE} regular file"):
        unblocked(lambda: CalibrationCache(fifo), fifo)


# ----------------------------------------------------------- search: the out folder, the space's arguments
def _search(out) -> list[str]:
    return ["search", "--trials", "1", "--epochs", "1", "--limit", "64", "--no-progress", "--base-lr", "0.1",
            "--out", str(out)]


@pytest.mark.parametrize("name, make", [
    ("trials.jsonl", lambda p: p.mkdir()),
    ("run.json", lambda p: p.mkdir()),
    ("run.json", make_fifo),
], ids=["trials.jsonl a directory", "run.json a directory", "run.json a pipe"])
def test_resume_refuses_run_files_that_are_not_files(name, make, tmp_path, capsys):
    """issue 25: --resume with trials.jsonl a directory raised IsADirectoryError; a pipe would block."""
    out = tmp_path / "out"
    out.mkdir()
    make(out / name)
    assert unblocked(lambda: main([*_search(out), "--resume"]), out / name) == 2
    kind = "a named pipe \\(FIFO\\)" if name == "run.json" and not (out / name).is_dir() else "a directory"
    _one_line(capsys.readouterr().err, rf"'.*out/{re.escape(name)}' is {kind}, not archscale's {re.escape(name)} \(a "
                                       rf"regular file\), so the search in '.*out' cannot be read or continued; move "
                                       rf"it away, or choose another --out$")


def test_resume_checks_the_run_files_before_the_run_is_read(tmp_path):
    """The path that raised IsADirectoryError: run.json is archscale's and matches, trials.jsonl is a folder."""
    from nni_archscale.nni_glue.search import _check_out_dir

    identity = {"space": "nb201"}
    (tmp_path / "run.json").write_text(json.dumps({"identity": identity, "run_id": "1"}))
    (tmp_path / "trials.jsonl").mkdir()
    with pytest.raises(SearchError, match=r"trials.jsonl' is a directory, not archscale's trials.jsonl"):
        _check_out_dir(tmp_path, identity, resume=True)


DARTS_INT = (r"must be a positive integer up to 65,536, or a non-empty list of such \(the values to choose from\); "
             r"e.g. {key}={default} \(--space-arg {key}=VALUE\)$")
SPACE_ARGS = [
    ("darts", "width=abc", r"^archscale: error: argument width='abc' of NNI's DARTS \(darts\) "
     + DARTS_INT.format(key="width", default=8)),
    ("darts", "width=-1", r"argument width=-1 of NNI's DARTS \(darts\) " + DARTS_INT.format(key="width", default=8)),
    ("darts", "width=1e308", r"argument width=1e\+308 of NNI's DARTS \(darts\) must be a positive integer"),
    ("darts", "width=NaN", r"argument width=nan of NNI's DARTS \(darts\) must be a positive integer"),
    ("darts", "width=[8,0]", r"argument width=\[8, 0\] of NNI's DARTS \(darts\) must be a positive integer"),
    ("darts", "num_cells=0", r"argument num_cells=0 of NNI's DARTS \(darts\) " + DARTS_INT.format(key="num_cells",
                                                                                                 default=5)),
    ("darts", "width=100000", r"argument width=100000 of NNI's DARTS \(darts\) must be a positive integer up to "
                              r"65,536"),
    ("darts", "dataset=mnist", r"argument dataset='mnist' of NNI's DARTS \(darts\) must be one of 'cifar', 'imagenet'; "
                               r"e.g. dataset=\"cifar\""),
    ("darts", "auxiliary_loss=1", r"argument auxiliary_loss=1 of NNI's DARTS \(darts\) must be true or false"),
    ("darts", "badkey=1", r"^archscale: error: unknown argument\(s\) badkey for NNI's DARTS \(darts\); valid "
                          r"arguments: width, num_cells, dataset, auxiliary_loss, drop_path_prob \(--space-arg "
                          r"KEY=VALUE\)$"),
    ("nb101", "num_stacks=0", r"argument num_stacks=0 of NNI's NasBench101 \(nb101\) must be a positive integer up to "
                              r"65,536; e.g. num_stacks=1"),
]


@pytest.mark.parametrize("space, arg, message", SPACE_ARGS, ids=[f"{s} {a}" for s, a, _ in SPACE_ARGS])
def test_space_arguments_are_checked_up_front(space, arg, message, tmp_path, capsys):
    """issue 25: TypeError, RuntimeError, ValueError or AssertionError from NNI before; badkey warned that the base
    network "falls back", then failed for the same cause."""
    assert main([*_search(tmp_path / "out"), "--space", space, "--space-arg", arg]) == 2
    captured = capsys.readouterr()
    _one_line(captured.err, message)
    assert "warning" not in captured.out and "Traceback" not in captured.err


def test_a_space_argument_nni_refuses_is_one_line():
    """A value of the declared type that NNI's constructor still refuses (ProxylessNAS wants 9 stage widths)."""
    from nni_archscale.nni_glue.spaces import SpaceError, build_space

    with pytest.raises(SpaceError, match=r"^NNI's ProxylessNAS \(proxylessnas\) refuses base_widths=\[8, 8\] "
                                         r"\(AssertionError in its constructor\); fix them \(--space-arg\), or leave "
                                         r"them out for the defaults$"):
        build_space("proxylessnas", base_widths=[8, 8])


# ------------------------------------------------------------------------------ the hook's options (Python API)
HOOKS = [
    ({"base_lr": 0}, r"^base learning rate must be a positive finite number, got 0; pass the rate calibrated"),
    ({"base_lr": -1}, r"^base learning rate must be a positive finite number, got -1;"),
    ({"base_lr": float("nan")}, r"^base learning rate must be a positive finite number, got nan;"),
    ({"base_lr": "0.1"}, r"^base learning rate must be a positive finite number, got '0.1' \(str\);"),
    ({"base_lr": 1e300}, r"^base_lr 1e\+300 does not fit float32 \(at most 3.403e\+38\), in which the optimizer "
                         r"applies it; pass the rate calibrated on the base network, e.g. 0.1$"),
    ({"momentum": -5}, r"^momentum must be a number in \[0, 1\), got -5; e.g. 0.9 \(SGD's default here\), or 0 for "
                       r"plain SGD$"),
    ({"momentum": 1}, r"^momentum must be a number in \[0, 1\), got 1;"),
    ({"momentum": float("nan")}, r"^momentum must be a number in \[0, 1\), got nan;"),
    ({"momentum": "0.9"}, r"^momentum must be a number in \[0, 1\), got '0.9';"),
    ({"weight_decay": -1}, r"^weight_decay must be a finite number >= 0, got -1; e.g. 5e-4, or 0 for none$"),
    ({"weight_decay": float("nan")}, r"^weight_decay must be a finite number >= 0, got nan;"),
    ({"weight_decay": float("inf")}, r"^weight_decay must be a finite number >= 0, got inf;"),
    ({"batch_size": -3, "rate_rule": "readout-limited-sgd"},
     r"^batch_size must be a positive integer or None, got -3; pass the training batch size \(None: 32, the batch of "
     r"the measurements\)$"),
    ({"batch_size": 0}, r"^batch_size must be a positive integer or None, got 0;"),  # it silently became 32
    ({"batch_size": 2.5}, r"^batch_size must be a positive integer or None, got 2.5;"),
    ({"batch_size": True}, r"^batch_size must be a positive integer or None, got True;"),
]


@pytest.mark.parametrize("options, message", HOOKS, ids=[repr(o)[:40] for o, _ in HOOKS])
def test_hook_config_checks_its_numbers_when_made(options, message):
    """issue 25: HookConfig checked no numbers: momentum -5 failed in torch, base_lr '0.1' later, weight decay -1
    and nan reached the optimizer."""
    for make in (lambda: HookConfig(**options), lambda: HookConfig.from_dict(options), lambda: HookConfig.of(options)):
        with pytest.raises(RuleError, match=message) as info:
            make()
        assert "\n" not in str(info.value)
    assert HookConfig(momentum=0, weight_decay=0, batch_size=None) and HookConfig(base_lr=1e12, batch_size=64)


def _mlp():
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("model, hook, error, message", [
    ("mlp", {"lr": 0.3}, RuleError, r"^unknown hook option\(s\) 'lr'; valid options: base_lr, init, optimizer, "
                                    r"momentum, nesterov, weight_decay, scheduler, per_edge, rate_rule, "
                                    r"batch_size \(use base_lr for lr\)$"),
    ("mlp", [0.1], RuleError, r"^the hook's options must be a HookConfig or a dict of its options, got list \[0.1\]; "
                              r"e.g. \{'base_lr': 0.1\} or HookConfig\(base_lr=0.1\)$"),
    ("mlp", 0.1, RuleError, r"^the hook's options must be a HookConfig or a dict of its options, got float 0.1;"),
    ("mlp", {"momentum": -5}, RuleError, r"^momentum must be a number in \[0, 1\)"),
    (None, {"base_lr": 0.1}, ExtractionError, r"^prepare_for_trial\(\) needs the candidate model, a torch.nn.Module, "
                                              r"got None; pass the model NNI hands the trial \(the frozen candidate\), "
                                              r"not its name$"),
    ("resnet", {"base_lr": 0.1}, ExtractionError,
     r"^prepare_for_trial\(\) needs the candidate model, .* got 'resnet';"),
], ids=["unknown key", "list", "float", "momentum", "model None", "model name"])
def test_prepare_for_trial_names_a_wrong_model_or_hook(model, hook, error, message):
    from nni_archscale.nni_glue.evaluators import prepare_for_trial

    with pytest.raises(error, match=message) as info:
        prepare_for_trial(_mlp() if model == "mlp" else model, hook, adapter="fx")
    assert "\n" not in str(info.value)


def test_hooks_take_the_options_as_a_dict_as_the_readme_shows():
    """issue 25: prepare_candidate(m, {"base_lr": 0.1}) raised "'dict' object has no attribute 'scheme'"."""
    from nni_archscale.nni_glue.evaluators import ArchScaleCallback

    prepared = prepare_candidate(_mlp(), {"base_lr": 0.1, "rate_rule": "graph"}, adapter="fx")
    assert prepared.config == HookConfig(base_lr=0.1, rate_rule="graph")
    with pytest.raises(RuleError, match=r"^unknown hook option\(s\) 'wd'; .* \(use weight_decay for wd\)$"):
        prepare_candidate(_mlp(), {"wd": 0.1}, adapter="fx")
    with pytest.raises(ExtractionError, match=r"^prepare_candidate\(\) needs the candidate model, .* got 'resnet';"):
        prepare_candidate("resnet", {"base_lr": 0.1})
    with pytest.raises(RuleError, match=r"^unknown hook option\(s\) 'lr'"):  # when made, not at the first candidate
        ArchScaleCallback(hook={"lr": 0.3})
    assert ArchScaleCallback(hook={"base_lr": 0.2}).hook == {"base_lr": 0.2}  # the options as given


# ------------------------------------------------------------------------------ --debug, help text, the test command
def test_debug_is_accepted_after_the_subcommand_too(capsys):
    """issue 25: `archscale inspect ARCH --debug` was refused as an unrecognized argument."""
    assert main(["inspect", "2_02_002", "--debug"]) == 0
    assert "init       paper   paths counted as paper" in capsys.readouterr().out
    for argv in (["inspect", "2_02_002", "--debug", "--base-kernel-size", "0"],
                 ["experiment", "lr-prediction", "--sgd-grid", "1", "0.1", "--debug"]):  # a nested subcommand
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and "UsageError" in err
    assert main(["inspect", "2_02_002", "--base-kernel-size", "0"]) == 2  # without --debug: still one line
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", ["calibrate", "search", "inspect", "verify", "fairness", "experiment"])
def test_help_shows_one_percent_sign(command, capsys):
    """issue 25: a literal %% showed in calibrate's ("2%%") and search's ("95%%") descriptions: argparse un-escapes
    %% in help strings only; the CLI's parser treats descriptions the same way."""
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "%%" not in text
    expected = {"calibrate": "within 2% of the lowest", "search": "with its 95% interval"}
    assert expected.get(command, "") in text


def test_search_options_say_what_they_do_and_their_default():
    import argparse

    from nni_archscale.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    options = commands["search"]._option_string_actions
    for flag in ("--batch-size", "--strategy", "--optimizer", "--weight-decay", "--scheduler", "--seed"):
        text = options[flag].help or ""
        default = "5e-4" if flag == "--weight-decay" else str(options[flag].default)
        assert f"default {default}" in text, (flag, text)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _test_command_args(tmp_path, *args: str) -> list[str]:
    """The pytest arguments scripts/test.sh passes on for ``args`` (a copy run beside a stub set-up and a stub
    python that prints its arguments)."""
    import shutil
    import subprocess

    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(os.path.join(ROOT, "scripts", "test.sh"), tmp_path / "scripts" / "test.sh")
    (tmp_path / "scripts" / "setup.sh").write_text("exit 0\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    python.chmod(0o755)
    done = subprocess.run(["bash", str(tmp_path / "scripts" / "test.sh"), *args], capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.splitlines()


@pytest.mark.parametrize("args, passed", [
    ((), ["-m", "pytest", "-n", "2", "-m", "not slow and not gpu"]),
    (("-x",), ["-m", "pytest", "-n", "2", "-m", "not slow and not gpu", "-x"]),
    (("-q", "tests/test_cli.py"), ["-m", "pytest", "-n", "2", "-m", "not slow and not gpu", "-q", "tests/test_cli.py"]),
    (("-m", "slow"), ["-m", "pytest", "-n", "2", "-m", "slow"]),
    (("-x", "-m", "slow or not slow"), ["-m", "pytest", "-n", "2", "-x", "-m", "slow or not slow"]),
    (("-mslow",), ["-m", "pytest", "-n", "2", "-mslow"]),
    (("--markexpr=gpu",), ["-m", "pytest", "-n", "2", "--markexpr=gpu"]),
    (("-n", "0"), ["-m", "pytest", "-m", "not slow and not gpu", "-n", "0"]),
    (("-p", "no:xdist", "-x"), ["-m", "pytest", "-m", "not slow and not gpu", "-p", "no:xdist", "-x"]),
], ids=["none", "-x", "-q FILE", "-m slow", "-x -m", "-mslow", "--markexpr=", "-n 0", "no:xdist"])
def test_the_test_command_keeps_the_fast_selection_unless_given_a_marker(args, passed, tmp_path):
    """issue 25: `bash scripts/test.sh -x` (or -q) dropped the marker filter and ran the slow tests too; the tests
    run on two processes unless the arguments choose."""
    assert _test_command_args(tmp_path, *args) == passed


def test_the_test_command_deselects_slow_tests_with_other_arguments():
    import subprocess

    done = subprocess.run(["bash", "scripts/test.sh", "-q", "--collect-only", "tests/test_symbolic_cli.py"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_nb201_all_passes" not in done.stdout and "(1 deselected)" in done.stdout, done.stdout
