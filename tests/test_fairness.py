"""archscale fairness: reading curves, the cross-fitted oracle, fitted constants, the bootstrap, the decisions,
and the command end to end at toy size (CPU, and the fast trainer path on the CPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest_nni import no_leaked_nnimanager, one_thread  # noqa: F401

from nni_archscale.fairness.curves import (Curve, crossfit_shift, fit_shift, off_grid, oracle, population_shift,
                                           read_at, seed_noise_at_oracle)
from nni_archscale.fairness.score import ALPHA_2SE, Arm, arm_metrics, bootstrap_interval, decide_all


def peaked(key: str, centre: float, height: float = 0.9, seeds: int = 3, noise=None, lo=-6, hi=0) -> Curve:
    """A curve over half-octave rates 2^lo..2^hi peaking at log2-rate ``centre``."""
    x = np.arange(lo * 2, hi * 2 + 1) / 2.0
    acc = np.tile(height - 0.05 * (x - centre) ** 2, (seeds, 1))
    if noise is not None:
        acc = acc + noise
    return Curve(key, x, acc)


# ------------------------------------------------------------------------------------------------ reading
def test_reading_is_exact_on_grid_points_and_linear_in_log_rate_between_them():
    x = np.array([-2.0, -1.5, -1.0])
    v = np.array([0.5, 0.7, 0.6])
    assert read_at(x, v, -1.5) == pytest.approx(0.7)
    assert read_at(x, v, -1.75) == pytest.approx(0.6)           # halfway in log-rate: the mean
    assert read_at(x, v, -1.25) == pytest.approx(0.65)
    rate = 2 ** -1.375                                           # a quarter of the way from 2^-1.5 to 2^-1
    assert read_at(x, v, math.log2(rate)) == pytest.approx(0.7 - 0.1 * 0.25)
    # outside the grid: the end point, and it is counted off-grid
    c = Curve("c", x, np.array([v, v]))
    assert read_at(x, v, -3.0) == pytest.approx(0.5) and off_grid(c, -3.0) and off_grid(c, -0.5)
    assert not off_grid(c, -1.0) and not off_grid(c, -2.0)


def test_curve_refuses_malformed_input():
    with pytest.raises(ValueError, match="ascending"):
        Curve("c", np.array([0.0, -1.0]), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        Curve("c", np.array([0.0, 1.0]), np.array([[0.1, float("nan")], [0.1, 0.2]]))
    with pytest.raises(ValueError, match="seeds, rates"):
        Curve("c", np.array([0.0, 1.0]), np.zeros((2, 3)))


# ------------------------------------------------------------------------------------------------ oracle
def test_oracle_is_chosen_on_other_seeds_and_read_on_the_left_out_one():
    # seed 0 has a lucky spike at rate index 0 that the in-sample oracle picks; cross-fitting does not reward it
    acc = np.array([[0.95, 0.80, 0.70], [0.60, 0.80, 0.70], [0.60, 0.80, 0.70]])
    c = Curve("c", np.array([-2.0, -1.5, -1.0]), acc)
    o = oracle([c])
    assert o.log_rate[0] == pytest.approx(-1.5)           # all seeds: mean 0.7167 / 0.8 / 0.7
    # leave seed 0 out: best on seeds 1,2 is index 1 -> 0.80; seed 1 out: seeds 0,2 -> index 1 (0.8 vs 0.775) -> 0.80
    assert o.accuracy[0] == pytest.approx(0.80)
    assert o.in_sample[0] == pytest.approx(0.80) and o.interior[0]
    spike = np.array([[0.99, 0.80, 0.70], [0.98, 0.80, 0.70], [0.10, 0.80, 0.70]])
    o = oracle([Curve("s", np.array([-2.0, -1.5, -1.0]), spike)])
    # in sample index 0 wins (0.69 < 0.80: no); index 1 wins; cross-fitted: seed 2 out picks index 0 -> 0.10
    assert o.accuracy[0] == pytest.approx((0.80 + 0.80 + 0.10) / 3)
    assert o.in_sample[0] == pytest.approx(0.80)
    with pytest.raises(ValueError, match="2 seeds"):
        oracle([Curve("one", np.array([0.0]), np.array([[0.5]]))])


def test_noise_floor_reads_each_seed_at_the_oracle_rate():
    a = peaked("a", -3.0, 0.9)
    b = peaked("b", -2.0, 0.8)
    per_seed = seed_noise_at_oracle([a, b], oracle([a, b]))
    assert per_seed == [[pytest.approx(0.9), pytest.approx(0.8)]] * 3


# ------------------------------------------------------------------------------------------------ constants
def test_fitted_constant_depends_on_the_shape_not_on_the_level_given():
    curves = [peaked(f"c{i}", -3.0 + 0.5 * i) for i in range(4)]
    truth = np.array([-3.0, -2.5, -2.0, -1.5])
    for offset in (-2.0, 0.0, 1.25):      # the same shape at any level fits back to the oracle rates
        d = fit_shift(curves, truth + offset)
        assert d == pytest.approx(-offset)
    acc, folds = crossfit_shift(curves, truth + 1.25)
    assert folds == [pytest.approx(-1.25)] * 3
    np.testing.assert_allclose(acc, 0.9)
    # one shared rate fitted by the same function lands between the optima and loses accuracy
    shared_acc, _ = crossfit_shift(curves, np.zeros(4))
    assert shared_acc.mean() < 0.9


def test_quantised_rates_give_no_arm_a_fitting_advantage():
    """The issue-23 case: a rule whose rates equal one shared rate's up to quarter-octave quantisation must not
    beat one shared rate because of how its constant is fitted. With the same fit for both arms (the level that
    maximises mean accuracy) their accuracies agree to within the quantisation's own cost."""
    rng = np.random.default_rng(0)
    curves = [peaked(f"c{i}", -3.0, 0.9, noise=rng.normal(0, 0.01, (3, 13))) for i in range(20)]
    shared = np.full(20, -2.0)
    quantised = shared + np.round(rng.normal(0, 0.15, 20) * 4) / 4    # mostly equal, a few a quarter octave off
    acc_s, _ = crossfit_shift(curves, shared)
    acc_q, _ = crossfit_shift(curves, quantised)
    assert acc_s.mean() >= acc_q.mean() - 1e-9       # jitter cannot help when every curve peaks at one rate


