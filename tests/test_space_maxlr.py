"""The space-lr experiment's scoring (leave-one-out errors, the pre-registered decision) and its bookkeeping."""

import json
import math

import numpy as np
import pytest

from nni_archscale.errors import ArchScaleError
from nni_archscale.experiments.space_maxlr import analyse, combine, loo_errors, report


def test_loo_errors_fit_the_constant_on_the_other_samples():
    meas = np.log2([0.1, 0.2, 0.4, 0.8])
    exact = meas - 3.0  # right up to a constant: no error at all
    assert np.allclose(loo_errors(exact, meas), 0.0)
    const = np.zeros(4)  # one shared rate: median of the others' logs
    errs = loo_errors(const, meas)
    for i in range(4):
        assert errs[i] == pytest.approx(abs(np.median(np.delete(meas, i)) - meas[i]))


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
    assert entry["default"] == "measured"  # tracks the truth: a clear win over one shared rate
    assert entry["decisions"]["measured"]["replaces_shared"]
    assert not entry["decisions"]["paper-whole"]["replaces_shared"]  # noise: no win
    assert entry["predictors"]["segmented"]["mean_abs_octaves"] == pytest.approx(
        entry["predictors"]["shared"]["mean_abs_octaves"])  # a constant predictor is one shared rate
    assert entry["noise"] == {"pairs": 1, "mean_abs_octaves_between_inits": pytest.approx(1.0)}
    json.dumps(s)  # everything JSON-able (numpy booleans included)
    text = report(s)
    assert "darts/sgd: default `measured`" in text


def test_no_winner_keeps_one_shared_rate():
    recs = _records()
    for r in recs:
        r["predictions"]["measured"] = 2 ** np.random.default_rng(r["seed"]).normal(0, 2)
    s = analyse({"spaces": ("darts",), "optimizers": ("sgd",)}, recs)
    assert s["results"]["darts/sgd"]["default"] == "shared"


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
