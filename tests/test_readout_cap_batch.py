"""scripts/readout_cap_batch.py: the batch-size check of readout-limited-sgd's cap."""

import json

import pytest
from loading import load_file

from nni_archscale.core.networks import CellNetwork
from nni_archscale.core.formats import from_paper_code
from nni_archscale.rules.first_step import readout_limited_rate

def load():
    return load_file("scripts/readout_cap_batch.py", "readout_cap_batch")


def test_a_run_that_follows_the_linear_cap_scores_zero_for_it_only(tmp_path):
    archs = ["2_02_002_0002", "1_12_112_1211", "2_12_112_1112"]  # a chain, a skip-heavy cell, a mixed one
    base, batch = 0.3, 64
    measured = [readout_limited_rate(base, CellNetwork(from_paper_code(a), 196, 256, 10), "paper", batch)
                for a in archs]
    (tmp_path / "summary.json").write_text(json.dumps({
        "config": {"width": 256, "batch_size": batch, "data": "mnist14"},
        "pairs": {"paper/sgd": {"base_max_lr": base, "measured": measured},
                  "paper/adam": {"base_max_lr": 0.003, "measured": [0.003] * 3}}}))
    (tmp_path / "predictions.csv").write_text("arch,kernel_size,init,optimizer,rule,predicted,measured\n" + "".join(
        f"{a},1,paper,sgd,standard,{base},{m}\n" for a, m in zip(archs, measured)))
    errs = load().errors(tmp_path)
    assert set(errs) == {"paper/sgd"}  # Adam pairs are not scored
    assert errs["paper/sgd"]["cap linear in B"] == pytest.approx(0, abs=1e-12)
    # at batch 64 the batch-32 cap is half as high: it binds on the skip-heavy cell and misses it
    assert errs["paper/sgd"]["cap at batch 32"] > 0.1
    assert errs["paper/sgd"]["second-step-sgd"] >= 0
