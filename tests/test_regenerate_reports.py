"""Committed reports regenerate byte-identically from their records (issue 24's acceptance), checked on one
report of each experiment that re-analyses (lr-prediction, nb201, nb201-lr, space-lr, fairness); the full check
over every folder is ``python scripts/regenerate_reports.py`` (a few minutes)."""

import shutil
from pathlib import Path

import pytest

from nni_archscale.experiments.regenerate import check_folder, check_reports, kind_of

REPORTS = Path(__file__).resolve().parent.parent / "reports"

#: (folder, the files of it that regenerate byte for byte from its records). The other files of these folders
#: differ for reasons the full check prints: a docstring or rule text the report quotes was reworded later.
REPRESENTATIVE = {
    "mup/depth": {"README.md", "summary.json", "runs.csv", "predictions.csv"},  # lr-prediction
    "nb201-exact": {"README.md", "summary.json", "runs.csv", "cells.csv"},  # nb201
    "nb201-maxlr": {"summary.json"},  # nb201-lr (README.md quotes a module path the relayout renamed)
    "spaces-maxlr": {"summary.json"},  # space-lr, re-scored (README.md: the same)
    "nb201-3arm": {"THREE-ARM.md", "three_arm.json", "runs.csv", "summary.json"},  # the three-arm test
}
#: fairness (its re-analysis draws bootstrap intervals of Kendall taus: half a minute, so a slow test)
SLOW = {"fairness/nb201": {"README.md", "summary.json", "runs.csv"},
        "fairness/darts": {"README.md", "summary.json", "runs.csv"}}


@pytest.fixture
def no_plots(monkeypatch):
    """The plots are redrawn by a regeneration but never compared (their bytes vary with matplotlib): skip the
    drawing here (seconds each)."""
    from nni_archscale.experiments import lr_prediction, nb201
    from nni_archscale.fairness import report

    monkeypatch.setattr(lr_prediction, "_plot", lambda out_dir, summary: None)
    monkeypatch.setattr(nb201, "plot", lambda out_dir, summary: None)
    monkeypatch.setattr(report, "plots", lambda out, summary, curves: None)


@pytest.mark.parametrize("folder", [*sorted(REPRESENTATIVE), *(pytest.param(f, marks=pytest.mark.slow) for f in SLOW)])
def test_a_report_of_each_experiment_regenerates_byte_identically(folder, no_plots):
    checks = {c.file: c for c in check_folder(REPORTS / folder, REPORTS)}
    for name in {**REPRESENTATIVE, **SLOW}[folder]:
        assert checks[name].status == "identical", checks[name].line()


def test_a_changed_report_is_found_with_its_first_differing_line(tmp_path, no_plots):
    root = tmp_path / "reports"
    shutil.copytree(REPORTS / "mup" / "depth", root / "depth")
    readme = root / "depth" / "README.md"
    lines = readme.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| `mup` |"))
    lines[at] = lines[at].replace("| `mup` |", "| `edited by hand` |")
    readme.write_text("\n".join(lines) + "\n")
    checks = {c.file: c for c in check_reports(root)}
    assert checks["summary.json"].status == "identical" and checks["runs.csv"].status == "identical"
    assert checks["README.md"].status == "differs"
    assert f"line {at + 1}," in checks["README.md"].detail and "edited by hand" in checks["README.md"].detail


def test_a_folder_without_records_is_named_not_regenerable(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "summary.json").write_text('{"config": {}}')
    kind, why = kind_of(tmp_path / "notes")
    assert kind is None and "no re-analysis" in why
    [check] = check_reports(tmp_path)
    assert check.status == "not regenerable" and check.report == "notes"


def test_a_report_the_re_analysis_leaves_as_copied_is_not_counted_identical(tmp_path, monkeypatch):
    """An output that is also an input (a README with a hand-written part) counts only when it is rewritten."""
    from nni_archscale.experiments import space_maxlr

    shutil.copytree(REPORTS / "spaces-maxlr" / "part-a", tmp_path / "part-a")
    monkeypatch.setattr(space_maxlr, "reanalyse", lambda folder: None)
    checks = {c.file: c for c in check_reports(tmp_path)}
    assert checks["README.md"].status == checks["summary.json"].status == "not regenerable"


def test_every_known_difference_names_its_cause_and_an_existing_file():
    from nni_archscale.experiments.regenerate import read_baseline

    baseline = read_baseline(REPORTS)
    assert baseline, "reports/regeneration-baseline.json is missing"
    for key, entry in baseline.items():
        assert (REPORTS / key).is_file(), key
        assert entry["detail"] and len(entry["why"]) > 40, key  # the first differing line and a real reason


def test_the_baseline_fails_a_new_difference_a_changed_one_and_a_fixed_one(tmp_path, no_plots):
    from nni_archscale.experiments.regenerate import baseline_problems, updated_baseline

    root = tmp_path / "reports"
    shutil.copytree(REPORTS / "mup" / "depth", root / "depth")
    clean = check_reports(root)
    assert baseline_problems(clean, {}) == []  # every file identical: nothing to record
    readme = root / "depth" / "README.md"
    readme.write_text(readme.read_text().replace("| `mup` |", "| `edited by hand` |", 1))
    edited = check_reports(root)
    [new] = baseline_problems(edited, {})
    assert new.startswith("depth/README.md: differs, which the baseline does not record")
    recorded = {k: {**v, "why": "an edit by hand, for this test"} for k, v in updated_baseline(edited, {}).items()}
    assert baseline_problems(edited, recorded) == []
    [changed] = baseline_problems(edited, {k: {**v, "detail": "line 1"} for k, v in recorded.items()})
    assert "otherwise than the baseline records" in changed
    [fixed] = baseline_problems(clean, recorded)
    assert fixed == "depth/README.md: regenerates identically now; remove its entry from reports/regeneration-baseline.json"


@pytest.mark.slow
def test_every_report_regenerates_as_the_baseline_records():
    """The full check (a few minutes): every committed report regenerates byte for byte, but for the differences
    reports/regeneration-baseline.json records with their causes."""
    from nni_archscale.experiments.regenerate import baseline_problems, read_baseline

    assert baseline_problems(check_reports(REPORTS), read_baseline(REPORTS)) == []
