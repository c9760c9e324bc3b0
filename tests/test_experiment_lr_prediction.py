"""The maximal learning-rate prediction harness: a CI-sized run end to end, and the metrics on known data."""

import json
import math

import numpy as np
import pytest

from fake_data import fake_cifar10
from nni_archscale.core.networks import CellNetwork
from nni_archscale import from_paper_code
from nni_archscale.cli import main
from nni_archscale.experiments.lr_prediction import (
    BASE_CELL, Config, Measurement, analyse, chain_cell, networks, run, sample_topology_cells,
)
from nni_archscale.rules.paper import learning_rate


def test_sampled_cells_are_distinct_connected_and_not_the_base():
    cells = sample_topology_cells(30, seed=1)
    assert len(set(map(str, cells))) == 30
    assert all(c.num_nodes == 5 for c in cells)
    from nni_archscale.core.paths import path_statistics

    assert all(path_statistics(c).output[0] > 0 for c in cells)
    assert from_paper_code(BASE_CELL) not in cells


def test_depth_family_is_app_d():
    nets = networks(Config(family="mlp-depth"))
    assert [len(c.parameterised_edges) + 2 for c, _ in nets] == list(range(3, 11))  # L = 3 .. 10 layers
    assert chain_cell(3).num_nodes == 4


def test_cnn_family_cycles_kernels():
    nets = networks(Config(family="cnn-kernel", cells=6))
    assert nets[0][1] == 3 and [q for _, q in nets[1:]] == [3, 5, 7, 3, 5, 7]
    assert all(e.kernel_size == q for c, q in nets[1:] for e in c.parameterised_edges)


def test_metrics_on_known_measurements():
    cfg = Config(cells=4, seeds=2, inits=("paper",), optimizers=("sgd",))
    nets = networks(cfg)
    # measured = exactly what the paper rule predicts from a base rate of 0.5 -> r = 1, error 0
    ms = []
    for cell, q in nets:
        rate = 0.5 * learning_rate(cell, 1.0, "paper", "mlp-cell").value
        from nni_archscale.core.formats import to_paper_code

        ms.append(Measurement(to_paper_code(cell), q, "paper", "sgd", (rate, rate), [[0.0]], False))
    s = analyse(cfg, nets, ms, 64, 10)
    paper = s["pairs"]["paper/sgd"]["rules"]["paper"]
    assert paper["mean_abs_octaves"] == pytest.approx(0, abs=1e-12)
    assert paper["pearson_r_log"] == pytest.approx(1.0) or paper["pearson_r_log"] is None
    std = s["pairs"]["paper/sgd"]["rules"]["standard"]
    expected = np.mean([abs(math.log2(learning_rate(c, 1.0, "paper", "mlp-cell").value)) for c, _ in nets[1:]])
    assert std["mean_abs_octaves"] == pytest.approx(expected)


def test_every_rule_is_scored_and_the_absolute_rule_is_capped():
    """No graph rule may drop out of the summary silently (a rule the analysis cannot score used to vanish), and
    readout-limited-sgd predicts min(base rate x second-step multiplier, its absolute readout cap)."""
    from nni_archscale.experiments.lr_prediction import available_rules
    from nni_archscale.core.formats import to_paper_code
    from nni_archscale.experiments.rule_variants import rule_multiplier
    from nni_archscale.rules.first_step import readout_rate_limit

    cfg = Config(cells=4, seeds=2, inits=("paper", "exact"), optimizers=("sgd",), width=256, batch_size=32)
    nets = networks(cfg)
    ms = [Measurement(to_paper_code(c), q, init, "sgd", (0.3, 0.3), [[0.0]], False)
          for c, q in nets for init in cfg.inits]
    s = analyse(cfg, nets, ms, 196, 10)
    for pair in ("paper/sgd", "exact/sgd"):
        assert set(s["pairs"][pair]["rules"]) == set(available_rules()) - {"mup"}
    got = s["pairs"]["paper/sgd"]["rules"]["readout-limited-sgd"]["predicted"]
    want = [min(0.3 * rule_multiplier("second-step-sgd", CellNetwork(c, 196, 256, 10), "paper", "sgd"),
                readout_rate_limit(CellNetwork(c, 196, 256, 10), "paper", 32)) for c, _ in nets[1:]]
    assert got == pytest.approx(want)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One CI-sized run (the default inits, paper and exact; the other runs here name theirs) shared by the tests
    that read it: ``(out, printed)``. Tests that change the folder work on a copy (:func:`copy_of`)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("lr-prediction") / "lrp"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["experiment", "lr-prediction", "--cells", "3", "--seeds", "2", "--width", "16", "--limit", "160",
                     "--per-octave", "1", "--sgd-grid", "0.0625", "16", "--out", str(out)])
    assert code == 0
    return out, printed.getvalue()


