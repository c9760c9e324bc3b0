"""Do the committed reports regenerate from their records? (issue 24: "the committed reports regenerate
byte-identically").

For every report folder of ``reports/`` whose experiment can re-analyse from what the folder stores, copy the
folder's inputs (its records: ``runs.csv``, ``records.jsonl``, the measured curves of ``summary.json``) into a
temporary folder, write the report there from those inputs alone with the experiment's own re-analysis
(:func:`.lr_prediction.reanalyse`, :func:`.nb201.reanalyse`, :func:`.nb201_maxlr.reanalyse`,
:func:`.space_maxlr.reanalyse`, :func:`nni_archscale.fairness.benchmark.reanalyse`), and compare every text file
it writes with the committed one byte for byte. PNGs are not compared: matplotlib's output depends on its version
and fonts, so a plot is redrawn but not held to its bytes.

Every file is one :class:`Check`: ``identical``, ``differs`` (with the first differing line of each side) or
``not regenerable`` (with why).

Some committed files cannot regenerate byte for byte without rewriting the evidence they hold: a report that quotes
a rule description or a module path reworded since it ran, a section written by hand after the run, figures a
run wrote from exact rates that its ``runs.csv`` keeps to 6 digits. Those are recorded, each with its first
differing line and its cause, in ``reports/regeneration-baseline.json`` (:data:`BASELINE`), and never edited to
match: :func:`baseline_problems` fails on any other difference, on a recorded one that changed, and on a recorded
one that has gone (the baseline only shrinks).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

#: files a regeneration writes that are not held to their bytes (see the module docstring)
UNCOMPARED = (".png",)
#: the known differences, under the reports folder (see the module docstring)
BASELINE = "regeneration-baseline.json"


@dataclass(frozen=True)
class Check:
    """One committed file against its regenerated copy."""

    report: str
    file: str
    status: str  # "identical", "differs", "not regenerable"
    detail: str = ""

    def line(self) -> str:
        where = f"{self.report}/{self.file}" if self.file else self.report
        return f"{where}: {self.status}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Kind:
    """How one experiment's report folder regenerates: which files are its inputs (copied), which it writes
    (compared), and the re-analysis that writes them into a folder holding the inputs."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    regenerate: Callable[[Path], None]


def _lr_prediction(folder: Path) -> None:
    from .lr_prediction import reanalyse
    from .lr_report import write_lr_report

    write_lr_report(folder, reanalyse(folder))


def _nb201(folder: Path) -> None:
    from .experiment_cmd import _three_arm
    from .nb201 import reanalyse
    from .nb201_report import write_nb201_report

    summary = reanalyse(folder)
    write_nb201_report(folder, summary)
    _three_arm(folder, summary, quiet=True)


def _nb201_lr(folder: Path) -> None:
    from .nb201_maxlr import reanalyse

    reanalyse(folder)


def _space_lr(folder: Path) -> None:
    from .space_maxlr import reanalyse

    reanalyse(folder)


def _fairness(folder: Path) -> None:
    from ..fairness.benchmark import reanalyse

    reanalyse(folder)


KINDS = {
    "lr-prediction": Kind("lr-prediction", ("runs.csv", "summary.json"),
                          ("README.md", "summary.json", "runs.csv", "predictions.csv"), _lr_prediction),
    "nb201": Kind("nb201", ("runs.csv", "summary.json", "calibration-paper.json", "calibration-release.json",
                            "calibration-standard.json", "THREE-ARM.md"),
                  ("README.md", "summary.json", "runs.csv", "cells.csv", "THREE-ARM.md", "three_arm.json"), _nb201),
    "nb201-lr": Kind("nb201-lr", ("summary.json",), ("README.md", "summary.json"), _nb201_lr),
    "space-lr": Kind("space-lr", ("records.jsonl", "summary.json", "README.md", "parts.json"),
                     ("README.md", "summary.json", "nb201.md", "darts.md", "mobilenetv3.md"),
                     _space_lr),
    "fairness": Kind("fairness", ("records.jsonl", "summary.json", "candidates.json"),
                     ("README.md", "summary.json", "runs.csv"), _fairness),
}


def kind_of(folder: Path) -> tuple[Kind | None, str]:
    """Which experiment wrote ``folder`` (from its files and its ``summary.json``), or None and why not."""
    summary_path = folder / "summary.json"
    if not summary_path.is_file():
        return None, "no summary.json: not an experiment's output folder"
    summary = json.loads(summary_path.read_text())
    config = summary.get("config") or {}
    if "family" in config and (folder / "runs.csv").is_file():
        return KINDS["lr-prediction"], ""
    if "recipes" in summary and (folder / "runs.csv").is_file():
        return KINDS["nb201"], ""
    if "presets" in config and "measured" in summary:
        return KINDS["nb201-lr"], ""
    if "spaces" in config and (folder / "records.jsonl").is_file():
        return KINDS["space-lr"], ""
    if "options" in summary and (folder / "records.jsonl").is_file():
        return KINDS["fairness"], ""
    return None, "no re-analysis writes this folder's files from its records"


