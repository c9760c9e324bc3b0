"""The space-lr experiment's scoring (leave-one-out errors, the pre-registered decision) and its bookkeeping."""

import json
import math

import numpy as np
import pytest

from nni_archscale.errors import ArchScaleError
from nni_archscale.experiments.decision import decide
from nni_archscale.rules.registry import MEASURED, SEGMENTED, SHARED
from nni_archscale.experiments.space_maxlr import (PREREGISTERED, analyse, combine, in_sample_errors, loo_errors,
                                                   loo_offsets, report, rescore)


def test_loo_errors_fit_the_constant_on_the_other_samples():
    meas = np.log2([0.1, 0.2, 0.4, 0.8])
    exact = meas - 3.0  # right up to a constant: no error at all
    for constant in ("loo-mean", "loo-median"):
        assert np.allclose(loo_errors(exact, meas, constant), 0.0)
    const = np.zeros(4)  # one shared rate: the mean (default) or the median of the others' logs
    errs = loo_errors(const, meas)
    med = loo_errors(const, meas, "loo-median")
    for i in range(4):
        assert errs[i] == pytest.approx(abs(np.mean(np.delete(meas, i)) - meas[i]))
        assert med[i] == pytest.approx(abs(np.median(np.delete(meas, i)) - meas[i]))
    assert loo_offsets(const, meas, "loo-median") == pytest.approx([np.median(np.delete(meas, i)) for i in range(4)])
    with pytest.raises(ArchScaleError, match="unknown constant"):
        loo_errors(const, meas, "median")


def _quantised():
    """Twenty maximal rates on a quarter-octave grid, half at 2^-5 and half at 2^-4.75; one shared rate (a
    constant prediction) and a predictor that is that constant plus quarter-octave noise unrelated to the rates
    (+0.25 on two samples of each level)."""
    meas = np.array([-5.0] * 10 + [-4.75] * 10)
    noisy = np.zeros(20)
    noisy[[0, 1, 10, 11]] = 0.25
    return meas, np.zeros(20), noisy


def test_the_loo_median_manufactures_a_win_on_quantised_rates_and_the_loo_mean_does_not():
    """Issue 23.5's case in miniature. Leaving one sample out moves the shared arm's median a quarter octave away
    from it (ten values on each side of the median), while the noisy predictor's residuals tie at the median (ten
    of twenty at -5), which stays put: with the median, noise "beats" one shared rate by far more than twice the
    standard error. In-sample the two are level, and with the mean the noise loses, as it should."""
    meas, shared, noisy = _quantised()
    med_shared, med_noisy = loo_errors(shared, meas, "loo-median"), loo_errors(noisy, meas, "loo-median")
    assert med_shared == pytest.approx(np.full(20, 0.25))  # every sample scored against the far level
    assert med_noisy.mean() == pytest.approx(0.125)
    manufactured = decide(list(med_shared), list(med_noisy))
    assert manufactured.replace and manufactured.mean_difference == pytest.approx(0.125)
    assert (in_sample_errors(shared, meas, "loo-median").mean()
            == pytest.approx(in_sample_errors(noisy, meas, "loo-median").mean()))  # no difference in-sample
    honest = decide(list(loo_errors(shared, meas)), list(loo_errors(noisy, meas)))
    assert not honest.replace and honest.mean_difference < 0  # the noise is worse than one rate, as it is
    assert abs(honest.mean_difference) < manufactured.mean_difference / 5


