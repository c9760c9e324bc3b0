"""The search's comparison with one shared rate: arms and seeds joined into rows, the paired gain with its
interval, the rankings' tau against the seed-to-seed noise floor; the refined calibration; and the search's
output folder (checked before any work, one file mode, nothing to resume, one interruption line)."""

from __future__ import annotations

import math
import os
import stat

import pytest

from nni_archscale.results import RECORDS, append_record, build_rows, compare_arms, prepare_out_dir, write_outputs
from nni_archscale.errors import CalibrationError, OutputError
from nni_archscale.stats import kendall_tau, mean_interval, seed_tau
from nni_archscale.torch_layer.rate_grid import log_grid, refine_rate


def _records(table: dict[str, dict[str, list[float]]], run: str = "r") -> list[dict]:
    recs = []
    for arch, arms in table.items():
        for mode, accs in arms.items():
            for replica, acc in enumerate(accs):
                recs.append({"arch": arch, "mode": mode, "replica": replica, "status": "ok", "accuracy": acc,
                             "run": run, "learning_rate": 0.1})
    return recs


TABLE = {  # candidate: {arm: accuracy at seeds 0, 1, 2}
    "a": {"archscale": [0.90, 0.92, 0.91], "shared-rate": [0.80, 0.82, 0.81]},
    "b": {"archscale": [0.70, 0.74, 0.72], "shared-rate": [0.75, 0.70, 0.74]},
    "c": {"archscale": [0.50, 0.52, 0.48], "shared-rate": [0.60, 0.66, 0.61]},
    "d": {"archscale": [0.85, 0.80, 0.86], "shared-rate": [0.86, 0.83, 0.84]},
}


def test_rows_average_each_arm_over_its_seeds():
    rows = build_rows(_records(TABLE))
    assert [r["arch"] for r in rows] == list(TABLE)
    a = rows[0]
    assert a["accuracy"] == pytest.approx(0.91) and a["baseline_accuracy"] == pytest.approx(0.81)
    assert a["accuracy_sd"] == pytest.approx(0.01) and a["seeds"] == 3 and a["baseline"] == "shared-rate"
    assert a["gain"] == pytest.approx(0.10)


def test_the_comparison_is_the_paired_gain_with_its_interval_and_the_noise_floor():
    rows = build_rows(_records(TABLE))
    c = compare_arms(rows)
    gains = [sum(v["archscale"]) / 3 - sum(v["shared-rate"]) / 3 for v in TABLE.values()]
    mean = sum(gains) / 4
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / 3)
    half = 3.182446305284263 * sd / 2  # Student t(0.975, 3) * sd / sqrt(4)
    assert c["compared"] == 4 and c["mean_gain"] == pytest.approx(mean)
    assert c["gain_ci95"] == pytest.approx([mean - half, mean + half])
    means = lambda arm: [sum(v[arm]) / 3 for v in TABLE.values()]  # noqa: E731
    assert c["kendall_tau"] == pytest.approx(kendall_tau(means("shared-rate"), means("archscale")))
    by_seed = lambda arm: [[v[arm][s] for v in TABLE.values()] for s in range(3)]  # noqa: E731
    assert c["seed_tau"]["archscale"] == pytest.approx(seed_tau(by_seed("archscale")))
    assert c["seed_tau"]["baseline"] == pytest.approx(seed_tau(by_seed("shared-rate")))
    per_seed = [kendall_tau(a, b) for a, b in zip(by_seed("archscale"), by_seed("shared-rate"))]
    assert c["kendall_tau_per_seed"] == pytest.approx(sum(per_seed) / 3)
    assert c["seeds"] == 3
    # the interval includes 0 here: the verdict says so, and compares the ranking change with the noise floor
    assert c["gain_ci95"][0] < 0 < c["gain_ci95"][1]
    assert c["verdict"].startswith("no clear accuracy difference")
    floor = min(c["seed_tau"].values())
    word = "within" if c["kendall_tau_per_seed"] >= floor else "beyond"
    assert f"ranking change {word} seed noise" in c["verdict"]


def test_a_clear_gain_and_a_ranking_change_beyond_the_noise_floor_are_named():
    table = {f"x{i}": {"archscale": [0.6 + 0.02 * i, 0.6 + 0.02 * i + 0.001],
                       "shared-rate": [0.5 - 0.02 * i, 0.5 - 0.02 * i + 0.001]} for i in range(6)}
    c = compare_arms(build_rows(_records(table)))
    assert c["gain_ci95"][0] > 0 and c["verdict"].startswith("the rule gains 0.2000 accuracy on average")
    assert c["seed_tau"]["archscale"] == pytest.approx(1.0) and c["kendall_tau_per_seed"] == pytest.approx(-1.0)
    assert "ranking change beyond seed noise" in c["verdict"]
    one_seed = compare_arms(build_rows(_records({k: {m: v[:1] for m, v in arms.items()}
                                                  for k, arms in table.items()})))
    assert one_seed["seed_tau"] == {"archscale": None, "baseline": None}
    assert "noise floor unknown (one seed" in one_seed["verdict"]