def test_population_objective_fits_on_a_sample_and_reads_the_others():
    curves = [peaked(f"c{i}", -3.0) for i in range(6)]
    acc, fitted = population_shift(curves, np.full(6, -1.0), size=2, draws=5)
    assert fitted and all(d == pytest.approx(-2.0) for d in fitted)
    np.testing.assert_allclose(acc, 0.9)
    with pytest.raises(ValueError, match="population sample"):
        population_shift(curves, np.zeros(6), size=6)


# ------------------------------------------------------------------------------------------------ scoring
def test_bootstrap_interval_is_seeded_and_covers_the_mean():
    values = np.linspace(0, 1, 40)
    ci = bootstrap_interval(lambda i: float(values[i].mean()), 40)
    assert ci == bootstrap_interval(lambda i: float(values[i].mean()), 40)
    assert ci[0] < 0.5 < ci[1] and ci[1] - ci[0] < 0.3
    assert bootstrap_interval(lambda i: None, 10) is None


def test_arm_metrics_regret_share_and_rank():
    orc_acc = np.array([0.9, 0.8, 0.7, 0.6])
    orc_lr = np.array([-3.0, -2.0, -1.0, 0.0])
    shared = Arm("shared@product", "shared", "product", np.full(4, -2.0), np.array([0.8, 0.8, 0.6, 0.4]))
    rule = Arm("r@product", "r", "product", orc_lr + 0.5, np.array([0.85, 0.78, 0.68, 0.55]))
    m = arm_metrics(rule, orc_acc, orc_lr, shared, {"cifar10": np.array([4.0, 3.0, 2.0, 1.0])})
    assert m["regret"]["value"] == pytest.approx(np.mean([0.05, 0.02, 0.02, 0.05]))
    headroom = np.mean([0.1, 0.0, 0.1, 0.2])
    assert m["share_of_headroom"]["value"] == pytest.approx(1 - 0.035 / headroom)
    assert m["rate_distance_median"]["value"] == pytest.approx(0.5)
    assert m["tau_oracle"]["value"] == pytest.approx(1.0) and m["tau_published_cifar10"]["value"] == pytest.approx(1.0)
    assert m["best_in_oracle_top3"] and m["regret_vs_shared"]["difference"] == pytest.approx(headroom - 0.035)


