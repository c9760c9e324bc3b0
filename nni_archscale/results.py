"""Search outputs: trial records (JSON lines) -> results.csv, summary.json and a PNG plot.

A record is one training run: a candidate (``arch``), an arm (``mode``: ``archscale`` for the rule, or the
baseline ``shared-rate`` / ``nni-default``) and a seed (``replica``). A row joins a candidate's runs: each arm's
mean accuracy over the seeds. The summary compares the arms: the mean paired gain with its 95% interval, the
Kendall tau between the arms' rankings, and the tau between two seeds of one arm (the noise floor a ranking
change must exceed to mean anything). Pure Python except the plot (matplotlib, Agg backend) and scipy's t
quantile (:mod:`nni_archscale.stats`).
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from .errors import OutputError
from .stats import kendall_tau, mean_interval, sample_sd, seed_tau

RECORDS = "trials.jsonl"
#: The fewest candidates (finished in both arms) on which the search's summary gives a verdict. With fewer, no
#: Kendall tau, not even a perfect +-1, differs from chance at the 5% level (two-sided exact p = 2/n!: 0.083 for
#: 4 candidates, 0.017 for 5), and the mean gain's Student-t interval rests on 3 degrees of freedom or fewer
#: (t >= 3.18) with no way to check the gains' normality: the summary says the comparison is too small instead.
MIN_CANDIDATES = 5
#: The fewest seeds for a ranking noise floor (the tau between two seeds of one arm).
MIN_SEEDS = 2
CSV_COLUMNS = ["trial", "arch", "status", "learning_rate", "accuracy", "accuracy_sd", "seeds", "baseline_status",
               "baseline_learning_rate", "baseline_accuracy", "baseline_accuracy_sd", "gain", "num_paths",
               "depth_power_sum", "hook_ms", "train_seconds", "adapter", "message"]
BASELINE_COLUMNS = ("baseline_status", "baseline_learning_rate", "baseline_accuracy", "baseline_accuracy_sd", "gain")
#: the rule's arm; any other result mode is a baseline
OURS = "archscale"
#: what each baseline arm is, for summaries and plots
BASELINE_DESCRIPTIONS = {
    "shared-rate": "one shared learning rate for every candidate, tuned on the base network by the same "
                   "calibration, He init (init 'standard'), same optimizer, schedule, epochs, data and seeds",
    "nni-default": "NNI Classification defaults: Adam, lr 1e-3, weight decay 0, PyTorch default init",
}


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Create ``path`` atomically: ``write(tmp)`` fills a temporary file in the same directory, which then
    replaces ``path`` in one rename, so a crash never leaves a half-written file behind. The file gets the
    mode a plain ``open`` would give it (0666 less the umask, like ``trials.jsonl``), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


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
    fd = os.open(str(path), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)  # less the umask, as atomic_write
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        os.write(fd, line)
    finally:
        os.close(fd)


#: fields every trial record has; a line without them (hand-edited, another tool's) is not a record
RECORD_FIELDS = ("arch", "mode", "status")


def read_records(path: Path, fields: tuple[str, ...] = RECORD_FIELDS) -> list[dict]:
    """Records of a run; a torn line (a run killed mid-write), undecodable bytes and lines that are not
    records (a dict whose ``fields`` are all strings) are skipped, never trusted."""
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
        if isinstance(rec, dict) and all(isinstance(rec.get(k), str) for k in fields):
            out.append(rec)
    return out


#: mode of the record a trial appends before it trains: a candidate with a ``start`` record and no result
#: record was killed or crashed mid-training (its process ended before reporting) and is reported as failed
START_MODE = "start"
FAILED_MESSAGE = "the trial process ended before reporting a result (killed or crashed mid-training)"


def _arm_runs(records: Iterable[dict]) -> tuple[list[str], dict[str, dict[str, dict[int, dict]]]]:
    """``(architectures in trial order, {arch: {arm: {replica: record}}})``; a run that started but never
    reported (a start record without its result) is a ``failed`` record with accuracy 0."""
    order: list[str] = []
    runs: dict[str, dict[str, dict[int, dict]]] = {}
    started: dict[tuple[str, str, int], dict] = {}
    for r in records:
        arch = r["arch"]
        if arch not in runs:
            runs[arch] = {}
            order.append(arch)
        if r["mode"] == START_MODE:
            started[(arch, r.get("arm", OURS), int(r.get("replica", 0)))] = r
        else:
            runs[arch].setdefault(r["mode"], {})[int(r.get("replica", 0))] = r
    for (arch, arm, replica), r in started.items():
        if replica not in runs[arch].get(arm, {}):
            runs[arch].setdefault(arm, {})[replica] = {**r, "mode": arm, "status": "failed", "accuracy": 0.0,
                                                       "message": FAILED_MESSAGE}
    return order, runs


def _arm_summary(by_replica: dict[int, dict]) -> dict:
    """One arm of one candidate over its seeds: status (``ok`` when every seed is; else the first seed's
    non-ok status, ``failed`` first), mean and sd of the accuracy, accuracy by seed."""
    recs = [by_replica[k] for k in sorted(by_replica)]
    statuses = [r["status"] for r in recs]
    status = "ok" if all(st == "ok" for st in statuses) else (
        "failed" if "failed" in statuses else next(st for st in statuses if st != "ok"))
    accs = [float(r["accuracy"]) for r in recs if isinstance(r.get("accuracy"), (int, float))]
    mean = sum(accs) / len(accs) if accs else None
    return {"status": status, "accuracy": mean, "accuracy_sd": sample_sd(accs), "seeds": len(recs), "first": recs[0],
            "by_seed": {k: float(by_replica[k]["accuracy"]) for k in sorted(by_replica)
                        if isinstance(by_replica[k].get("accuracy"), (int, float))},
            "seconds": sum(float(r.get("seconds") or 0.0) for r in recs)}


def build_rows(records: Iterable[dict]) -> list[dict]:
    """One row per architecture, in trial order: the rule's arm and (when there is one) the baseline arm, each
    averaged over its seeds. ``by_seed`` and ``baseline_by_seed`` keep the per-seed accuracies (not in the CSV)."""
    order, runs = _arm_runs(records)
    rows = []
    for i, arch in enumerate(order):
        if OURS not in runs[arch]:
            continue
        ours = _arm_summary(runs[arch][OURS])
        first = ours["first"]
        row = {
            "trial": i, "arch": arch, "status": ours["status"], "learning_rate": first.get("learning_rate"),
            "accuracy": ours["accuracy"], "accuracy_sd": ours["accuracy_sd"], "seeds": ours["seeds"],
            "by_seed": ours["by_seed"], "num_paths": first.get("num_paths"),
            "depth_power_sum": first.get("depth_power_sum"), "hook_ms": first.get("hook_ms"),
            "train_seconds": round(ours["seconds"], 4), "adapter": first.get("adapter"),
            "message": next((r.get("message", "") for r in runs[arch][OURS].values() if r.get("message")), ""),
            "baseline": None, **{k: None for k in BASELINE_COLUMNS}, "baseline_by_seed": {},
        }
        baselines = [m for m in runs[arch] if m != OURS]
        if baselines:
            arm = baselines[0]
            base = _arm_summary(runs[arch][arm])
            row.update(baseline=arm, baseline_status=base["status"],
                       baseline_learning_rate=base["first"].get("learning_rate"),
                       baseline_accuracy=base["accuracy"], baseline_accuracy_sd=base["accuracy_sd"],
                       baseline_by_seed=base["by_seed"])
            if row["accuracy"] is not None and row["baseline_accuracy"] is not None:
                row["gain"] = row["accuracy"] - row["baseline_accuracy"]
        rows.append(row)
    return rows


def compare_arms(rows: list[dict]) -> dict:
    """The comparison of the rule's arm with the baseline over the candidates both finished (every seed
    reported, none ``failed``; a diverged or pathless run counts at the accuracy it scored, chance):

    * ``mean_gain`` and ``gain_ci95``: the mean over candidates of (rule - baseline), each averaged over seeds,
      with its Student-t 95% interval;
    * ``kendall_tau``: between the two arms' rankings (mean accuracy over seeds);
    * ``kendall_tau_per_seed``: the mean over seeds of the tau between the arms at that seed, and ``seed_tau``:
      per arm, the mean tau between two seeds of that arm (the noise floor). When the arms agree at least as well
      as two seeds of the noisier arm do, the ranking change is within seed noise.
    """
    pairs = [r for r in rows if r["gain"] is not None and "failed" not in (r["status"], r["baseline_status"])]
    out: dict = {"compared": len(pairs)}
    gain, interval = mean_interval([r["gain"] for r in pairs])
    out["mean_gain"], out["gain_ci95"] = gain, interval
    out["mean_baseline_accuracy"] = (sum(r["baseline_accuracy"] for r in pairs) / len(pairs)) if pairs else None
    out["mean_rule_accuracy"] = (sum(r["accuracy"] for r in pairs) / len(pairs)) if pairs else None
    out["kendall_tau"] = kendall_tau([r["baseline_accuracy"] for r in pairs], [r["accuracy"] for r in pairs])
    common = sorted(set.intersection(*(set(r["by_seed"]) & set(r["baseline_by_seed"]) for r in pairs))) if pairs else []
    ours_by_seed = [[r["by_seed"][k] for r in pairs] for k in common]
    base_by_seed = [[r["baseline_by_seed"][k] for r in pairs] for k in common]
    per_seed = [t for t in (kendall_tau(a, b) for a, b in zip(ours_by_seed, base_by_seed)) if t is not None]
    out["kendall_tau_per_seed"] = sum(per_seed) / len(per_seed) if per_seed else None
    out["seed_tau"] = {OURS: seed_tau(ours_by_seed), "baseline": seed_tau(base_by_seed)}
    out["seeds"] = len(common)
    out["verdict"] = _verdict(out)
    return out


def _verdict(c: dict) -> str:
    """What the comparison shows, in one sentence per measure (whatever the sign)."""
    if not c["compared"]:
        return "no candidate finished in both arms: nothing to compare"
    parts = []
    g, ci = c["mean_gain"], c["gain_ci95"]
    if ci is None:
        parts.append(f"mean gain {g:+.4f} on one candidate (no interval)")
    elif ci[0] > 0 or ci[1] < 0:
        parts.append(f"the rule {'gains' if g > 0 else 'loses'} {abs(g):.4f} accuracy on average "
                     f"(95% interval {ci[0]:+.4f}..{ci[1]:+.4f}, {c['compared']} candidates)")
    else:
        parts.append(f"no clear accuracy difference: mean gain {g:+.4f}, 95% interval {ci[0]:+.4f}..{ci[1]:+.4f} "
                     f"includes 0 ({c['compared']} candidates)")
    floors = [t for t in c["seed_tau"].values() if t is not None]
    between = c["kendall_tau_per_seed"]
    if not floors or between is None:
        parts.append("ranking noise floor unknown (one seed: pass --seeds 2 or more)")
    elif between >= min(floors):
        parts.append(f"ranking change within seed noise: the arms' rankings agree (tau {between:.2f} per seed) at "
                     f"least as well as two seeds of one arm do (noise floor tau {min(floors):.2f})")
    else:
        parts.append(f"ranking change beyond seed noise: the arms' rankings agree less (tau {between:.2f} per "
                     f"seed) than two seeds of one arm do (noise floor tau {min(floors):.2f})")
    return "; ".join(parts)


def too_small_verdict(c: dict) -> str | None:
    """The sentence that replaces the verdict of a comparison on fewer than :data:`MIN_CANDIDATES` candidates
    (None when it has enough, or none at all: that verdict already says there is nothing to compare)."""
    n = c.get("compared") or 0
    if n == 0 or n >= MIN_CANDIDATES:
        return None
    seeds = "" if (c.get("seeds") or 0) >= MIN_SEEDS else f", with --seeds {MIN_SEEDS} or more for the noise floor"
    return (f"too small to mean anything: {n} candidate{'' if n == 1 else 's'} compared, fewer than "
            f"{MIN_CANDIDATES} (below that no Kendall tau, not even a perfect one, differs from chance at the 5% "
            f"level, and the gain's interval rests on too few pairs); no verdict: compare at least {MIN_CANDIDATES} "
            f"candidates (--trials {MIN_CANDIDATES} or more{seeds})")


def summarise(rows: list[dict], meta: dict, compare) -> dict:
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
        c = compare_arms(rows)
        # a search's summary gives no verdict on fewer than MIN_CANDIDATES candidates (compare_arms, the measure,
        # still states what it measured: its callers see the counts beside it)
        c["too_small"] = c["compared"] < MIN_CANDIDATES
        c["verdict"] = too_small_verdict(c) or c["verdict"]
        summary.update(c)
    return summary


def write_csv(path: Path, rows: list[dict], compare) -> None:
    cols = CSV_COLUMNS if compare else [c for c in CSV_COLUMNS if c not in BASELINE_COLUMNS]
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    atomic_write_text(path, buf.getvalue())


BASELINE_AXIS = {"shared-rate": "accuracy, one shared rate (tuned on the base network)",
                 "nni-default": "accuracy, NNI default recipe (Adam 1e-3)"}


def write_plot(path: Path, rows: list[dict], compare, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5), dpi=110)
    if compare:
        pts = [r for r in rows if r["baseline_accuracy"] is not None and r["accuracy"] is not None]
        if pts:
            xs = [r["baseline_accuracy"] for r in pts]
            ys = [r["accuracy"] for r in pts]
            ax.errorbar(xs, ys, xerr=[r["baseline_accuracy_sd"] or 0.0 for r in pts],
                        yerr=[r["accuracy_sd"] or 0.0 for r in pts], fmt="o", ms=4, alpha=0.8, elinewidth=0.7,
                        label="candidate (mean +- sd over seeds)")
            lo, hi = min(xs + ys), max(xs + ys)
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
            ax.legend(loc="lower right", fontsize=8)
        arm = next((r["baseline"] for r in rows if r.get("baseline")), None)
        ax.set_xlabel(BASELINE_AXIS.get(arm, "accuracy, baseline"))
        ax.set_ylabel("accuracy, archscale (rule's init + lr)")
    else:
        pts = [(r["learning_rate"], r["accuracy"]) for r in rows if r["learning_rate"] is not None]
        if pts:
            xs, ys = zip(*pts)
            ax.scatter(xs, ys, s=18, alpha=0.8)
            ax.set_xscale("log")
        ax.set_xlabel("per-candidate learning rate (rule)")
        ax.set_ylabel("validation accuracy")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def write_outputs(out_dir: Path, meta: dict, compare) -> dict:
    """``results.csv``, ``summary.json`` and ``accuracy.png`` from the trial records of run ``meta["run_id"]``
    (all records when ``meta`` names no run). ``compare``: the baseline arm's name (or any true value) when the
    run compared the rule with a baseline."""
    out_dir = Path(out_dir)
    run_id = meta.get("run_id")
    rows = build_rows(r for r in read_records(out_dir / RECORDS) if run_id is None or r.get("run") == run_id)
    summary = summarise(rows, meta, compare)
    write_csv(out_dir / "results.csv", rows, compare)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    title = f"{meta.get('space', '')} on {meta.get('dataset', '')}, {len(rows)} candidates"
    if compare and summary.get("too_small") and summary.get("compared"):
        title += f"\ntoo few candidates to compare ({summary['compared']}, fewer than {MIN_CANDIDATES})"
    elif compare and summary.get("mean_gain") is not None:
        ci = summary.get("gain_ci95")
        title += (f"\nmean gain {summary['mean_gain']:+.3f}"
                  + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")
                  + f"; tau {_fmt(summary['kendall_tau'], '.2f')}"
                  + f", per seed {_fmt(summary['kendall_tau_per_seed'], '.2f')}"
                  + f" (seed noise floor {_fmt(min((t for t in summary['seed_tau'].values() if t is not None), default=None), '.2f')})")
    write_plot(out_dir / "accuracy.png", rows, compare, title)
    return summary


def missing_dirs(path: str | Path) -> list[Path]:
    """``path`` (absolute) and those of its parents that do not exist yet, deepest first: the folders
    :func:`prepare_out_dir` would create, which a run that fails may remove again (:func:`remove_created_dirs`)."""
    p = Path(path).expanduser().resolve()  # as prepare_out_dir creates it ('a/../b' is b)
    dirs: list[Path] = []
    while not os.path.lexists(p):
        dirs.append(p)
        if p.parent == p:
            break
        p = p.parent
    return dirs


def remove_created_dirs(dirs: Iterable[Path], ignore: Iterable[str] = ()) -> list[Path]:
    """Remove the folders ``dirs`` (deepest first, as :func:`missing_dirs` gives them) that hold nothing but
    files named in ``ignore`` (those are removed with them); stop at the first that holds anything else, so a
    folder with any result in it is never touched. Returns the folders removed."""
    ignore = set(ignore)
    removed: list[Path] = []
    for d in dirs:
        try:
            entries = os.listdir(d)
            if any(e not in ignore or not os.path.isfile(os.path.join(d, e)) for e in entries):
                break
            for e in entries:
                os.unlink(os.path.join(d, e))
            os.rmdir(d)
        except OSError:
            break
        removed.append(d)
    return removed


def prepare_out_dir(path: str | Path) -> Path:
    """The output folder, created and checked writable before any work (a bad ``--out`` must not fail after the
    data, the calibration or a trial); a :class:`OutputError` naming the folder and the fix otherwise."""
    out = Path(path).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {str(out)!r} is a file, not a directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".archscale-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OutputError(f"cannot write the output folder {str(out)!r} ({exc.strerror or type(exc).__name__}); "
                          f"choose another --out") from None
    return out
