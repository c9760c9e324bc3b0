"""scripts/divergence_margin.py: the gap between a network's best rate and the first rate that diverged."""

import math

import pytest
from loading import load_file

def load():
    return load_file("scripts/divergence_margin.py", "divergence_margin")


def test_gap_is_octaves_from_the_best_rate_to_the_first_divergence(tmp_path):
    rows = ["arch,kernel_size,init,optimizer,seed,rate,final_loss,chosen"]
    # seed 0: best at 0.25, diverges from 1.0 (2 octaves); seed 1: best at 0.5, diverges from 1.0 (1 octave)
    for seed, losses in ((0, [0.9, 0.5, 0.7, math.inf, math.inf]), (1, [0.9, 0.8, 0.4, math.inf, math.inf])):
        rows += [f"2_02,1,paper,sgd,{seed},{r},{loss},0" for r, loss in zip((0.125, 0.25, 0.5, 1.0, 2.0), losses)]
    rows += [f"2_02,1,paper,adam,0,{r},{loss},0" for r, loss in ((0.001, 0.5), (0.002, 0.4))]  # never diverges
    (tmp_path / "runs.csv").write_text("\n".join(rows) + "\n")
    gaps = load().margins(tmp_path)
    assert gaps["paper/sgd"]["2_02"] == 1.5
    assert math.isnan(gaps["paper/adam"]["2_02"])


def test_divergence_errors_are_zero_for_the_rule_the_divergence_rates_follow(tmp_path):
    import json

    from nni_archscale import from_paper_code
    from nni_archscale.core.networks import CellNetwork
    from nni_archscale.experiments.rule_variants import rule_multiplier

    archs = ["0_00_000_2000", "2_02_002_0002", "2_12_112_1112"]
    rows = ["arch,kernel_size,init,optimizer,seed,rate,final_loss,chosen"]
    for arch in archs:
        net = CellNetwork(from_paper_code(arch), 196, 64, 10)
        diverges = 2.0 * rule_multiplier("second-step-sgd", net, "exact", "sgd")
        for seed in (0, 1):
            rows += [f"{arch},1,exact,sgd,{seed},{diverges / 4},0.5,1", f"{arch},1,exact,sgd,{seed},{diverges},inf,0"]
    (tmp_path / "runs.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "summary.json").write_text(json.dumps({"config": {"width": 64, "data": "mnist14"}, "pairs": {}}))
    errors = load().divergence_errors(tmp_path, "exact/sgd")
    assert errors["second-step-sgd"] == pytest.approx(0.0, abs=1e-9)
    assert errors["feature-sgd"] > 0.05
    assert load().margins(tmp_path)["exact/sgd"]["2_02_002_0002"] == 2.0