def _records(n=12, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        true = rng.normal(-3, 1)  # log2 maximal rate
        out.append({"space": "darts", "seed": i + 1, "init_seed": i + 1, "optimizer": "sgd",
                    "max_lr": 2 ** true,
                    "predictions": {"shared": 1.0, "measured": 2 ** (true + 5 + rng.normal(0, 0.1)),
                                    "segmented": 0.3, "paper-whole": 2 ** rng.normal(-20, 3)}})
    out.append({**out[0], "init_seed": 10_001, "max_lr": out[0]["max_lr"] * 2})  # the noise repeat
    return out


def test_analyse_decides_by_the_paired_rule():
    s = analyse({"spaces": ("darts",), "optimizers": ("sgd",), "samples": 12, "batch_size": 64}, _records())
    entry = s["results"]["darts/sgd"]
    assert entry["samples"] == 12  # the noise repeat is not a sample
    assert entry["default"] == MEASURED.name  # tracks the truth: a clear win over one shared rate
    assert entry["decisions"]["measured"]["replaces_shared"]
    assert not entry["decisions"]["paper-whole"]["replaces_shared"]  # noise: no win
    assert entry["predictors"]["segmented"]["mean_abs_octaves"] == pytest.approx(
        entry["predictors"]["shared"]["mean_abs_octaves"])  # a constant predictor is one shared rate
    assert entry["noise"] == {"pairs": 1, "mean_abs_octaves_between_inits": pytest.approx(1.0)}
    json.dumps(s)  # everything JSON-able (numpy booleans included)
    text = report(s)
    assert "darts/sgd: default `measured`" in text


def test_analyse_records_its_scoring_and_holm_corrects_across_every_decision():
    recs = _records()
    cfg = {"spaces": ("darts",), "optimizers": ("sgd",), "samples": 12, "batch_size": 64}
    s = analyse(cfg, recs)
    assert s["scoring"] == {"constant": "loo-mean", "holm": True, "alpha": pytest.approx(0.02275, abs=1e-5),
                            "decisions": 3}
    d = s["results"]["darts/sgd"]["decisions"]["measured"]
    assert d["holm_p"] >= d["p_one_sided"] and "Holm-adjusted over 3 decisions" in d["text"]
    pre = analyse(cfg, recs, **PREREGISTERED)
    assert pre["scoring"]["constant"] == "loo-median" and pre["scoring"]["holm"] is False
    assert pre["results"]["darts/sgd"]["decisions"]["measured"]["text"].endswith(
        "(a change needs more than twice the standard error)")
    assert "Decisions (the pre-registered rule" in report(pre)
    assert "Holm-corrected across all 3 decisions" in report(s)


def test_the_quantised_case_through_analyse():
    """The same miniature through the experiment's scoring: the pre-registered scoring makes the noisy predictor
    the default, the corrected one keeps one shared rate."""
    meas, _, noisy = _quantised()
    recs = [{"space": "darts", "seed": i + 1, "init_seed": i + 1, "optimizer": "sgd", "max_lr": 2 ** m,
             "predictions": {"shared": 1.0, "segmented": 2 ** n}} for i, (m, n) in enumerate(zip(meas, noisy))]
    cfg = {"spaces": ("darts",), "optimizers": ("sgd",)}
    assert analyse(cfg, recs, **PREREGISTERED)["results"]["darts/sgd"]["default"] == SEGMENTED.name
    assert analyse(cfg, recs)["results"]["darts/sgd"]["default"] == SHARED.name


def test_rescore_shows_both_scorings_and_keeps_the_hand_written_reading(tmp_path):
    recs = _records()
    out = tmp_path / "run"
    out.mkdir()
    (out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    cfg = {"spaces": ["darts"], "optimizers": ["sgd"], "samples": 12, "batch_size": 64}
    pre = analyse(cfg, recs, **PREREGISTERED)
    (out / "summary.json").write_text(json.dumps(pre))
    (out / "README.md").write_text(report(pre) + "\n## Reading (written after the runs)\n\n- by hand\n")
    s = rescore(out)
    assert s["scoring"]["constant"] == "loo-mean" and s["preregistered"]["scoring"]["constant"] == "loo-median"
    assert s["preregistered"]["results"] == json.loads(json.dumps(pre["results"]))  # the old figures, unchanged
    text = (out / "README.md").read_text()
    assert text.index("## Re-scored (issue 23.5)") < text.index("## As pre-registered") < text.index("- by hand")
    assert "**Which decisions survive:** `measured` on darts/sgd" in text
    assert json.loads((out / "summary.json").read_text())["preregistered"]["scoring"]["holm"] is False
    per_space = (out / "darts.md").read_text()
    assert "corrected scoring" in per_space and "pre-registered scoring" in per_space
    assert per_space.count("| sgd |") == 24  # every sample under each scoring
    assert not (out / "darts.png").exists()  # plots are left as they are


def test_no_winner_keeps_one_shared_rate():
    recs = _records()
    for r in recs:
        r["predictions"]["measured"] = 2 ** np.random.default_rng(r["seed"]).normal(0, 2)
    s = analyse({"spaces": ("darts",), "optimizers": ("sgd",)}, recs)
    assert s["results"]["darts/sgd"]["default"] == SHARED.name


def test_combine_refuses_an_unfinished_part(tmp_path):
    part = tmp_path / "a"
    part.mkdir()
    (part / "run.json").write_text(json.dumps({"finished": None, "config": {"spaces": ["darts"]}}))
    with pytest.raises(ArchScaleError, match="did not finish"):
        combine([part], tmp_path / "out")
    with pytest.raises(ArchScaleError, match="no run.json"):
        combine([tmp_path / "missing"], tmp_path / "out")


def test_combine_scores_parts_together(tmp_path):
    recs = _records()
    parts = []
    for name, chunk in (("a", recs[:6]), ("b", recs[6:])):
        part = tmp_path / name
        part.mkdir()
        (part / "run.json").write_text(json.dumps({
            "finished": "2026-12-01T05:00:00+00:00", "commit": "f" * 40, "clean": True,
            "started": "2026-12-01T04:00:00+00:00",
            "config": {"spaces": ["darts"], "optimizers": ["sgd"], "samples": 6, "batch_size": 64}}))
        (part / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in chunk))
        parts.append(part)
    s = combine(parts, tmp_path / "out")
    assert s["results"]["darts/sgd"]["samples"] == 12
    assert (tmp_path / "out" / "README.md").read_text().count("commit ffff") == 2
    assert (tmp_path / "out" / "measured-vs-predicted.png").stat().st_size > 1000
    per_space = (tmp_path / "out" / "darts.md").read_text()  # a report per space, with its plot and every sample
    assert "NNI's darts space" in per_space and per_space.count("| sgd |") == 12
    assert (tmp_path / "out" / "darts.png").stat().st_size > 1000
    assert math.isfinite(s["results"]["darts/sgd"]["predictors"]["measured"]["mean_abs_octaves"])


def test_a_resumed_run_measures_only_what_its_records_lack(tmp_path, capsys):
    """space-lr on the engine (torch_layer/sweep.py): records.jsonl grows as measurements finish; --resume keeps
    them and measures the rest, to the same records (their timings aside)."""
    from nni_archscale.cli.main import main

    out = tmp_path / "space"
    args = ["experiment", "space-lr", "--spaces", "nb201", "--samples", "3", "--optimizers", "sgd",
            "--noise-samples", "0", "--limit", "96", "--out", str(out)]
    assert main(args) == 0
    full = (out / "records.jsonl").read_text().splitlines()
    assert len(full) == 3
    (out / "records.jsonl").write_text("\n".join(full[:2]) + "\n")
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    measured = [line for line in capsys.readouterr().out.splitlines() if line.startswith("space-lr: nb201 #")]
    assert len(measured) == 1 and "#3 (seed 3, init 3)" in measured[0]

    def untimed(lines):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]

    assert untimed((out / "records.jsonl").read_text().splitlines()) == untimed(full)
