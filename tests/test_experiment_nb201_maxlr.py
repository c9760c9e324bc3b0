"""NAS-Bench-201 maximal rates: the predictors' arithmetic, and a CI-sized run end to end."""

import json
import math

import pytest

from nni_archscale.cli import main
from nni_archscale.experiments.nb201_maxlr import (
    BASE_ARCH, Config, analyse, one_cell_sum, predict, whole_network_sum,
)

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"

#: a measurement builds each cell once per rate after seeding torch: reuse_seeded_nb201_builds (conftest) copies the
#: first build instead of freezing NNI's space again (the same network and RNG state)
pytestmark = pytest.mark.usefixtures("reuse_seeded_nb201_builds")


def test_path_sums_of_the_two_readings():
    assert one_cell_sum(BASE_ARCH) == 1 and one_cell_sum(ALL_CONV) == 126
    # whole network, N = 1: stem, cell, reduction (2 paths), cell, reduction, cell, classifier
    assert whole_network_sum(BASE_ARCH, 1) > one_cell_sum(BASE_ARCH)
    assert predict("one-cell", ALL_CONV, 0.46, 1) == pytest.approx(0.46 / math.sqrt(126))
    assert predict("constant", ALL_CONV, 0.46, 1) == 0.46
    assert predict("whole-network", ALL_CONV, 0.46, 1) < predict("one-cell", ALL_CONV, 0.46, 1)


def test_analysis_scores_an_exact_predictor_at_zero():
    archs = [ALL_CONV, "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
             "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"]
    rates = {a: predict("one-cell", a, 0.3, 1) for a in archs}
    rates[BASE_ARCH] = 0.3
    res = analyse(Config(), archs, {"paper": rates})["paper"]
    assert res["one-cell"]["mean_abs_octaves"] == pytest.approx(0.0, abs=1e-12)
    assert res["one-cell"]["pearson_r_log"] == pytest.approx(1.0)
    assert res["constant"]["mean_abs_octaves"] > 0


def test_cli_runs_a_tiny_measurement(tmp_path, capsys):
    out = tmp_path / "lr"
    assert main(["experiment", "nb201-lr", "--cells", "2", "--inits", "paper", "--points", "3", "--limit", "96",
                 "--width", "4", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["measured"]["paper"]) == {BASE_ARCH, *summary["cells"]} and len(summary["cells"]) == 2
    assert set(summary["results"]["paper"]) == {"one-cell", "whole-network", "constant"}
    assert "one cell's paths or the whole network's" in capsys.readouterr().out
    assert main(["experiment", "nb201-lr", "--inits", "mup"]) == 2