def test_decisions_are_holm_corrected_and_off_grid_readings_cannot_win():
    assert ALPHA_2SE == pytest.approx(0.02275, abs=1e-5)
    d = decide_all([{"name": "a", "difference": 3.0, "se": 1.0, "off_grid": False},     # z 3: p 0.00135
                    {"name": "b", "difference": 2.1, "se": 1.0, "off_grid": False},     # z 2.1: p 0.018 > a/1? no
                    {"name": "c", "difference": 5.0, "se": 1.0, "off_grid": True}])
    by = {x["name"]: x for x in d}
    assert by["a"]["adopt"] and not by["c"]["adopt"] and "outside" in by["c"]["why_not"]
    assert by["b"]["holm_threshold"] == pytest.approx(ALPHA_2SE) and by["b"]["adopt"]   # last in line: alpha / 1
    alone = decide_all([{"name": "b", "difference": 2.1, "se": 1.0, "off_grid": False}] +
                       [{"name": f"x{i}", "difference": 0.0, "se": 1.0, "off_grid": False} for i in range(4)])
    assert not alone[0]["adopt"]    # 5 decisions: the smallest p must beat alpha / 5


# ------------------------------------------------------------------------------------------------ end to end
TOY = ["--space", "dagcell", "--candidates", "4", "--seeds", "2", "--epochs", "1", "--limit", "120",
       "--dag-width", "8", "--population", "2", "--rules", "shared", "graph", "shortest-path", "--no-progress"]


@pytest.fixture
def few_resamples(monkeypatch):
    """The toy runs' 95% intervals from 200 bootstrap resamples instead of 2,000 (the resampling is most of a toy
    run's time; bootstrap_interval itself is tested above at its default)."""
    from nni_archscale.fairness import score

    real = score.bootstrap_interval

    def bootstrap_interval(stat, n, resamples=200, **kw):
        return real(stat, n, resamples, **kw)

    monkeypatch.setattr(score, "bootstrap_interval", bootstrap_interval)