def test_a_run_killed_mid_training_is_failed_in_its_arm_and_left_out_of_the_gain(tmp_path):
    recs = _records(TABLE)
    recs.append({"arch": "e", "mode": "archscale", "replica": 0, "status": "ok", "accuracy": 0.9, "run": "r"})
    recs.append({"arch": "e", "mode": "start", "arm": "shared-rate", "replica": 0, "status": "started", "run": "r"})
    rows = build_rows(recs)
    e = rows[-1]
    assert e["baseline_status"] == "failed" and e["baseline_accuracy"] == 0.0
    assert compare_arms(rows)["compared"] == 4  # the candidate whose baseline run died is not compared
    for r in recs:
        append_record(tmp_path / RECORDS, r)
    summary = write_outputs(tmp_path, {"space": "s", "dataset": "d", "run_id": "r"}, compare="shared-rate")
    assert summary["compared"] == 4 and (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"


def test_mean_interval_edge_cases():
    assert mean_interval([]) == (None, None)
    assert mean_interval([0.3]) == (0.3, None)
    m, (lo, hi) = mean_interval([1.0, 1.0, 1.0])
    assert m == lo == hi == 1.0


# ------------------------------------------------------------------------------------- refined calibration
def _bowl(optimum: float, diverge_above: float):
    """A synthetic training: final loss grows with the log-distance from ``optimum``; diverges above a rate."""
    tried: list[float] = []

    def train_one(lr: float):
        tried.append(lr)
        if lr > diverge_above:
            return math.inf, "diverged"
        return 1.0 + math.log2(lr / optimum) ** 2, "ok"

    return train_one, tried


def test_refine_rate_resolves_the_best_rate_to_a_quarter_octave():
    train_one, tried = _bowl(optimum=0.2, diverge_above=5.0)
    grid = log_grid(1e-3, 10.0, 9)  # 1.66 octaves apart: 0.1 and 0.316 are its nearest rates to 0.2
    found = refine_rate(train_one, grid)
    assert set(grid) <= set(found.losses) and len(tried) == len(set(tried))  # no rate trained twice
    # within half a step of the optimum, plus the 2% loss tolerance (which picks a rate up to 0.14 octave above)
    assert abs(math.log2(found.rate / 0.2)) <= 0.125 + 0.15
    assert found.resolution_octaves == pytest.approx(0.25, abs=1e-3) and found.widened == 0
    coarse_best = min(grid, key=lambda lr: abs(math.log2(lr / 0.2)))
    assert abs(math.log2(found.rate / 0.2)) < abs(math.log2(coarse_best / 0.2))


def test_a_best_rate_at_the_grid_edge_widens_the_grid():
    train_one, _ = _bowl(optimum=40.0, diverge_above=1e9)
    found = refine_rate(train_one, log_grid(1e-3, 10.0, 9))
    assert found.widened >= 1 and max(found.losses) > 10.0
    assert abs(math.log2(found.rate / 40.0)) <= 0.3 and found.resolution_octaves == pytest.approx(0.25, abs=1e-3)
    low_train, _ = _bowl(optimum=1e-4, diverge_above=1e9)
    assert refine_rate(low_train, log_grid(1e-3, 10.0, 9)).widened >= 1


def test_a_best_rate_beyond_every_widening_is_refused():
    train_one, _ = _bowl(optimum=1e9, diverge_above=1e12)
    with pytest.raises(CalibrationError, match="still the largest rate tried after widening the grid by 2 steps"):
        refine_rate(train_one, log_grid(1e-3, 10.0, 9), max_widen=2)


# ------------------------------------------------------------------------------------------- output folder
@pytest.mark.parametrize("where", ["/proc/archscale-out", "/dev/null/x", "README.md/sub"])
def test_an_output_folder_that_cannot_be_written_is_refused_first(where, capsys):
    from nni_archscale.cli.main import main

    with pytest.raises(OutputError, match="choose another --out"):
        prepare_out_dir(where)
    assert main(["search", "--trials", "2", "--epochs", "1", "--out", where, "--no-progress"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archscale: error:") and "choose another --out" in err[0]
    assert "archscale: data" not in captured.out  # refused before the data (or NNI) was loaded


def test_resume_with_nothing_there_says_so(tmp_path, capsys):
    from nni_archscale.cli.main import main

    assert main(["search", "--out", str(tmp_path / "empty"), "--resume", "--base-lr", "0.1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume in" in err and "drop --resume" in err


def test_every_output_file_has_one_mode(tmp_path):
    append_record(tmp_path / RECORDS, {"arch": "a", "mode": "archscale", "status": "ok", "accuracy": 0.5})
    write_outputs(tmp_path, {"space": "s", "dataset": "d"}, compare=None)
    mask = os.umask(0o022)
    os.umask(mask)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()}
    assert set(modes) == {RECORDS, "results.csv", "summary.json", "accuracy.png"}
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_an_interrupted_search_says_so_once(monkeypatch, capsys):
    import importlib

    from nni_archscale.nni_glue import search

    cli_main = importlib.import_module("nni_archscale.cli.main")

    def interrupted(opts, report=print):
        raise search.SearchInterrupted("partial results written; continue with the same command plus --resume")

    monkeypatch.setattr(search, "run_search", interrupted)
    assert cli_main.main(["search", "--out", "/tmp/archscale-interrupt-test", "--base-lr", "0.1",
                          "--no-progress"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["archscale: interrupted; partial results written; continue with the same command plus --resume"]
