"""scripts/score_variants.py scores variants exactly as the experiment scores rules: anchored on the base rate."""

import json

import pytest
from loading import load_file



@pytest.fixture(scope="module")
def variants():
    return load_file("scripts/score_variants.py", "rule_variants")


def test_a_run_measured_exactly_as_a_variant_predicts_scores_zero_for_it(tmp_path, variants):
    archs = ["2_02_002_0002", "2_12_112_1112", "1_21_011_2102"]
    name, base_rate = "sqrt-centered-adam x depth", 0.004
    base = variants.variant(name, variants.BASE_CELL_CODE, "paper", "adam", 64, 196)
    measured = [base_rate * variants.variant(name, a, "paper", "adam", 64, 196) / base for a in archs]
    summary = {"config": {"family": "mlp-topology", "data": "mnist14", "width": 64},
               "pairs": {"paper/adam": {"base_max_lr": base_rate, "measured": measured}}}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    rows = ["arch,kernel_size,init,optimizer,rule,predicted,measured"]
    rows += [f"{a},1,paper,adam,standard,{base_rate},{m}" for a, m in zip(archs, measured)]
    (tmp_path / "predictions.csv").write_text("\n".join(rows) + "\n")
    scores = {v: (err, signed) for _, v, err, signed in variants.score(tmp_path)}
    assert scores[name] == pytest.approx((0.0, 0.0), abs=1e-9)
    assert set(scores) == set(variants.VARIANTS)
    assert scores["depth factor alone"][0] > 0.01  # the others do not fit by construction
