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
