"""Search outputs: trial records (JSON lines) -> results.csv, summary.json and a PNG plot.

Pure Python except the plot (matplotlib, Agg backend). Kendall's tau-b is computed here (O(n^2), exact ties).
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

RECORDS = "trials.jsonl"
CSV_COLUMNS = ["trial", "arch", "status", "learning_rate", "accuracy", "default_status", "default_accuracy",
               "gain", "num_paths", "depth_power_sum", "hook_ms", "train_seconds", "adapter", "message"]


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file in the same directory, which then
    replaces ``path`` in one rename, so a crash never leaves a half-written file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same directory, fsync, then rename)."""

    def write(tmp: str) -> None:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line (a single ``write`` on an O_APPEND file: trials in other processes cannot interleave).

    A process killed in the middle of an append leaves a torn last line without its newline; the next append
    then starts on a fresh line, so the torn fragment stays one unreadable line (skipped by :func:`read_records`)
    instead of swallowing the good record written after it.
    """
    line = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(str(path), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)


#: fields every trial record has; a line without them (hand-edited, another tool's) is not a record
RECORD_FIELDS = ("arch", "mode", "status")


def read_records(path: Path) -> list[dict]:
    """Records of a run; a torn line (a run killed mid-write), undecodable bytes and lines that are not
    records are skipped, never trusted."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and all(isinstance(rec.get(k), str) for k in RECORD_FIELDS):
            out.append(rec)
    return out


def kendall_tau(x: list[float], y: list[float]) -> float | None:
    """Kendall's tau-b; None when fewer than 2 pairs or a constant variable."""
    n = len(x)
    if n != len(y) or n < 2:
        return None
    concordant = discordant = ties_x = ties_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    denom = math.sqrt((concordant + discordant + ties_x) * (concordant + discordant + ties_y))
    return None if denom == 0 else (concordant - discordant) / denom


#: mode of the record a trial appends before it trains: a candidate with a ``start`` record and no result
#: record was killed or crashed mid-training (its process ended before reporting) and is reported as failed
START_MODE = "start"
FAILED_MESSAGE = "the trial process ended before reporting a result (killed or crashed mid-training)"


def build_rows(records: Iterable[dict]) -> list[dict]:
    """One row per architecture, in trial order, joining the ``archscale`` and ``default`` records; a candidate
    that started but never reported is a ``failed`` row (accuracy 0)."""
    by_arch: dict[str, dict] = {}
    order: list[str] = []
    for r in records:
        arch = r["arch"]
        if arch not in by_arch:
            by_arch[arch] = {}
            order.append(arch)
        by_arch[arch][r["mode"]] = r
    rows = []
    for i, arch in enumerate(order):
        ours = by_arch[arch].get("archscale")
        default = by_arch[arch].get("default")
        if ours is None and START_MODE in by_arch[arch]:
            ours = {**by_arch[arch][START_MODE], "status": "failed", "accuracy": 0.0, "message": FAILED_MESSAGE}
        if ours is None:
            continue
        row = {
            "trial": i, "arch": arch, "status": ours["status"], "learning_rate": ours.get("learning_rate"),
            "accuracy": ours.get("accuracy"), "num_paths": ours.get("num_paths"),
            "depth_power_sum": ours.get("depth_power_sum"), "hook_ms": ours.get("hook_ms"),
            "train_seconds": ours.get("seconds"), "adapter": ours.get("adapter"), "message": ours.get("message", ""),
            "default_status": None, "default_accuracy": None, "gain": None,
        }
        if default is not None:
            row["default_status"] = default["status"]
            row["default_accuracy"] = default.get("accuracy")
            if isinstance(row["accuracy"], (int, float)) and isinstance(row["default_accuracy"], (int, float)):
                row["gain"] = row["accuracy"] - row["default_accuracy"]
        rows.append(row)
    return rows


def summarise(rows: list[dict], meta: dict, compare: bool) -> dict:
    ok = [r for r in rows if r["status"] == "ok" and isinstance(r["accuracy"], (int, float))]
    summary = {
        **meta,
        "candidates": len(rows),
        "statuses": {s: sum(1 for r in rows if r["status"] == s) for s in sorted({r["status"] for r in rows})},
        "best": max(ok, key=lambda r: r["accuracy"])["arch"] if ok else None,
        "best_accuracy": max((r["accuracy"] for r in ok), default=None),
        "mean_accuracy": (sum(r["accuracy"] for r in ok) / len(ok)) if ok else None,
    }
    if compare:
        pairs = [r for r in rows if r["status"] == "ok" and r["default_status"] == "ok" and r["gain"] is not None]
        summary["compared"] = len(pairs)
        summary["mean_gain"] = (sum(r["gain"] for r in pairs) / len(pairs)) if pairs else None
        summary["mean_default_accuracy"] = (sum(r["default_accuracy"] for r in pairs) / len(pairs)) if pairs else None
        summary["kendall_tau"] = kendall_tau([r["default_accuracy"] for r in pairs], [r["accuracy"] for r in pairs])
    return summary


def write_csv(path: Path, rows: list[dict], compare: bool) -> None:
    cols = CSV_COLUMNS if compare else [c for c in CSV_COLUMNS if c not in ("default_status", "default_accuracy", "gain")]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    atomic_write_text(path, buf.getvalue())


def write_plot(path: Path, rows: list[dict], compare: bool, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    if compare:
        pts = [(r["default_accuracy"], r["accuracy"]) for r in rows
               if r["default_accuracy"] is not None and r["accuracy"] is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=18, alpha=0.8)
            lo, hi = min(xs + ys), max(xs + ys)
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
            ax.legend(loc="lower right")
        ax.set_xlabel("accuracy, NNI default recipe")
        ax.set_ylabel("accuracy, archscale (principled init + lr)")
    else:
        pts = [(r["learning_rate"], r["accuracy"]) for r in rows if r["learning_rate"] is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=18, alpha=0.8)
            ax.set_xscale("log")
        ax.set_xlabel("per-candidate learning rate (rule)")
        ax.set_ylabel("validation accuracy")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_outputs(out_dir: Path, meta: dict, compare: bool) -> dict:
    """``results.csv``, ``summary.json`` and ``accuracy.png`` from the trial records of run ``meta["run_id"]``
    (all records when ``meta`` names no run)."""
    out_dir = Path(out_dir)
    run_id = meta.get("run_id")
    rows = build_rows(r for r in read_records(out_dir / RECORDS) if run_id is None or r.get("run") == run_id)
    summary = summarise(rows, meta, compare)
    write_csv(out_dir / "results.csv", rows, compare)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    title = f"{meta.get('space', '')} on {meta.get('dataset', '')}, {len(rows)} candidates"
    if compare and summary.get("mean_gain") is not None:
        title += f"; mean gain {summary['mean_gain']:+.3f}, tau {summary['kendall_tau'] or float('nan'):.2f}"
    write_plot(out_dir / "accuracy.png", rows, compare, title)
    return summary