def copy_of(run_dir, tmp_path):
    import shutil

    return shutil.copytree(run_dir, tmp_path / run_dir.name)


@pytest.fixture
def no_plot(monkeypatch):
    """The scatter plot (seconds: a grid of subplots and tight_layout) is drawn and checked by the end-to-end and
    mup tests; the tests of other paths record that it was asked for and skip the drawing."""
    from nni_archscale.experiments import lr_prediction

    asked = []
    monkeypatch.setattr(lr_prediction, "_plot", lambda out_dir, summary: asked.append(out_dir))
    return asked


def test_cli_runs_a_tiny_experiment_end_to_end(tiny_run):
    out, text = tiny_run
    assert "## init exact, optimizer sgd" in text and "`paper`" in text
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["pairs"]) == {"paper/sgd", "exact/sgd"}
    runs = (out / "runs.csv").read_text().splitlines()
    assert runs[0].startswith("arch,kernel_size,init,optimizer,seed,rate,final_loss")
    assert len(runs) == 1 + 4 * 2 * 2 * 9  # networks x inits x seeds x rates
    assert (out / "scatter.png").stat().st_size > 1000 and (out / "README.md").exists()


def test_cli_rejects_a_bad_family(capsys):
    assert main(["experiment", "lr-prediction", "--family", "transformer"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_reanalyse_reproduces_the_run_without_training(tiny_run, tmp_path, no_plot):
    from nni_archscale.experiments.lr_prediction import reanalyse

    out = copy_of(tiny_run[0], tmp_path)  # reanalyse rewrites the summary, plots and report
    before = json.loads((out / "summary.json").read_text())
    after = reanalyse(out)
    for pair, data in before["pairs"].items():
        assert after["pairs"][pair]["measured"] == pytest.approx(data["measured"])
        for rule, stats in data["rules"].items():
            assert after["pairs"][pair]["rules"][rule]["mean_abs_octaves"] == pytest.approx(stats["mean_abs_octaves"])
    assert no_plot == [out]


def test_cli_names_an_unknown_init(capsys):
    assert main(["experiment", "lr-prediction", "--inits", "foo"]) == 2
    assert "unknown init 'foo'" in capsys.readouterr().err


def test_mup_is_measured_the_mup_way_and_predicts_one_rate(tmp_path, capsys):
    pytest.importorskip("mup")
    out = tmp_path / "lrp"
    assert main(["experiment", "lr-prediction", "--cells", "3", "--seeds", "2", "--width", "16", "--limit", "160",
                 "--per-octave", "1", "--sgd-grid", "0.0625", "16", "--inits", "paper,mup", "--out", str(out)]) == 0
    assert "## init mup, optimizer sgd" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    mup_pair, paper_pair = summary["pairs"]["mup/sgd"], summary["pairs"]["paper/sgd"]
    assert list(mup_pair["rules"]) == ["mup"] and "mup" not in paper_pair["rules"]
    stats = mup_pair["rules"]["mup"]
    assert stats["predicted"] == [mup_pair["base_max_lr"]] * 3  # one rate for every network
    assert stats["pearson_r_log"] is None  # a constant predicts no ordering
    expected = np.mean(np.abs(np.log2(mup_pair["measured"]) - np.log2(mup_pair["base_max_lr"])))
    assert stats["mean_abs_octaves"] == pytest.approx(expected)


def test_mup_base_width_must_be_narrower(capsys):
    pytest.importorskip("mup")
    assert main(["experiment", "lr-prediction", "--inits", "mup", "--width", "16", "--mup-base-width", "16"]) == 2
    assert "--mup-base-width must be between 1 and the width 16" in capsys.readouterr().err


@pytest.mark.parametrize("family", ["mlp-topology", "cnn-kernel"])
def test_cifar10_from_a_local_directory(tmp_path, capsys, family, no_plot):
    """The paper's data path: CIFAR-10's python batches from --data-dir (a toy-sized fake archive here); the
    MLP sees 3 x 32 x 32 = 3072 features, the CNN 3 input channels."""
    fake_cifar10(tmp_path)
    out = tmp_path / "lrp"
    assert main(["experiment", "lr-prediction", "--family", family, "--data", "cifar10", "--data-dir", str(tmp_path),
                 "--cells", "2", "--seeds", "1", "--width", "4", "--limit", "64", "--per-octave", "1",
                 "--sgd-grid", "0.25", "4", "--inits", "paper", "--device", "cpu", "--json", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["device"] == "cpu" and summary["config"]["data"] == "cifar10"
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 3 * 5  # networks x rates (one seed)
    assert no_plot == [out]


def test_cifar10_without_a_directory_says_how_to_give_one(capsys):
    assert main(["experiment", "lr-prediction", "--data", "cifar10", "--cells", "2"]) == 2
    assert "pass --data-dir DIR (holding cifar-10-batches-py/)" in capsys.readouterr().err
