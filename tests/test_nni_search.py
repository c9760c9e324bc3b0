"""``archscale search`` end to end: a tiny sequential-engine search (with --compare and resume) and a small
ts-engine search; no nnimanager may outlive them."""

from __future__ import annotations

import csv
import json

import pytest

from conftest_nni import no_leaked_nnimanager, one_thread  # noqa: F401

from nni_archscale.cli.main import main
from nni_archscale.stats import kendall_tau


#: every test fails if an nnimanager it started (a descendant, or one working under its tmp_path) outlives it;
#: other sessions' nnimanagers on the same machine are not ours to count. The calibrations build their base network
#: once per rate after seeding torch: reuse_seeded_nb201_builds (conftest) copies it instead of freezing NNI's space
#: again (the same network, the same RNG state after it)
pytestmark = pytest.mark.usefixtures("no_leaked_nnimanager", "one_thread", "reuse_seeded_nb201_builds")


def _args(out, cache, *extra):
    return ["search", "--trials", "3", "--epochs", "1", "--limit", "300", "--width", "4", "--out", str(out),
            "--calibration-cache", str(cache), "--no-progress", *extra]


@pytest.mark.nni
def test_sequential_search_with_compare_and_resume(tmp_path, capsys):
    """--compare (shared-rate) with 2 seeds: the baseline is one rate tuned on the base network by the same
    calibration; every arm trains each candidate once per seed; resume retrains nothing."""
    out, cache = tmp_path / "run", tmp_path / "cal.json"
    assert main(_args(out, cache, "--compare", "--seeds", "2")) == 0
    printed = capsys.readouterr().out
    assert "against shared-rate:" in printed and "resolved to 0.25 octave" in printed
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3
    assert {"arch", "learning_rate", "accuracy", "baseline_accuracy", "baseline_learning_rate", "gain"} <= set(rows[0])
    summary = json.loads((out / "summary.json").read_text())
    cached = json.loads(cache.read_text())["entries"]
    shared = next(e for k, e in cached.items() if k.endswith("init=standard"))  # tuned once, cached
    assert summary["baseline"] == "shared-rate" and summary["shared_lr"] == shared["base_lr"]
    assert shared["resolution_octaves"] == 0.25 and shared["widened"] >= 0
    for r in rows:
        assert r["arch"].startswith("|") and 0.0 <= float(r["accuracy"]) <= 1.0 and r["seeds"] == "2"
        assert float(r["baseline_learning_rate"]) == shared["base_lr"]  # one rate for every candidate
    assert summary["candidates"] == 3 and summary["seeds"] == 2 and summary["compared"] == 3
    gains = [float(r["accuracy"]) - float(r["baseline_accuracy"]) for r in rows]
    assert summary["mean_gain"] == pytest.approx(sum(gains) / len(gains))
    lo, hi = summary["gain_ci95"]
    assert lo <= summary["mean_gain"] <= hi
    assert set(summary["seed_tau"]) == {"archscale", "baseline"} and "verdict" in summary
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    runs = {(r["arch"], r["mode"], r["replica"]) for r in records if r["mode"] != "start"}
    assert len(runs) == 3 * 2 * 2 and {m for _, m, _ in runs} == {"archscale", "shared-rate"}
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"

    lines = (out / "trials.jsonl").read_text().splitlines()
    # the same --out without --resume is refused; with --resume nothing is retrained
    assert main(_args(out, cache, "--compare", "--seeds", "2")) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(_args(out, cache, "--compare", "--seeds", "2", "--resume")) == 0
    assert (out / "trials.jsonl").read_text().splitlines() == lines
    # resuming with different options (here: the seeds) is refused
    assert main(_args(out, cache, "--compare", "--resume")) == 2
    assert "seeds" in capsys.readouterr().err


@pytest.mark.nni
def test_compare_with_nni_defaults(tmp_path):
    out = tmp_path / "nni-default"
    assert main(_args(out, tmp_path / "cal.json", "--compare", "nni-default", "--base-lr", "0.5", "--trials", "2")) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert {r["baseline_learning_rate"] for r in rows} == {"0.001"}
    assert json.loads((out / "summary.json").read_text())["baseline"] == "nni-default"


@pytest.mark.nni
def test_ts_engine_search(tmp_path):
    """The trial-subprocess engine with its nnimanager; the two trials run at once (--concurrency 2: one trial
    process's start-up instead of two in a row)."""
    out = tmp_path / "ts"
    assert main(_args(out, tmp_path / "cal.json", "--engine", "ts", "--trials", "2", "--concurrency", "2",
                     "--base-lr", "0.5")) == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 2 and all(r["adapter"] in ("nb201-sample", "") for r in rows)


