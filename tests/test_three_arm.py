"""The three-arm NAS test's scoring (experiments/three_arm.py) on a synthetic runs.csv with known answers."""

import csv
import json
from pathlib import Path

import pytest

from nni_archscale.experiments.three_arm import score, verdict, write_report

FIELDS = ["cell", "arch", "stratum", "published", "recipe", "seed", "status", "accuracy", "learning_rate",
          "train_loss", "epochs", "seconds", "message"]


def _write(path, acc):
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for (cell, recipe, seed), a in acc.items():
            w.writerow({"cell": cell, "arch": f"a{cell}", "stratum": 0, "published": 90 + cell, "recipe": recipe,
                        "seed": seed, "status": "ok", "accuracy": a, "learning_rate": 0.1, "train_loss": 1.0,
                        "epochs": 2, "seconds": 1.0, "message": ""})


def test_scores_gains_taus_and_noise(tmp_path):
    acc = {}
    for cell in range(6):
        for seed in range(3):
            acc[(cell, "benchmark", seed)] = 50 + cell + (seed % 2) * 0.1  # ranks like the published table
            acc[(cell, "shared", seed)] = 60 - cell  # the reverse ranking
            acc[(cell, "archscale", seed)] = 62 - cell + [0.5, -0.5, 0.0][seed]  # shared + 2 on every cell
    _write(tmp_path / "runs.csv", acc)
    s = score(tmp_path / "runs.csv")
    assert s["cells"] == 6 and s["seeds"] == 3
    g = s["gains"]["archscale - shared"]
    assert g["mean"] == pytest.approx(2.0) and g["better_cells"] == 6
    assert g["ci95"][0] == pytest.approx(2.0) and g["ci95"][1] == pytest.approx(2.0)  # no spread over cells
    assert s["tau_published"]["benchmark"] == pytest.approx(1.0)
    assert s["tau_published"]["shared"] == pytest.approx(-1.0)
    assert s["seed_tau"]["archscale"] == pytest.approx(1.0)
    assert verdict(s).startswith("archscale beats one tuned shared rate")
    text = write_report(tmp_path, s, "Run: test")
    assert "archscale beats" in text and json.loads((tmp_path / "three_arm.json").read_text())["cells"] == 6


def test_an_interval_across_zero_is_no_clear_difference(tmp_path):
    acc = {}
    for cell in range(5):
        for seed in range(2):
            acc[(cell, "shared", seed)] = 50.0
            acc[(cell, "archscale", seed)] = 50.0 + (1 if cell % 2 else -1) * (cell + 1)
    _write(tmp_path / "runs.csv", acc)
    s = score(tmp_path / "runs.csv")
    assert s["arms"] == ["shared", "archscale"]
    assert verdict(s).startswith("no clear difference")


def test_a_missing_run_is_a_clear_error(tmp_path):
    from nni_archscale.errors import ArchScaleError

    acc = {(c, a, s): 50.0 for c in range(3) for a in ("shared", "archscale") for s in range(2)}
    del acc[(1, "archscale", 1)]
    _write(tmp_path / "runs.csv", acc)
    with pytest.raises(ArchScaleError, match=r"lacks 1 \(cell, arm, seed\) run"):
        score(tmp_path / "runs.csv")


def test_rewriting_the_report_keeps_its_hand_written_reading(tmp_path):
    from nni_archscale.experiments.three_arm import HAND_WRITTEN, write_report

    stats = json.loads((Path(__file__).resolve().parent.parent / "reports" / "nb201-3arm" / "three_arm.json")
                       .read_text())
    generated = write_report(tmp_path, stats, "Run: `x`")
    reading = f"{HAND_WRITTEN}\n\n- what the run shows, written by hand\n"
    (tmp_path / "THREE-ARM.md").write_text(generated + "\n" + reading)
    assert write_report(tmp_path, stats, "Run: `x`") == generated
    assert (tmp_path / "THREE-ARM.md").read_text() == generated + "\n" + reading
