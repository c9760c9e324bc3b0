"""Faults: a crash never leaves a half-written file that a later run trusts; a trial killed mid-training is a
failed row and the search goes on; an interrupted ``ts`` search resumes.

Fast tests cover every writer (calibration cache, run.json, results.csv, summary.json, accuracy.png, trials.jsonl
appends) by crashing it at the worst moment; the two end-to-end ``ts`` experiments are marked slow.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest_nni import children_of, no_leaked_nnimanager, our_nnimanagers, stop_pids  # noqa: F401
from nni_archscale import results
from nni_archscale.cli.main import main
from nni_archscale.results import (
    FAILED_MESSAGE, RECORDS, append_record, atomic_write_text, build_rows, read_records, write_outputs,
)
from nni_archscale.errors import CacheError
from nni_archscale.torch_layer.rate_grid import CACHE_FORMAT, Calibration, CalibrationCache


class _Crash(BaseException):
    """Stands for the process dying (not an Exception: nothing may catch it on the way)."""


def _leftovers(directory: Path, name: str) -> list[str]:
    """Files beside ``name`` other than its lock file (``name.lock``, which the calibration cache keeps)."""
    return [p.name for p in directory.iterdir() if p.name not in (name, f"{name}.lock")]


# ------------------------------------------------------------------------------------------ atomic writes
@pytest.mark.parametrize("stage", ["write", "fsync", "replace"])
def test_atomic_write_keeps_the_old_file_when_it_crashes(stage, tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text('{"old": true}\n')

    def crash(*args, **kwargs):
        raise _Crash(stage)

    if stage == "write":
        real_fdopen = os.fdopen

        class HalfFile:
            def __init__(self, f):
                self.f = f

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.f.close()
                return False

            def write(self, text):
                self.f.write(text[: len(text) // 2])  # half of it reaches the disk, then the process dies
                self.f.flush()
                raise _Crash("write")

        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: HalfFile(real_fdopen(fd, *a, **k)))
    else:
        monkeypatch.setattr(os, stage, crash)
    with pytest.raises(_Crash):
        atomic_write_text(target, json.dumps({"new": list(range(1000))}))
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert _leftovers(tmp_path, "summary.json") == []  # the temporary file is removed


def test_atomic_write_survives_sigkill_mid_write(tmp_path):
    """A process killed while writing a large file leaves the old file (or the complete new one), never a part."""
    target = tmp_path / "results.csv"
    target.write_text("old\n")
    code = ("import sys; from pathlib import Path; from nni_archscale.results import atomic_write_text\n"
            "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
            "for i in range(10**6): atomic_write_text(Path(sys.argv[1]), ('x' * 1000 + '\\n') * 2000)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    text = target.read_text()
    assert text == "old\n" or text == ("x" * 1000 + "\n") * 2000
    # a temporary file may remain (the kill can land between mkstemp and rename); nothing reads it
    assert all(p.name.startswith(".results.csv.") for p in tmp_path.iterdir() if p.name != "results.csv")


def test_calibration_cache_write_crash_keeps_the_valid_cache(tmp_path, monkeypatch):
    path = tmp_path / "calibration.json"
    cache = CalibrationCache(path)
    cache.put(Calibration("k1", 0.5, {"grid": [1]}, {1: 0.1}, 1.0))
    before = path.read_text()
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(_Crash("replace")))
    with pytest.raises(_Crash):
        cache.put(Calibration("k2", 0.25, {"grid": [2]}, {2: 0.1}, 1.0))
    monkeypatch.undo()
    assert path.read_text() == before
    again = CalibrationCache(path, strict=True)
    assert again.get("k1", {"grid": [1]}).base_lr == 0.5 and again.get("k2", {"grid": [2]}) is None
    assert _leftovers(tmp_path, "calibration.json") == []


def test_torn_cache_is_not_trusted(tmp_path):
    """What a non-atomic writer would leave: the first half of a valid cache. Strict readers refuse it."""
    path = tmp_path / "calibration.json"
    CalibrationCache(path).put(Calibration("k1", 0.5, {"grid": [1]}, {1: 0.1}, 1.0))
    full = path.read_text()
    path.write_text(full[: len(full) // 2])
    with pytest.raises(CacheError, match="is corrupt"):
        CalibrationCache(path, strict=True)
    assert CalibrationCache(path).get("k1", {"grid": [1]}) is None


def test_two_caches_opened_on_one_file_keep_each_others_entries(tmp_path):
    """Two trials open the shared cache before either has written; each then files its own calibration. The
    second write used to replace the file with its own (stale) view and drop the first entry."""
    path = tmp_path / "calibration.json"
    first, second = CalibrationCache(path), CalibrationCache(path)
    first.put(Calibration("k1", 0.5, {"grid": [1]}, {1: 0.1}, 1.0))
    second.put(Calibration("k2", 0.25, {"grid": [2]}, {2: 0.1}, 1.0))
    again = CalibrationCache(path, strict=True)
    assert again.get("k1", {"grid": [1]}).base_lr == 0.5 and again.get("k2", {"grid": [2]}).base_lr == 0.25
    assert second.get("k1", {"grid": [1]}).base_lr == 0.5  # the writer also sees what it merged


def _put_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        CalibrationCache(path).put(Calibration(f"w{worker}-{i}", 0.5, {"grid": [1]}, {1: 0.1}, 1.0))


def test_cache_in_a_directory_that_does_not_exist_yet_is_created(tmp_path):
    """A fresh machine has no ~/.cache/nni-archscale: the first write creates it (lock file included)."""
    path = tmp_path / "not" / "yet" / "calibration.json"
    CalibrationCache(path).put(Calibration("k1", 0.5, {"grid": [1]}, {1: 0.1}, 1.0))
    assert CalibrationCache(path, strict=True).get("k1", {"grid": [1]}).base_lr == 0.5


def test_concurrent_writers_lose_no_entries(tmp_path):
    """Four processes writing 15 entries each into one cache at the same time: all 60 survive, and the file
    stays valid throughout (the write is atomic and made under the cache's file lock)."""
    import multiprocessing

    path = tmp_path / "calibration.json"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_put_many, args=(str(path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    entries = json.loads(path.read_text())["entries"]
    assert sorted(entries) == sorted(f"w{w}-{i}" for w in range(4) for i in range(15))


def test_cache_lock_held_elsewhere_is_a_clear_error(tmp_path, monkeypatch):
    from filelock import FileLock

    from nni_archscale.torch_layer import rate_grid as calibrate

    path = tmp_path / "calibration.json"
    monkeypatch.setattr(calibrate, "LOCK_TIMEOUT_S", 0.2)
    holder = FileLock(f"{path}.lock")
    with holder:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()

        def attempt():
            try:
                CalibrationCache(path).put(Calibration("k1", 0.5, {"grid": [1]}, {1: 0.1}, 1.0))
                queue.put("written")
            except CacheError as exc:
                queue.put(str(exc))

        proc = ctx.Process(target=attempt)
        proc.start()
        message = queue.get(timeout=60)
        proc.join(timeout=60)
    assert "stayed locked for 0.2 s" in message and "calibration.json.lock" in message, message
    assert not path.exists()


def test_plot_write_crash_leaves_no_partial_png(tmp_path, monkeypatch):
    import matplotlib.figure

    png = tmp_path / "accuracy.png"
    png.write_bytes(b"\x89PNG old")

    def half_png(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise _Crash("savefig")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_png)
    with pytest.raises(_Crash):
        results.write_plot(png, [], False, "t")
    assert png.read_bytes() == b"\x89PNG old"
    assert _leftovers(tmp_path, "accuracy.png") == []


# ------------------------------------------------------------------------------------- trial records
def _rec(arch, mode="archscale", status="ok", accuracy=0.5, **kw):
    return {"arch": arch, "mode": mode, "status": status, "accuracy": accuracy, "run": "r", **kw}


def test_torn_append_does_not_swallow_the_next_record(tmp_path):
    path = tmp_path / RECORDS
    append_record(path, _rec("a"))
    with open(path, "ab") as f:  # a trial killed in the middle of its append
        f.write(json.dumps(_rec("b")).encode()[:20])
    append_record(path, _rec("c"))
    assert [r["arch"] for r in read_records(path)] == ["a", "c"]
    assert path.read_bytes().endswith(b"\n") and path.read_text().count("\n") == 3


def test_read_records_skips_what_is_not_a_record(tmp_path):
    path = tmp_path / RECORDS
    path.write_bytes(b'{"arch": "a", "mode": "archscale", "status": "ok", "accuracy": 0.5}\n'
                     b"[1, 2]\n42\n\"text\"\nnull\n"
                     b'{"mode": "archscale", "status": "ok"}\n'           # no arch
                     b'{"arch": 3, "mode": "archscale", "status": "ok"}\n'  # arch not a string
                     b"\xff\xfe not utf-8\n"
                     b'{"arch": "d", "mode": "archscale", "status": "ok", "accuracy": 0.7}\n')
    assert [r["arch"] for r in read_records(path)] == ["a", "d"]


def test_started_but_never_reported_is_a_failed_row(tmp_path):
    path = tmp_path / RECORDS
    append_record(path, _rec("a", mode="start", status="started", accuracy=None, pid=11))
    append_record(path, _rec("a", accuracy=0.8))
    append_record(path, _rec("b", mode="start", status="started", accuracy=None, pid=12))  # killed
    append_record(path, _rec("c", mode="start", status="started", accuracy=None, pid=13))
    append_record(path, _rec("c", accuracy=0.6))
    rows = build_rows(read_records(path))
    assert [(r["arch"], r["status"]) for r in rows] == [("a", "ok"), ("b", "failed"), ("c", "ok")]
    assert rows[1]["message"] == FAILED_MESSAGE and rows[1]["accuracy"] == 0.0
    summary = write_outputs(tmp_path, {"space": "s", "dataset": "d"}, compare=False)
    assert summary["statuses"] == {"failed": 1, "ok": 2} and summary["best"] == "a"
    with open(tmp_path / "results.csv") as f:
        assert [r["status"] for r in csv.DictReader(f)] == ["ok", "failed", "ok"]


def test_run_candidate_writes_a_start_record_before_training(tmp_path, monkeypatch):
    """The start record is on disk when training begins (a kill during training leaves it behind)."""
    from nni_archscale.nni_glue import trial
    from nni_archscale.nni_glue.calibration import BASE_SAMPLE, build_nb201

    seen = {}

    def killed(*args, **kwargs):
        seen["records"] = read_records(tmp_path / RECORDS)
        raise _Crash("SIGKILL during training")

    monkeypatch.setattr(trial, "_train", killed)
    sample = dict(BASE_SAMPLE, **{"cell/0_1": "conv_3x3"})
    cfg = {"out_dir": str(tmp_path), "dataset": "digits", "limit": 64, "epochs": 1, "batch_size": 32, "seed": 0,
           "device": "cpu", "hook": {"base_lr": 0.1}, "run_id": "r", "resume": True}
    with pytest.raises(_Crash):
        trial.run_candidate(build_nb201(2, 1, 10, sample), sample, cfg)
    assert [r["mode"] for r in seen["records"]] == ["start"]
    rows = build_rows(read_records(tmp_path / RECORDS))
    assert len(rows) == 1 and rows[0]["status"] == "failed"


def test_resume_refuses_a_run_file_it_cannot_read(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"identity": {"dataset": "dig')  # not archscale's (its writes are atomic)
    assert main(["search", "--out", str(out), "--resume", "--base-lr", "0.1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "run.json is unreadable" in err and "remove run.json and trials.jsonl" in err


@pytest.mark.parametrize("resume", [True, False])
def test_records_of_an_unknown_run_are_never_mixed_in(tmp_path, capsys, resume):
    """trials.jsonl without run.json (copied in, or left by another tool): its options cannot be checked, so
    neither a new search nor --resume may run there (a resume used to add the old records to its results)."""
    out = tmp_path / "run"
    out.mkdir()
    append_record(out / RECORDS, _rec("a", accuracy=0.9, run="someone-else"))
    args = ["search", "--out", str(out), "--base-lr", "0.1", "--no-progress"] + (["--resume"] if resume else [])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds trial records (trials.jsonl) of an unknown run but no run.json" in err, err
    assert "move trials.jsonl away" in err and not (out / "run.json").exists()


def test_outputs_hold_only_this_runs_records(tmp_path):
    append_record(tmp_path / RECORDS, _rec("old", accuracy=0.9, run="r0"))
    append_record(tmp_path / RECORDS, _rec("new", accuracy=0.5, run="r1"))
    summary = write_outputs(tmp_path, {"space": "s", "dataset": "d", "run_id": "r1"}, compare=False)
    assert summary["best"] == "new" and summary["statuses"] == {"ok": 1}
    with open(tmp_path / "results.csv") as f:
        assert [r["arch"] for r in csv.DictReader(f)] == ["new"]


# ------------------------------------------------------------------------ ts experiments (slow, real NNI)
def _search_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nni_archscale", "search", "--engine", "ts", "--strategy", "random",
            "--trials", "3", "--limit", "200", "--width", "4", "--base-lr", "0.3", "--out", str(out),
            "--no-progress", *extra]


def _wait_for(predicate, timeout: float, proc: subprocess.Popen | None = None, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            return predicate()
        time.sleep(step)
    return None


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


@pytest.mark.slow
@pytest.mark.nni
def test_ts_trial_killed_mid_training_is_failed_and_search_goes_on(tmp_path, no_leaked_nnimanager):
    out = tmp_path / "killed"
    proc = subprocess.Popen(_search_cmd(out, "--epochs", "40"), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        start = _wait_for(lambda: [r for r in read_records(out / RECORDS) if r["mode"] == "start"], 180, proc)
        assert start, "no trial started"
        victim = start[0]["pid"]
        assert victim in children_of(proc.pid)  # a trial subprocess of this search, not anyone else's
        os.kill(victim, signal.SIGKILL)
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            stop_pids([proc.pid, *children_of(proc.pid)])
    assert proc.returncode == 0, output[-3000:]
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3, rows
    killed = [r for r in rows if r["arch"] == start[0]["arch"]]
    assert killed[0]["status"] == "failed" and "killed or crashed" in killed[0]["message"]
    assert sum(r["status"] == "ok" for r in rows) == 2  # the search went on
    assert json.loads((out / "summary.json").read_text())["statuses"]["failed"] == 1


@pytest.mark.slow
@pytest.mark.nni
def test_interrupted_ts_search_resumes(tmp_path, no_leaked_nnimanager):
    out = tmp_path / "interrupted"
    proc = subprocess.Popen(_search_cmd(out, "--epochs", "2"), env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        first = _wait_for(lambda: [r for r in read_records(out / RECORDS) if r["mode"] == "archscale"], 180, proc)
        assert first, "no trial finished"
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            stop_pids([proc.pid, *children_of(proc.pid)])
    assert proc.returncode == 130, output[-3000:]
    assert "--resume" in output, output[-3000:]
    assert not our_nnimanagers(tmp_path)
    before = read_records(out / RECORDS)
    done_before = {r["arch"] for r in before if r["mode"] == "archscale"}
    assert 1 <= len(done_before) < 3, [(r["mode"], r["arch"], r.get("pid")) for r in before]

    again = subprocess.run(_search_cmd(out, "--epochs", "2", "--resume"), env=_env(), capture_output=True,
                           text=True, timeout=400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    recs = [r for r in read_records(out / RECORDS) if r["mode"] == "archscale"]
    archs = [r["arch"] for r in recs]
    # nothing trained twice, all three candidates done
    assert len(set(archs)) == 3 and len(archs) == 3, [(r["mode"], r["arch"], r.get("pid"), r.get("time"))
                                                      for r in read_records(out / RECORDS)]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["candidates"] == 3 and summary["interrupted"] is False