def test_fairness_command_runs_end_to_end_and_resumes(tmp_path, capsys, few_resamples):
    from nni_archscale.cli.main import main

    out = tmp_path / "fair"
    assert main(["fairness", *TOY, "--out", str(out)]) == 0
    for name in ("README.md", "summary.json", "runs.csv", "run.json", "records.jsonl", "curves.png", "regret.png",
                 "tau.png", "candidates.json", "calibration.json"):
        assert (out / name).is_file(), name
    s = json.loads((out / "summary.json").read_text())
    assert set(s["arms"]) >= {"shared@product", "graph@hindsight", "shortest-path@maxlr", "he"}
    assert s["headroom"]["value"] == pytest.approx(s["arms"]["shared@product"]["regret"]["value"])
    assert [d["name"] for d in s["decisions"]] == ["graph@product", "shortest-path@product"]
    assert all(o for o in s["oracle"]["interior"]) or s["cost"]["trainings"] > 0
    records = (out / "records.jsonl").read_text().splitlines()
    assert all(json.loads(r)["speed"] == "plain loop" for r in records)
    # the same command again is refused; with --resume it trains nothing new and writes the same summary
    capsys.readouterr()
    assert main(["fairness", *TOY, "--out", str(out)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    assert main(["fairness", *TOY, "--out", str(out), "--resume"]) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == len(records)
    again = json.loads((out / "summary.json").read_text())
    assert again["arms"] == s["arms"] and again["cost"]["trained_now"] == 0
    # with no training at all, from the folder's records, candidates and summary: the same files byte for byte
    from nni_archscale.fairness.benchmark import reanalyse

    written = {name: (out / name).read_bytes() for name in ("summary.json", "README.md", "runs.csv")}
    reanalyse(out)
    assert {name: (out / name).read_bytes() for name in written} == written
    capsys.readouterr()
    assert main(["fairness", *TOY[:-1], "--seed", "3", "--no-progress", "--out", str(out), "--resume"]) == 2
    assert "other options (seed)" in capsys.readouterr().err


def test_fairness_fast_trainer_path_on_the_cpu(tmp_path, few_resamples):
    """--augment takes the GPU trainer's path (fp32 on the CPU), as search's GPU path is exercised (on digits: the
    end-to-end test above reads the default dataset, MNIST)."""
    from nni_archscale.cli.main import main

    out = tmp_path / "fast"
    assert main(["fairness", *TOY, "--dataset", "digits", "--augment", "--out", str(out)]) == 0
    recs = [json.loads(r) for r in (out / "records.jsonl").read_text().splitlines()]
    assert recs and all("augment" in r["speed"] and "fp32" in r["speed"] for r in recs)


def test_fairness_help_says_what_it_measures_and_costs(capsys):
    from nni_archscale.cli.main import main

    with pytest.raises(SystemExit):
        main(["fairness", "--help"])
    text = capsys.readouterr().out
    assert "oracle" in text and "headroom" in text and "Cost:" in text and "--resume" in text


# ------------------------------------------------------------------------------------------------ base-rate objectives
def test_calibrate_objectives_train_at_the_search_budget_and_are_cached(tmp_path, capsys, reuse_engine_builds):
    from nni_archscale.cli.main import main
    from nni_archscale.torch_layer.rate_grid import CalibrationCache

    cache = tmp_path / "cal.json"
    common = ["calibrate", "--space", "nb201", "--dataset", "digits", "--limit", "96", "--epochs", "1",
              "--cache", str(cache), "--no-progress", "--json"]
    assert main([*common, "--objective", "accuracy"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["key"].endswith(":accuracy") and first["base_lr"] > 0
    # every rate tried is a half-octave lattice point, and the chosen one has the lowest validation error
    errors = {float(k): v for k, v in first["losses"].items()}
    assert first["base_lr"] == pytest.approx(min(errors, key=lambda r: (errors[r], r)), rel=1e-4)
    assert all(abs(2 * math.log2(r) - round(2 * math.log2(r))) < 1e-3 for r in errors)
    assert main([*common, "--objective", "accuracy"]) == 0            # cached: nothing trains again
    assert json.loads(capsys.readouterr().out)["source"] == "cache"
    assert main([*common, "--objective", "population", "--candidates", "2"]) == 0
    pop = json.loads(capsys.readouterr().out)
    assert pop["key"].endswith(":population") and pop["base_lr"] > 0
    assert CalibrationCache(cache).get(pop["key"], CalibrationCache(cache)._read()[pop["key"]]["recipe"])


@pytest.mark.nni
@pytest.mark.usefixtures("no_leaked_nnimanager", "one_thread", "reuse_engine_builds")
def test_search_calibrates_by_the_objective_it_is_given(tmp_path, capsys):
    from nni_archscale.cli.main import main

    out, cache = tmp_path / "s", tmp_path / "cal.json"
    assert main(["search", "--trials", "1", "--epochs", "1", "--limit", "64", "--width", "4", "--no-progress", "--out", str(out),
                 "--calibration-cache", str(cache), "--calibration-objective", "accuracy"]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["calibration_objective"] == "accuracy"
    assert run["calibration"]["key"].endswith(":accuracy")


# ------------------------------------------------------------------------------------------------ a rival is one object
def test_a_registered_toy_rule_reaches_the_hook_the_cli_and_the_fairness_benchmark(tmp_path, capsys, few_resamples):
    """Registering one RateRule (registry) is all a rival needs: search --rate-rule and inspect --rate-rule
    accept it, the hook applies it, and archscale fairness scores it."""
    from nni_archscale.rules import registry
    from nni_archscale.cli.main import build_parser, main
    from nni_archscale.torch_layer.dag_cell import DagCellMLP
    from nni_archscale.core.formats import from_paper_code
    from nni_archscale.nni_glue.adapters import prepare_candidate
    from nni_archscale.torch_layer.hook import HookConfig

    registry.register(registry.RateRule(
        "half-rate", "half the base rate", "eta = c / 2", "a test", rate=lambda inputs: inputs.base_lr / 2))
    try:
        parser = build_parser()
        assert parser.parse_args(["search", "--rate-rule", "half-rate"]).rate_rule == "half-rate"
        assert parser.parse_args(["inspect", "2_02_002_0002", "--rate-rule", "half-rate"]).rate_rule == "half-rate"
        model = DagCellMLP(from_paper_code("2_02_002_0002"), 12, 8, 3)
        p = prepare_candidate(model, HookConfig(base_lr=0.3, rate_rule="half-rate"), adapter="fx")
        assert p.learning_rate == pytest.approx(0.15) and all(g["lr"] == pytest.approx(0.15) for g in p.groups)
        out = tmp_path / "toy"
        args = [a if a != "shortest-path" else "half-rate" for a in TOY]
        assert main(["fairness", *args, "--dataset", "digits", "--out", str(out)]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert "half-rate@product" in s["arms"]
        assert s["rates"]["half-rate"]["product"] == [pytest.approx(r / 2) for r in s["rates"]["shared"]["product"]]
    finally:
        registry.unregister("half-rate")
