"""scripts/pooled_errors.py: a rule's per-cell errors pooled over lr-prediction runs."""

import math
from pathlib import Path

import pytest
from loading import load_file

def load():
    return load_file("scripts/pooled_errors.py", "pooled_errors")


def write_run(path: Path, rows: list[tuple[str, str, str, str, float, float]]) -> Path:
    path.mkdir()
    lines = ["arch,kernel_size,init,optimizer,rule,predicted,measured"]
    lines += [f"{a},1,{i},{o},{r},{p},{m}" for a, i, o, r, p, m in rows]
    (path / "predictions.csv").write_text("\n".join(lines) + "\n")
    return path


def test_errors_are_pooled_per_network_over_runs(tmp_path):
    one = write_run(tmp_path / "one", [("a", "paper", "sgd", "second-step-sgd", 0.5, 0.25),   # +1 octave
                                       ("b", "paper", "sgd", "second-step-sgd", 0.25, 1.0),   # -2 octaves
                                       ("a", "paper", "sgd", "standard", 0.25, 0.25),
                                       ("a", "paper", "adam", "second-step-sgd", 9.0, 1.0)])  # another pair
    two = write_run(tmp_path / "two", [("c", "paper", "sgd", "second-step-sgd", 1.0, 1.0)])   # exact
    s = load().pooled([one, two], "paper/sgd", "second-step-sgd")
    assert s["cells"] == 3 and s["mean_abs"] == pytest.approx(1.0) and s["signed"] == pytest.approx(-1 / 3)
    assert s["se"] == pytest.approx(1.0 / math.sqrt(3))  # |errors| 1, 2, 0: sample sd 1
    assert load().pooled([two], "paper/adam", "second-step-sgd") == {"cells": 0}


def test_cli_uses_the_projects_default_and_refuses_folders_without_predictions(tmp_path, capsys):
    run = write_run(tmp_path / "run", [("a", "paper", "adam", "feature-sgd", 0.5, 0.25),
                                       ("b", "paper", "adam", "feature-sgd", 0.5, 0.5),
                                       ("c", "paper", "adam", "feature-sgd", 1.0, 0.5)])
    assert load().main(["--pair", "paper/adam", str(run)]) == 0
    out = capsys.readouterr().out
    assert "paper/adam feature-sgd" in out and "0.67 ±" in out and "3 networks" in out
    assert "standard: no predictions" in out
    with pytest.raises(SystemExit):
        load().main(["--pair", "exact/adam", str(tmp_path)])
    assert "no predictions.csv in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load().main(["--pair", "muP/adam", str(run)])
    assert "--pair 'muP/adam': unknown init" in capsys.readouterr().err


def test_decide_pairs_the_rule_with_one_shared_rate_network_by_network(tmp_path, capsys):
    rows = []
    for i, (ours, shared) in enumerate([(1.0, 2.0), (1.1, 2.0), (0.9, 2.1), (1.0, 1.9)]):
        rows.append((f"n{i}", "paper", "sgd", "readout-limited-sgd", 2 ** ours, 1.0))  # |error| = ours octaves
        rows.append((f"n{i}", "paper", "sgd", "standard", 2 ** shared, 1.0))
    run = write_run(tmp_path / "run", rows)
    assert load().main(["--pair", "paper/sgd", "--rule", "readout-limited-sgd", "--decide", str(run)]) == 0
    out = capsys.readouterr().out
    assert "decision: readout-limited-sgd replaces standard" in out and "over 4 cells" in out
