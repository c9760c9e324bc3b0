"""NAS-Bench-201 fair retraining: metrics on known inputs, sampling, the published-table validation, a CI-sized run
end to end, and (slow) a bigger run."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import NB201_CSV
from fake_data import fake_cifar10
from nni_archscale import from_nb201
from nni_archscale.cli import main
from nni_archscale.experiments.nb201 import analyse, run
from nni_archscale.fairness.nb201_sampling import (
    Candidate, ExperimentError, all_cells, depth_power_sum, nni_sample, sample_candidates, stratified_sample,
)
from nni_archscale.experiments.nb201_report import write_nb201_report
from nni_archscale.experiments.nb201_training import Config, Run, command_line
from nni_archscale.fairness.published_table import ARCH_COLUMN, read_published
from nni_archscale.stats import (
    kendall_tau, mean_gain, pairwise_gaps, seed_tau_top_k, spearman, tau_top_k, top_k_indices,
)
from nni_archscale.errors import DataError

#: an experiment builds each cell once per recipe after seeding torch with the cell's seed: reuse_seeded_nb201_builds
#: (conftest) copies the first build instead of freezing NNI's space again (the same network and RNG state)
pytestmark = pytest.mark.usefixtures("reuse_seeded_nb201_builds")

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
NO_PATH = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
COLUMN = "CIFAR10TestAccuracy200Epochs"


# --------------------------------------------------------------------------- metrics on known inputs
def test_mean_gain_is_the_mean_difference():
    assert mean_gain([91.0, 80.0, 50.5], [90.0, 81.0, 50.0]) == pytest.approx((1 - 1 + 0.5) / 3)
    assert mean_gain([], []) is None
    with pytest.raises(ValueError):
        mean_gain([1.0], [1.0, 2.0])


def test_top_k_subsets_take_the_best_by_the_reference():
    ref = [50.0, 90.0, 70.0, 80.0, 60.0, 10.0, 85.0, 40.0, 30.0, 20.0]
    assert top_k_indices(ref, 100) == list(range(10))
    assert top_k_indices(ref, 50) == [1, 2, 3, 4, 6]
    assert top_k_indices(ref, 25) == [1, 3, 6]       # ceil(2.5) = 3 cells
    assert top_k_indices(ref, 10) == [1]
    assert top_k_indices([5.0, 5.0, 1.0], 34) == [0, 1]  # ties keep the earlier cell first


def test_kendall_tau_among_top_k_on_known_rankings():
    ref = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    other = [1.0, 2.0, 3.0, 4.0, 6.0, 5.0]  # one swap among the top two
    res = tau_top_k(ref, other, (100, 50, 34))
    # 15 pairs, one discordant: (14 - 1) / 15
    assert res[100] == {"cells": 6, "tau": pytest.approx(13 / 15)}
    # top 3 = cells 3,4,5: 3 pairs, one discordant
    assert res[50]["cells"] == 3 and res[50]["tau"] == pytest.approx(1 / 3)
    assert res[34] == {"cells": 3, "tau": pytest.approx(1 / 3)}
    assert tau_top_k(ref, other, (10,))[10] == {"cells": 1, "tau": None}  # too few cells: n/a, not +-1
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)


def test_seed_tau_averages_seed_pairs():
    s0 = [1.0, 2.0, 3.0, 4.0]
    s1 = [1.0, 2.0, 3.0, 4.0]
    s2 = [4.0, 3.0, 2.0, 1.0]
    res = seed_tau_top_k([s0, s1, s2], (100,))
    # pairs: (s0,s1) tau 1, (s0,s2) -1, (s1,s2) -1 -> mean -1/3
    assert res[100]["pairs"] == 3 and res[100]["tau"] == pytest.approx(-1 / 3)
    assert seed_tau_top_k([s0], (100,))[100]["tau"] is None


def test_pairwise_gaps_and_spearman():
    assert sorted(pairwise_gaps([90.0, 85.0, 80.0])) == [5.0, 5.0, 10.0]
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486832980505138)  # average ranks for ties
    assert spearman([1, 1, 1], [1, 2, 3]) is None


# --------------------------------------------------------------------------- sampling
def test_nni_sample_maps_nb201_ops_to_nni_names():
    s = nni_sample("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|skip_connect~2|")
    assert s == {"cell/0_1": "conv_3x3", "cell/0_2": "skip_connect", "cell/1_2": "conv_1x1",
                 "cell/0_3": "avg_pool_3x3", "cell/1_3": "none", "cell/2_3": "skip_connect"}


def test_all_cells_and_path_statistic():
    cells = all_cells()
    assert len(cells) == 15_625 and len(set(cells)) == 15_625
    assert depth_power_sum(from_nb201(ALL_CONV)) == 126  # L_p = 4, 3, 3, 2
    assert depth_power_sum(from_nb201(NO_PATH)) == 0


def test_stratified_sample_is_reproducible_stratified_and_distinct():
    values = [float(i % 100) for i in range(1000)]
    archs = all_cells()[:1000]
    a = stratified_sample(values, archs, 20, seed=3)
    assert a == stratified_sample(values, archs, 20, seed=3)
    assert a != stratified_sample(values, archs, 20, seed=4)
    strata = [s for _, s in a]
    assert sorted(set(strata)) == list(range(10)) and all(strata.count(s) == 2 for s in range(10))
    # stratum s holds the s-th decile of the values
    for i, s in a:
        assert 10 * s <= values[i] < 10 * (s + 1)
    graphs = [from_nb201(archs[i]) for i, _ in a]
    assert len(set(graphs)) == len(graphs)


def test_sampling_without_a_table_uses_path_statistics_deciles():
    cands = sample_candidates(10, seed=0)
    assert [c.stratum for c in cands] == list(range(10))
    sums = [depth_power_sum(from_nb201(c.arch)) for c in cands]
    assert sums == sorted(sums)  # deciles of sum_p L_p^3 are ordered
    assert all(c.published is None for c in cands)


# --------------------------------------------------------------------------- the published table
def _write(path, header, rows):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_published_table_is_validated_with_clear_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist.*--published"):
        read_published(tmp_path / "missing.csv", COLUMN)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_published(tmp_path / "empty.csv", COLUMN)
    p = _write(tmp_path / "cols.csv", ["Arch", "Acc"], [[ALL_CONV, 90]])
    with pytest.raises(DataError, match=r"lacks column\(s\) ArchitectureString, CIFAR10TestAccuracy200Epochs.*"
                                        r"found: Arch, Acc.*--published-column"):
        read_published(p, COLUMN)
    p = _write(tmp_path / "norows.csv", [ARCH_COLUMN, COLUMN], [])
    with pytest.raises(DataError, match="no rows"):
        read_published(p, COLUMN)
    p = _write(tmp_path / "bad_acc.csv", [ARCH_COLUMN, COLUMN], [[ALL_CONV, 90], [NO_PATH, "high"]])
    with pytest.raises(DataError, match=r"line 3: CIFAR10TestAccuracy200Epochs = 'high' is not an accuracy"):
        read_published(p, COLUMN)
    p = _write(tmp_path / "range.csv", [ARCH_COLUMN, COLUMN], [[ALL_CONV, 190]])
    with pytest.raises(DataError, match="line 2.*0 to 100"):
        read_published(p, COLUMN)
    p = _write(tmp_path / "bad_arch.csv", [ARCH_COLUMN, COLUMN], [[ALL_CONV, 90], ["|conv~0|+", 50]])
    with pytest.raises(DataError, match="line 3: ArchitectureString '\\|conv~0\\|\\+' is not a NAS-Bench-201 cell"):
        read_published(p, COLUMN)
    p = _write(tmp_path / "ok.csv", ["Extra", ARCH_COLUMN, "MyAcc"], [[1, ALL_CONV, 93.5], [2, NO_PATH, 10]])
    t = read_published(p, "MyAcc")
    assert t.archs == (ALL_CONV, NO_PATH) and t.accuracy == (93.5, 10.0)


def test_cli_reports_a_bad_published_table_in_one_line(tmp_path, capsys):
    p = _write(tmp_path / "t.csv", ["Arch"], [[ALL_CONV]])
    code = main(["experiment", "nb201", "--published", str(p), "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("archscale: error: published table") and "lacks column(s)" in err


def test_bad_options_are_refused():
    with pytest.raises(ExperimentError, match="unknown recipe"):
        Config(recipes=("benchmark", "adamw")).validate()
    with pytest.raises(ExperimentError, match="must include 'benchmark'"):
        Config(recipes=("paper",)).validate()
    with pytest.raises(ExperimentError, match="at least 2"):
        Config(cells=1).validate()


@pytest.mark.skipif(not NB201_CSV.exists(), reason="published NAS-Bench-201 table not present")
def test_sampling_by_published_deciles():
    table = read_published(NB201_CSV, COLUMN)
    assert len(table.archs) == 15_625
    cands = sample_candidates(20, seed=0, table=table)
    ordered = sorted(table.accuracy)
    deciles = np.array_split(np.arange(15_625), 10)
    for c in cands:
        assert table.archs[c.index] == c.arch and table.accuracy[c.index] == c.published
        assert ordered[deciles[c.stratum][0]] <= c.published <= ordered[deciles[c.stratum][-1]]
    assert sorted({c.stratum for c in cands}) == list(range(10))


# --------------------------------------------------------------------------- analysis on known runs
def test_analysis_of_known_runs(tmp_path):
    cands = [Candidate(i, a, i, p, None) for i, (a, p) in enumerate(
        [(ALL_CONV, 94.0), (NO_PATH, 10.0), (all_cells()[100], 80.0), (all_cells()[200], 85.0)])]
    acc = {  # recipe -> seed -> per-cell accuracy
        "benchmark": [[90.0, 10.0, 70.0, 80.0], [92.0, 10.0, 72.0, 78.0]],
        "paper": [[91.0, 10.0, 75.0, 79.0], [93.0, 10.0, 75.0, 81.0]],
    }
    runs = [Run(c.cell, c.arch, c.stratum, c.published, rc, s, "no-path" if c.arch == NO_PATH else "ok",
                acc[rc][s][c.cell], None, None, 1, 0.0) for rc in acc for s in (0, 1) for c in cands]
    s = analyse(Config(top_k=(100, 50)), ("benchmark", "paper"), cands, runs)
    paper = s["stats"]["paper"]
    # seed means: benchmark 91, 10, 71, 79; paper 92, 10, 75, 80 -> gains 1, 0, 4, 1
    assert paper["gain_vs_benchmark"] == pytest.approx(1.5)
    assert paper["gain_vs_benchmark_both_ok"] == pytest.approx(2.0)  # the no-path cell left out
    assert paper["cells_improved"] == 3 and paper["cells_worse"] == 0
    assert paper["tau_vs_benchmark_top_k"]["100"]["tau"] == pytest.approx(1.0)
    assert paper["statuses"] == {"ok": 6, "no-path": 2, "diverged": 0, "oom": 0}
    # benchmark seeds: 90,10,70,80 vs 92,10,72,78 -> identical ranking
    assert s["stats"]["benchmark"]["seed_tau_top_k"]["100"]["tau"] == pytest.approx(1.0)
    assert paper["kendall_vs_published"] == pytest.approx(1.0)
    # benchmark seed means 91, 10, 71, 79: gaps 81, 20, 12, 61, 69, 8 -> median (20 + 61) / 2
    assert s["stats"]["benchmark"]["pairwise_gap_median"] == pytest.approx(40.5)
    text = write_nb201_report(tmp_path, s)
    assert "| `paper` | 64.25 | +1.50 | +2.00 | 3 / 0 |" in text
    assert (tmp_path / "README.md").read_text() == text


def test_command_line_reproduces_non_default_options():
    cmd = command_line(Config(cells=30, epochs=8, recipes=("benchmark", "paper"), threads=1, top_k=(100, 25.5)),
                       "reports/nb201")
    assert cmd == ("archscale experiment nb201 --cells 30 --recipes benchmark,paper --epochs 8 --top-k 100,25.5 "
                   "--threads 1 --out reports/nb201")


# --------------------------------------------------------------------------- end to end
def test_cli_smoke_run_writes_every_output(tmp_path, capsys):
    out = tmp_path / "nb201"
    args = ["experiment", "nb201", "--cells", "3", "--seeds", "2", "--epochs", "1", "--width", "4", "--limit", "96",
            "--batch-size", "48", "--base-lr", "0.2", "--recipes", "benchmark,paper,release", "--threads", "1",
            "--out", str(out), "--no-progress"]
    if NB201_CSV.exists():
        args += ["--published", str(NB201_CSV)]
    assert main(args) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    recipes = summary["recipes"]
    assert recipes == ["benchmark", "paper", "release"]
    with (out / "runs.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2 * len(recipes)  # every (cell, recipe, seed) is a row, whatever its outcome
    assert {r["status"] for r in rows} <= {"ok", "no-path", "diverged", "oom"}
    for r in rows:
        if r["status"] == "ok":
            assert 0 <= float(r["accuracy"]) <= 100 and float(r["learning_rate"]) > 0
        else:
            assert float(r["accuracy"]) == pytest.approx(10.0)
    fair = [r for r in rows if r["recipe"] == "paper" and r["status"] == "ok"]
    for r in fair:  # the fair rate is c / sqrt(sum_p L_p^3)
        assert float(r["learning_rate"]) == pytest.approx(0.2 / math.sqrt(depth_power_sum(from_nb201(r["arch"]))),
                                                          rel=1e-5)
    assert all(float(r["learning_rate"]) == pytest.approx(0.1) for r in rows
               if r["recipe"] == "benchmark" and r["status"] == "ok")
    # the summary's gain is the mean over cells of the seed-mean difference, recomputed here from runs.csv
    def seed_mean(recipe, cell):
        v = [float(r["accuracy"]) for r in rows if r["recipe"] == recipe and r["cell"] == str(cell)]
        return sum(v) / len(v)

    gain = sum(seed_mean("paper", c) - seed_mean("benchmark", c) for c in range(3)) / 3
    assert summary["stats"]["paper"]["gain_vs_benchmark"] == pytest.approx(gain, abs=1e-4)
    assert summary["base_rates"] == {"rates": {"paper": 0.2, "release": 0.2}, "source": "--base-lr"}
    for name in ("scatter.png", "tau_topk.png", "gaps.png"):
        assert (out / name).stat().st_size > 5000
    readme = (out / "README.md").read_text()
    assert readme.strip() in text
    assert "+0.44 / +1.24 / +2.09" in readme and "## Notes" in readme and "--base-lr 0.2" in readme
    assert (out / "cells.csv").read_text().count("\n") == 4
    # --report-only recomputes the same metrics from runs.csv without training
    assert main(["experiment", "nb201", "--report-only", "--out", str(out)]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert again["command"] == summary["command"]
    for rc in recipes:
        a, b = again["stats"][rc], summary["stats"][rc]
        assert a["mean_accuracy"] == pytest.approx(b["mean_accuracy"], abs=1e-9)
        assert a["seed_tau_top_k"] == b["seed_tau_top_k"] and a.get("tau_vs_benchmark_top_k") == b.get(
            "tau_vs_benchmark_top_k")


def _trainer(**overrides):
    import torch

    from nni_archscale.experiments.nb201_training import Trainer
    from nni_archscale.torch_layer.data import load_dataset

    torch.set_num_threads(1)
    cfg = Config(width=4, limit=96, batch_size=16, epochs=1, **overrides)
    return Trainer(cfg, load_dataset("digits", None, 96, 0), torch.device("cpu"),
                   {"paper": 0.2, "release": 0.2, "exact": 0.2})


@pytest.mark.parametrize("recipe", ["benchmark", "paper", "mup"])
def test_a_cell_without_a_path_is_recorded_not_lost(recipe):
    r = _trainer().run(Candidate(0, NO_PATH, 0, 10.0, 7), recipe, 0)
    assert r.status == "no-path" and r.accuracy == pytest.approx(10.0) and r.learning_rate is None
    assert "no input-output path" in r.message and r.published == 10.0


def test_a_diverging_run_is_recorded_at_chance():
    r = _trainer(bench_lr=1e12).run(Candidate(0, ALL_CONV, 0, None, None), "benchmark", 0)
    assert r.status == "diverged" and r.accuracy == pytest.approx(10.0) and "nan" in r.message


def test_the_mup_recipe_trains_with_musgd_and_a_mureadout():
    pytest.importorskip("mup")
    t = _trainer(mup_base_width=2)
    r = t.run(Candidate(0, ALL_CONV, 0, None, None), "mup", 0)
    assert r.status == "ok" and r.learning_rate == pytest.approx(0.1) and r.epochs == 1
    from mup import MuReadout

    model = t._mup_model(nni_sample(ALL_CONV))
    assert isinstance(model.classifier, MuReadout)
    assert model.classifier.weight.infshape.width_mult() == pytest.approx(2.0)  # width 4 over base width 2


@pytest.mark.slow
def test_bigger_run_with_calibration_and_mup(tmp_path):
    pytest.importorskip("mup")
    out = tmp_path / "nb201"
    cfg = Config(cells=10, seeds=2, epochs=3, width=8, threads=1, calibration_points=5,
                 published=str(NB201_CSV) if NB201_CSV.exists() else None)
    summary = run(cfg, out, progress=False)
    write_nb201_report(out, summary)
    assert summary["recipes"] == ["benchmark", "paper", "release", "exact", "mup"]
    assert summary["base_rates"]["source"] == "calibration"
    assert set(summary["base_rates"]["rates"]) == {"paper", "release", "exact"}
    assert summary["base_rates"]["rates"]["exact"] == summary["base_rates"]["rates"]["paper"]
    assert (out / "calibration-paper.json").exists() and (out / "calibration-release.json").exists()
    st = summary["stats"]
    assert st["benchmark"]["statuses"]["ok"] + st["benchmark"]["statuses"]["no-path"] == 20
    # trained cells learn: the benchmark recipe beats chance by far on digits
    assert st["benchmark"]["mean_accuracy"] > 50
    assert st["benchmark"]["seed_tau_top_k"]["100"]["tau"] is not None


def test_augmentation_crops_and_flips_windows_of_the_padded_batch():
    import torch

    from nni_archscale.experiments.nb201_training import AugmentedArrayData
    from nni_archscale.torch_layer.data import ArrayData

    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    data = ArrayData(x, torch.tensor([0, 1]), torch.zeros(3), torch.ones(3))
    aug = AugmentedArrayData(data, seed=0, pad=2)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    seen_flip = seen_plain = False
    for _ in range(20):
        xb, yb = aug.batch(torch.tensor([0, 1]))
        assert xb.shape == x.shape and yb.tolist() == [0, 1]
        for b in range(2):
            windows = [padded[b, :, i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
            plain = any(torch.equal(xb[b], w) for w in windows)
            flipped = any(torch.equal(xb[b], w.flip(2)) for w in windows)
            assert plain or flipped
            seen_plain |= plain
            seen_flip |= flipped and not plain
    assert seen_plain and seen_flip


def test_cifar_layout_from_a_local_directory_runs_with_augmentation(tmp_path):
    """The full-scale path (CIFAR-10 python batches from --data-dir, augmentation on) at a toy size."""
    fake_cifar10(tmp_path, 12)
    out = tmp_path / "out"
    summary = run(Config(dataset="cifar10", data_dir=str(tmp_path), cells=2, seeds=1, epochs=1, width=4,
                         batch_size=30, base_lr=0.2, recipes=("benchmark", "paper"), threads=1), out, print, False)
    assert summary["augment"] is True and summary["data"].startswith("cifar10: 60 train / 12 validation")
    assert len((out / "runs.csv").read_text().splitlines()) == 1 + 2 * 2
    with pytest.raises(DataError, match="--data-dir"):
        run(Config(dataset="cifar100", data_dir=None, cells=2, recipes=("benchmark",)), tmp_path / "x", print, False)


def test_the_exact_recipe_scales_node_sums_and_shares_papers_rate(monkeypatch):
    from nni_archscale.torch_layer import hook

    applied = []
    real = hook.apply_output_scales
    monkeypatch.setattr(hook, "apply_output_scales", lambda model, scales: applied.append(scales) or real(model, scales))
    t = _trainer()
    skippy = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
    r = t.run(Candidate(0, skippy, 0, None, None), "exact", 0)
    p = t.run(Candidate(0, skippy, 0, None, None), "paper", 0)
    assert r.status == "ok" and r.learning_rate == pytest.approx(p.learning_rate)
    assert len(applied) == 1 and any(a < 1 for a in applied[0].values())


def test_three_arm_recipes_train_and_are_scored(tmp_path):
    """The shared and archscale arms of the three-arm test: same calibrated base rate budget, the product's
    NB201 default (one shared rate, paper init) for archscale; THREE-ARM.md written by the command."""
    from nni_archscale.cli.main import main

    out = tmp_path / "3arm"
    assert main(["experiment", "nb201", "--dataset", "digits", "--cells", "3", "--seeds", "2", "--epochs", "1",
                 "--limit", "96", "--recipes", "benchmark,shared,archscale", "--base-lr", "0.2", "--no-progress",
                 "--out", str(out), "--threads", "1"]) == 0
    import csv

    rows = list(csv.DictReader((out / "runs.csv").open()))
    assert {r["recipe"] for r in rows} == {"benchmark", "shared", "archscale"} and len(rows) == 18
    for r in rows:
        if r["recipe"] in ("shared", "archscale") and r["status"] == "ok":
            assert float(r["learning_rate"]) == pytest.approx(0.2)  # one rate (NB201's measured default)
    text = (out / "THREE-ARM.md").read_text()
    assert "archscale - shared" in text and "Verdict" in text


def test_three_arm_cifar10_script_runs_on_fake_data(tmp_path):
    """scripts/three_arm_cifar10.sh (the GPU command) on a fake CIFAR-10 directory, shrunk by its override
    arguments to a CPU-sized run: the command line, the data path and the three-arm report all work. The script
    runs as itself with $ARCHSCALE pointing at a stub that keeps the command line it is given; that command line
    then runs here (test_cli runs the real archscale console script)."""
    import os
    import subprocess

    fake_cifar10(tmp_path, 8)
    repo = Path(__file__).resolve().parents[1]
    stub, argv_file = tmp_path / "archscale-stub", tmp_path / "argv"
    stub.write_text('#!/usr/bin/env bash\nprintf \'%s\\0\' "$@" > "$ARGV_FILE"\n')
    stub.chmod(0o755)
    env = dict(os.environ, ARCHSCALE=str(stub), OUT=str(tmp_path / "out"), ARGV_FILE=str(argv_file))
    out = subprocess.run(["bash", str(repo / "scripts" / "three_arm_cifar10.sh"), str(tmp_path), "--cells", "2",
                          "--seeds", "2", "--epochs", "1", "--width", "4", "--cells-per-stage", "1",
                          "--batch-size", "20", "--device", "cpu", "--base-lr", "0.1", "--threads", "1"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    argv = [a.decode() for a in argv_file.read_bytes().split(b"\0")[:-1]]
    assert argv[:2] == ["experiment", "nb201"] and argv[argv.index("--data-dir") + 1] == str(tmp_path)
    assert main(argv) == 0
    assert "Verdict" in (tmp_path / "out" / "THREE-ARM.md").read_text()
    assert "cifar10: 40 train / 8 validation" in (tmp_path / "out" / "README.md").read_text()