def test_kendall_tau():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    assert kendall_tau([1, 1], [1, 2]) is None
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)


@pytest.mark.nni
def test_search_with_the_exact_init(tmp_path, capsys):
    out, cache = tmp_path / "exact", tmp_path / "cal.json"
    assert main(_args(out, cache, "--init", "exact", "--base-lr", "0.3")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["init"] == "exact" and summary["candidates"] == 3
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert all(r["status"] in ("ok", "no-path") for r in rows)
    # a run's init is part of its identity: resuming it under the other init is refused
    assert main(_args(out, cache, "--init", "paper", "--base-lr", "0.3", "--resume")) == 2
    assert "init" in capsys.readouterr().err


def test_tpe_maximises_accuracy_and_is_seeded():
    """Our trials report accuracy; NNI's TpeTuner minimises by default, so an unconfigured TPE searched for the
    worst candidates. Both our search and the custom-space example ask for maximisation and pass the seed."""
    from loading import load_file

    from nni_archscale.nni_glue.search import _strategy

    example = load_file("examples/custom_space.py", "custom_space_example")
    ops = {"_type": "choice", "_value": ["conv", "pool", "skip", "zero", "dilated"]}
    space = {"op1": ops, "op2": ops}

    def proposals(strategy):
        strategy.tuner.update_search_space(space)
        return [strategy.tuner.generate_parameters(i) for i in range(6)]

    for make in (lambda seed: _strategy("tpe", 4, seed), lambda seed: example.strategy("tpe", seed)):
        tpe = make(7)
        assert tpe.tuner.optimize_mode.value == "maximize"
        assert proposals(tpe) == proposals(make(7))
        tuner = make(7).tuner
        tuner.update_search_space(space)
        params = tuner.generate_parameters(0)
        tuner.receive_trial_result(0, params, 0.9)  # accuracy 0.9: recorded as loss -0.9 (better than 0.5)
        assert [r.loss for records in tuner._history.values() for r in records] == [-0.9, -0.9]  # op1, op2


@pytest.mark.nni
def test_search_with_on_device_augmentation_records_the_trainer_path(tmp_path):
    """--augment (issue 15): the trials train through the fast path (on the CPU in fp32, with NAS-Bench-201's crop
    and flip) and each record says which path trained it; augmentation is part of the run's identity."""
    out, cache = tmp_path / "aug", tmp_path / "cal.json"
    assert main(_args(out, cache, "--augment", "--base-lr", "0.3")) == 0
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    trained = [r for r in records if r.get("mode") == "archscale" and r.get("status") == "ok"]
    assert trained and all("augment(pad 4, flip)" in r["speed"] and "fp32" in r["speed"] for r in trained)
    assert main(_args(out, cache, "--base-lr", "0.3", "--resume")) == 2  # resumed without --augment: refused
    plain = tmp_path / "plain"
    assert main(_args(plain, cache, "--base-lr", "0.3")) == 0
    records = [json.loads(line) for line in (plain / "trials.jsonl").read_text().splitlines()]
    assert all(r["speed"] == "plain loop" for r in records if r.get("mode") == "archscale" and "speed" in r)


@pytest.mark.nni
def test_naming_the_presets_own_init_is_the_same_run(tmp_path):
    """--init paper is what no --init means: resuming with it is the same run (nothing is retrained); a run.json an
    earlier version wrote (``hook.preset`` beside ``hook.init``) resumes as the same run too."""
    out, cache = tmp_path / "same", tmp_path / "cal.json"
    assert main(_args(out, cache, "--base-lr", "0.3")) == 0
    before = (out / "trials.jsonl").read_text()
    assert before.count('"status": "ok"') >= 3
    assert main(_args(out, cache, "--base-lr", "0.3", "--init", "paper", "--resume")) == 0
    assert (out / "trials.jsonl").read_text().count('"status": "ok"') == before.count('"status": "ok"')
    release = tmp_path / "release"
    assert main(_args(release, cache, "--base-lr", "0.3", "--init", "release")) == 0
    assert json.loads((release / "summary.json").read_text())["init"] == "release"
    run = json.loads((out / "run.json").read_text())
    identity = run["identity"]
    identity["hook.preset"] = identity["hook.init"]  # as an earlier version wrote it
    (out / "run.json").write_text(json.dumps(run))
    assert main(_args(out, cache, "--base-lr", "0.3", "--resume")) == 0
    assert (out / "trials.jsonl").read_text().count('"status": "ok"') == before.count('"status": "ok"')
