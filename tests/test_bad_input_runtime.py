"""Bad input at run time: NNI sample dicts, models torch.fx cannot trace, CLI arguments of the wrong type or
range (every subcommand), corrupt or stale calibration caches, unreadable or missing data directories.

Each case must raise a typed error (a subclass of ArchScaleError) whose message names the problem and the fix;
through the CLI it is one line on stderr, exit status 2, and a traceback only with --debug.
(tests/test_bad_input.py covers architecture strings, paper codes and JSON graphs.)
"""

from __future__ import annotations

import json
import math
import pickle
import re

import numpy as np
import pytest
import torch
from torch import nn

from nni_archscale.cli.main import main
from nni_archscale.errors import ArchScaleError, GraphStructureError
from nni_archscale.nni_glue.adapters import graph_from_nb201_sample, is_nb201_sample, prepare_candidate
from nni_archscale.run_errors import CacheError, DataError, ExtractionError, SearchError
from nni_archscale.torch_layer.calibrate import CACHE_FORMAT, Calibration, CalibrationCache
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
    (["inspect", "2_02_002", "--preset", "zzz"], "--preset: invalid choice: 'zzz'"),
    (["inspect", "2_02_002", "--base-lr", "-inf"], "--base-lr: expected a positive finite number, got '-inf'"),
    # verify
    (["verify", "--random", "-3"], "--random: expected a positive integer, got '-3'"),
    (["verify", "2_02", "--base-lr", "-1e-3"], "--base-lr: expected a positive finite number, got '-1e-3'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
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


def test_calibrate_cli_reports_a_corrupt_cache_and_recomputes(tmp_path, capsys):
    path = tmp_path / "cal.json"
    path.write_text('{"format": "nni-archscale/calibration@1", "entries": {"space=')  # a torn write
    args = ["calibrate", "--cache", str(path), "--points", "2", "--steps", "2", "--limit", "64", "--width", "2",
            "--batch-size", "32", "--no-progress", "--json"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning: calibration cache" in out and "is corrupt" in out
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