def _first_difference(old: str, new: str) -> str:
    a, b = old.splitlines(), new.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            at = next((j for j, (u, v) in enumerate(zip(x, y)) if u != v), min(len(x), len(y)))
            start = max(0, at - 30)
            return (f"line {i + 1}, column {at + 1}: committed {x[start:at + 50]!r}, "
                    f"regenerated {y[start:at + 50]!r}")
    if len(a) != len(b):
        return f"committed {len(a)} lines, regenerated {len(b)}"
    return "same lines, other line endings or final newline"


def check_folder(folder: Path, root: Path) -> list[Check]:
    """Regenerate one report folder in a temporary copy of its inputs and compare what it writes."""
    name = folder.relative_to(root).as_posix()
    kind, why = kind_of(folder)
    if kind is None:
        return [Check(name, "", "not regenerable", why)]
    with tempfile.TemporaryDirectory(prefix="regenerate-") as tmp:
        work = Path(tmp) / folder.name
        work.mkdir()
        for f in kind.inputs:
            if (folder / f).is_file():
                shutil.copy2(folder / f, work / f)
        # an input that is also an output (a report with a hand-written part, a summary re-analysed in place) must
        # be rewritten, not merely left as copied: every write is atomic (a new file), so its inode changes
        copied = {f: (work / f).stat().st_ino for f in kind.outputs if (work / f).is_file()}
        try:
            kind.regenerate(work)
        except Exception as exc:  # a report that no longer regenerates is a finding, not a crash of the check
            return [Check(name, "", "not regenerable", f"{kind.name} re-analysis failed: {type(exc).__name__}: {exc}")]
        checks = []
        for f in kind.outputs:
            old, new = folder / f, work / f
            if not old.is_file():
                continue
            if not new.is_file() or copied.get(f) == new.stat().st_ino:
                checks.append(Check(name, f, "not regenerable", f"the {kind.name} re-analysis does not write it"))
            elif old.read_bytes() == new.read_bytes():
                checks.append(Check(name, f, "identical"))
            else:
                checks.append(Check(name, f, "differs", _first_difference(old.read_text(), new.read_text())))
        skipped = sorted(p.name for p in folder.iterdir() if p.suffix in UNCOMPARED)
        if skipped:
            checks.append(Check(name, ", ".join(skipped), "not compared", "plots: matplotlib's bytes vary"))
        return checks


def report_folders(root: Path) -> list[Path]:
    """Every folder under ``root`` holding a ``summary.json`` (a report an experiment wrote)."""
    return sorted(p.parent for p in root.rglob("summary.json"))


def check_reports(root: Path, only: Iterable[str] | None = None) -> list[Check]:
    """:func:`check_folder` for every report folder under ``root`` (or the named ones, relative to ``root``)."""
    folders = [root / n for n in only] if only else report_folders(root)
    return [c for f in folders for c in check_folder(f, root)]


def _key(check: Check) -> str:
    return f"{check.report}/{check.file}" if check.file else check.report


def read_baseline(root: Path) -> dict[str, dict]:
    """``{report/file: {"detail": first differing line, "why": its cause}}`` (empty without a baseline file)."""
    path = root / BASELINE
    return json.loads(path.read_text()) if path.is_file() else {}


def baseline_problems(checks: Iterable[Check], baseline: dict[str, dict]) -> list[str]:
    """What the checks show beyond the baseline: a file that differs (or no longer regenerates) and is not
    recorded, a recorded file that differs otherwise than recorded, a recorded file that is identical now. Only
    the checked folders are compared (a partial check says nothing of the others)."""
    checks = list(checks)
    seen = {_key(c) for c in checks} | {c.report for c in checks}
    problems = []
    for c in checks:
        if c.status not in ("differs", "not regenerable"):
            continue
        entry = baseline.get(_key(c))
        if entry is None:
            problems.append(f"{_key(c)}: {c.status}, which the baseline does not record ({c.detail})")
        elif entry.get("detail") != c.detail:
            problems.append(f"{_key(c)}: {c.status} otherwise than the baseline records: now {c.detail!r}, "
                            f"recorded {entry.get('detail')!r}")
    bad = {_key(c) for c in checks if c.status in ("differs", "not regenerable")}
    for key in baseline:
        if key in seen and key not in bad:
            problems.append(f"{key}: regenerates identically now; remove its entry from reports/{BASELINE}")
    return problems


def updated_baseline(checks: Iterable[Check], baseline: dict[str, dict]) -> dict[str, dict]:
    """The baseline of ``checks``' differences, each keeping its recorded cause (a new one's is empty: say why)."""
    return {_key(c): {"detail": c.detail, "why": baseline.get(_key(c), {}).get("why", "")}
            for c in checks if c.status in ("differs", "not regenerable")}
