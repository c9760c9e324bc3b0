"""``archscale search``: a real NNI NAS experiment in which every candidate trains with its own principled init
and learning rate (and, with ``compare``, also with a baseline recipe: one shared rate tuned on the base network,
or NNI's default recipe), once per seed.

The experiment is NNI's own (``NasExperiment`` with a ``FunctionalEvaluator`` running :func:`.trial.search_trial`),
on the sequential engine (in-process) or the ``ts`` engine (nnimanager + one subprocess per trial, local
training service). The nnimanager is always stopped in ``finally``; trials append their outcomes to
``<out>/trials.jsonl``, from which ``results.csv``, ``summary.json`` and ``accuracy.png`` are written (also after
an interruption). ``resume`` replays the seeded strategy and reports finished candidates from their records,
so an interrupted search continues where it stopped, and a larger ``trials`` extends a finished one.

While it runs, the search holds a lock on ``<out>`` (:class:`OutDirLock`: a second search there is refused);
NNI's experiment working directory is ``<out>/nni``, its console lines go to ``<out>/nni/console.log``
(:class:`_NniConsole`), and the run's entry in NNI's registry ``~/nni-experiments/.experiment`` is removed when
it ends (:func:`forget_nni_experiments`). A run that fails before writing anything removes the folders it created.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..run_options import RunOptions, data_dir_problem
from ..results import (BASELINE_DESCRIPTIONS, RECORDS, atomic_write_text, missing_dirs, prepare_out_dir,
                       read_records, remove_created_dirs, write_outputs)
from ..errors import ArchScaleError
from ..core.files import SEARCH_FILES, file_kind, out_dir_refusal
from ..errors import OutputError, SearchError
from ..rules.presets import Init
from ..rules.registry import stored_options
from ..torch_layer.hook import HookConfig
from .calibration import CalibrationOptions, bar_progress, calibrate_space, space_name, space_reference
from .spaces import SpaceError
from .training_service import experiment_config, trial_code_directory

ENGINES = ("sequential", "ts")
STRATEGIES = ("evolution", "random", "tpe")
RUN_FILE = "run.json"
#: held (``filelock``, an OS lock the kernel drops when its process ends) while a search runs in its --out: a
#: second search on the same folder is refused instead of mixing its records into the first one's
LOCK_FILE = ".archscale-search.lock"
#: who holds the lock (JSON: pid, host, process start, start time, command), for the refusal's message; removed
#: when the run ends
OWNER_FILE = ".archscale-search.owner"
#: held only while a stale lock is taken over (:meth:`OutDirLock._take_over`)
TAKEOVER_FILE = ".archscale-search.takeover"
LOCK_FILES = (LOCK_FILE, OWNER_FILE, TAKEOVER_FILE)
#: seconds to look again before a lock whose owner no longer runs is taken over
STALE_RECHECK_S = 1.0
#: NNI's own folders under --out: its experiment working directory (experiment_working_directory)
NNI_DIR = "nni"
#: what NNI would print on the console during a search (its INFO lines and up), under NNI_DIR
NNI_CONSOLE_LOG = "console.log"
#: options that define a run: resuming with any of them changed would mix two experiments (``trials`` may grow
#: on resume: the search is extended, see _check_out_dir)
_IDENTITY = ("space", "space_options", "dataset", "data_dir", "limit", "trials", "epochs", "batch_size", "strategy",
             "width", "cells_per_stage", "compare", "seed", "base_lr", "engine", "seeds", "shared_lr", "augment",
             "calibration_objective")
#: the comparisons ``compare`` may name (the trial's baseline arms)
COMPARISONS = tuple(BASELINE_DESCRIPTIONS)


class SearchInterrupted(KeyboardInterrupt):
    """The search was interrupted; its partial results are written. The message says how to continue."""


@dataclass
class SearchOptions(RunOptions):
    """A search: the data, size, base rate and device of :class:`~nni_archscale.run_options.RunOptions`, the
    hook's options (``hook``), and what NNI searches and how."""

    #: the NNI model space (nni_glue.spaces.SPACE_NAMES); nb201 takes width and cells_per_stage
    space: str = "nb201"
    #: the space's own constructor arguments (overriding nni_glue.spaces' CPU-size defaults)
    space_options: dict = field(default_factory=dict)
    trials: int = 12
    epochs: int = 2
    batch_size: int = 128
    engine: str = "sequential"
    strategy: str = "evolution"
    out: str = "archscale-search"
    #: None, or the baseline arm every candidate is also trained with: "shared-rate" or "nni-default"
    compare: str | None = None
    seed: int = 0
    #: every arm trains each candidate once per seed (seed, seed + 1, ...): the noise floor needs 2 or more
    seeds: int = 1
    #: the shared-rate baseline's rate; None: calibrated on the base network like base_lr (cached)
    shared_lr: float | None = None
    #: what every candidate trains with: init, rate rule (auto: the evidence-backed default for the
    #: network), optimizer, momentum, weight decay, schedule (torch_layer.hook.HookConfig: the hook's own options,
    #: defined once). Its base_lr and batch_size are replaced by this search's.
    hook: HookConfig = field(default_factory=HookConfig)
    resume: bool = False
    cache_path: str | None = None
    #: how base_lr and shared_lr are calibrated when not given: "maxlr" (the paper's one-epoch maximal rate of
    #: the base network), "accuracy" (its best validation accuracy after this search's epochs) or "population"
    #: (the best mean over a few sampled candidates); None: the space's family's (defaults.base_rate_objective)
    calibration_objective: str | None = None
    progress: bool = True
    #: NNI's console lines go to <out>/nni/console.log (and its experiment.log) only; False: also to stderr
    quiet_nni: bool = True
    training_service: str = "local"   # ts engine: local | remote (see training_service.py)
    concurrency: int = 1              # ts engine: trials at once (on a GPU they share it)
    #: GPU trainer path (torch_layer.fast_train): torch.compile each candidate (None: on for runs of >= 5,000
    #: steps on CUDA); NAS-Bench-201's crop + flip augmentation on the training device
    compile: bool | None = None
    augment: bool = False
    machines: list = field(default_factory=list)   # remote: RemoteMachine list
    manager_ip: str | None = None     # remote: the address workers connect back to (NNI's nni_manager_ip)
    manager_port: int | None = None   # ts: the nnimanager's port (default: a free one); workers must reach it
    extra: dict = field(default_factory=dict)


class _NniConsole:
    """While the search runs, NNI's console logging goes to ``<out>/nni/console.log`` (and, with ``echo``, to
    stderr at that level), never to stdout: stdout carries the search's own lines and its JSON summary.

    NNI installs its console handler (a ``StreamHandler`` on ``sys.stdout``, colouring every line with colorama)
    on the ``nni`` logger when nni is first imported. The former ``_QuietNniConsole`` only raised that handler's
    level to WARNING, so NNI's warnings and errors still reached stdout in colour: "Timeout, retry..." while the
    nnimanager of a successful ``--engine ts`` run starts, "Model N fails to be executed" on a failing one. Here
    the handler is taken off the logger for the run (nni is imported first, so it cannot be installed after us)
    and put back afterwards; NNI's ``experiment.log`` under ``<out>/nni/<experiment id>/log`` keeps its own copy.
    """

    def __init__(self, log_file: Path, echo: int | None = None):
        self.log_file, self.echo = Path(log_file), echo
        self.removed: list[logging.Handler] = []
        self.added: list[logging.Handler] = []

    def __enter__(self):
        import nni  # noqa: F401  (importing nni installs its console handler: before it is taken off)

        logger = logging.getLogger("nni")
        self.removed = [h for h in logger.handlers
                        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
        for h in self.removed:
            logger.removeHandler(h)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        fmt = logging.Formatter("[%(asctime)s] %(levelname)s (%(name)s) %(message)s", "%Y-%m-%d %H:%M:%S")
        to_file = logging.FileHandler(self.log_file, encoding="utf-8")
        to_file.setLevel(logging.INFO)
        self.added = [to_file]
        if self.echo is not None:
            to_stderr = logging.StreamHandler(sys.stderr)
            to_stderr.setLevel(self.echo)
            self.added.append(to_stderr)
        for h in self.added:
            h.setFormatter(fmt)
            logger.addHandler(h)
        return self

    def __exit__(self, *exc):
        logger = logging.getLogger("nni")
        for h in self.added:
            logger.removeHandler(h)
            h.close()
        for h in self.removed:
            if h not in logger.handlers:
                logger.addHandler(h)
        self.added, self.removed = [], []
        return False


def forget_nni_experiments(nni_dir: Path, ids=(), report=print, inside: bool = False) -> list[str]:
    """Remove the entries of the experiments run in ``nni_dir`` (and ``ids``) from NNI's experiment registry,
    ``~/nni-experiments/.experiment``. NNI 3.0 writes an entry for every experiment whatever its
    ``experiment_working_directory`` (its Python side for the sequential engine and when it starts the
    nnimanager, which updates it under ``os.homedir()``) and never removes one; the search's own folders live
    in ``nni_dir``. Earlier runs in the same folder that were killed before they could clean up are removed
    too; with ``inside``, every experiment whose folder lies anywhere under ``nni_dir`` (a test session's
    temporary base). Returns the ids removed; a registry that cannot be read or written is a note, not a failure."""
    try:
        from nni.tools.nnictl.config_utils import Experiments

        registry = Experiments()
        here = os.path.realpath(os.path.expanduser(str(nni_dir)))

        def ran_here(entry) -> bool:
            if not (isinstance(entry, dict) and isinstance(entry.get("logDir"), str)):
                return False
            folder = os.path.realpath(os.path.expanduser(entry["logDir"]))
            return folder == here or (inside and folder.startswith(here + os.sep))

        mine = [i for i, e in registry.get_all_experiments().items() if i in set(ids) or ran_here(e)]
        for i in mine:
            registry.remove_experiment(i)
        return mine
    except Exception as exc:  # NNI's bookkeeping must never fail a finished search
        report(f"archscale: note: could not remove this run from NNI's registry ~/nni-experiments/.experiment "
               f"({type(exc).__name__}: {exc})")
        return []


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, start time at index 19); None when
    the process is gone or /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields if len(fields) > 19 else None


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/<pid>/stat`` field 22), to tell it from a later process that
    got the same pid; None where /proc is not there."""
    fields = _proc_stat(pid)
    return fields[19] if fields else None


def _running(pid, start) -> bool:
    """Whether process ``pid`` (started at ``start``, when known) still runs on this machine."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if os.path.isdir("/proc"):
        fields = _proc_stat(pid)
        if fields is None:
            return False
        if fields[0] in ("Z", "X"):  # a zombie: ended, not yet reaped
            return False
        return start is None or fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutDirLock:
    """The lock on a search's output folder, held while the search runs (:data:`LOCK_FILE`, an OS lock through
    ``filelock``; :data:`OWNER_FILE` says who holds it).

    A second search on the same folder gets a one-line error naming the first one's pid. The kernel drops the
    lock when its process ends, however it ends, so a search that died never blocks the next one; a lock still
    held although the process that took it is gone from this machine (a child that inherited it) is set aside,
    with a note. ``release(remove=...)`` removes the folders a failed run created while the lock is still held,
    if they hold nothing but the lock's files."""

    def __init__(self, out: Path, report=print):
        self.out, self.report = Path(out), report
        self.lock = None

    def _owner(self) -> dict | None:
        try:
            owner = json.loads((self.out / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return owner if isinstance(owner, dict) else None

    def _busy(self, owner: dict | None) -> SearchError:
        where = f"{str(self.out)!r}"
        if owner is None:
            return SearchError(f"another process holds the lock {str(self.out / LOCK_FILE)!r} of {where}; wait for "
                               f"the search running there to finish, or choose another --out")
        host = owner.get("host")
        on = f" on {host}" if host and host != socket.gethostname() else ""
        started = f", started {owner['started']}" if owner.get("started") else ""
        return SearchError(f"another archscale search (pid {owner.get('pid')}{on}{started}) is running in {where}; "
                           f"wait for it to finish, or choose another --out")

    def _stale(self, owner: dict | None) -> bool:
        return (owner is not None and owner.get("host") == socket.gethostname()
                and not _running(owner.get("pid"), owner.get("start")))

    def _try(self, path: str):
        """The lock, or None while another process holds it (retried for up to 2 s while that process has not
        written its owner file yet: it just took the lock, or is releasing it)."""
        from filelock import FileLock, Timeout

        for _ in range(20):
            lock = FileLock(path, timeout=0)  # one try each: a busy folder is an error, not a wait
            try:
                lock.acquire()
                return lock
            except Timeout:
                if self._owner() is not None:
                    return None
            time.sleep(0.1)
        return None

    def acquire(self) -> "OutDirLock":
        path = str(self.out / LOCK_FILE)
        try:
            lock = self._try(path)
            if lock is None:
                owner = self._owner()
                if not self._stale(owner):
                    raise self._busy(owner)
                # held, but the pid that took it no longer runs here: a child of it keeps the lock open, or a run
                # that has just taken the lock has not replaced a dead run's owner file yet: look again
                time.sleep(STALE_RECHECK_S)
                lock = self._try(path)
                if lock is None:
                    lock = self._take_over(path, owner)
        except NotImplementedError:  # a file system without flock (some network mounts)
            self.report(f"archscale: warning: the file system of {self.out} cannot lock files; make sure no other "
                        f"search writes there at the same time")
            lock = None
        except OSError as exc:
            raise OutputError(f"cannot lock the output folder {str(self.out)!r} "
                              f"({exc.strerror or type(exc).__name__}); choose another --out") from None
        self.lock = lock
        self._write_owner()
        return self

    def _take_over(self, path: str, owner: dict):
        """Set aside a lock whose owner no longer runs and lock a new file, under a second lock (TAKEOVER_FILE), so
        that two searches that found the same dead owner cannot both take over (the second sees the first's owner
        file, written before the takeover lock is released)."""
        from filelock import FileLock, Timeout

        try:
            with FileLock(str(self.out / TAKEOVER_FILE), timeout=10):
                later = self._owner()
                if later != owner or not self._stale(later):
                    raise self._busy(later)
                try:  # set the held file aside (its holder keeps its copy) and lock a new one
                    os.unlink(path)
                except FileNotFoundError:
                    pass
                lock = self._try(path)
                if lock is None:
                    raise self._busy(self._owner())
                self._write_owner()
        except Timeout:
            raise self._busy(self._owner()) from None
        self.report(f"archscale: note: the lock of {self.out} was left by pid {owner.get('pid')}, which no longer "
                    f"runs; taken over")
        return lock

    def _write_owner(self) -> None:
        atomic_write_text(self.out / OWNER_FILE, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}) + "\n")

    def release(self, remove: list[Path] | tuple = ()) -> list[Path]:
        removed: list[Path] = []
        try:
            owner = self._owner()
            if owner is not None and owner.get("pid") == os.getpid():
                try:
                    (self.out / OWNER_FILE).unlink()
                except OSError:
                    pass
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None
        if remove:  # after the release: the lock file goes only with its (otherwise empty) folder
            removed = remove_created_dirs(remove, ignore=LOCK_FILES)
        return removed


def tracked_by_git(path: Path) -> list[str]:
    """The files under ``path`` that git tracks (``git ls-files``, read-only), or [] when there are none, git is
    not installed or ``path`` is not in a work tree."""
    path = Path(path)
    try:
        done = subprocess.run(["git", "-C", str(path if path.is_dir() else path.parent), "ls-files", "-z", "--",
                               str(path)], capture_output=True, timeout=20,
                              env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [n for n in done.stdout.decode("utf-8", errors="replace").split("\0") if n]


def _check_not_tracked(out: Path) -> None:
    """A new search never writes into a folder holding files git tracks (a checkout's own files, or a committed
    search): its results.csv, summary.json... would overwrite them or mix with them. Resuming a committed search
    stays allowed."""
    try:
        entries = [e for e in os.listdir(out) if e not in LOCK_FILES]
    except OSError:
        return
    if not entries:
        return
    tracked = tracked_by_git(out)
    if tracked:
        raise SearchError(f"{str(out)!r} holds {len(tracked)} file(s) tracked by git (e.g. {tracked[0]!r}); a new "
                          f"search there would overwrite or mix with them: choose another --out (a new folder, or "
                          f"one git ignores)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _strategy(name: str, trials: int, seed: int):
    """NNI's strategy for a search of ``trials`` candidates (an extended search passes the trials it started with:
    the evolution's population keeps its size, so the seeded strategy proposes what it proposed before, then
    goes on)."""
    from nni.nas import strategy

    if name == "evolution":
        population = max(2, min(20, trials // 2))
        return strategy.RegularizedEvolution(population_size=population, sample_size=max(1, population // 2),
                                             seed=seed, dedup=True)
    if name == "random":
        return strategy.Random(seed=seed, dedup=True)
    if name == "tpe":
        # NNI's TpeTuner minimises by default; our trials report accuracy, which must be maximised
        return strategy.TPE(optimize_mode="maximize", seed=seed)
    raise SearchError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")


def _check_run_files(out: Path) -> None:
    """``run.json`` and ``trials.jsonl``, where they exist, must be regular files: a folder in their place cannot
    be read as a run (IsADirectoryError), a named pipe would block the read forever."""
    for name in (RUN_FILE, RECORDS):
        kind = file_kind(out / name)
        if kind is not None:
            raise SearchError(f"{str(out / name)!r} is {kind}, not archscale's {name} (a regular file), so the "
                              f"search in {str(out)!r} cannot be read or continued; move it away, or choose another "
                              f"--out")


def _stored_identity(identity: dict) -> dict:
    """A run.json identity in today's words: an earlier version's ``hook.preset``/``hook.init`` read as ``hook.init``
    and ``hook.rate_rule`` (:func:`nni_archscale.rules.registry.stored_options`)."""
    hook = stored_options({k[len("hook."):]: v for k, v in identity.items() if k.startswith("hook.")})
    return {**{k: v for k, v in identity.items() if not k.startswith("hook.")},
            **{f"hook.{k}": v for k, v in hook.items()}}


def _check_out_dir(out: Path, identity: dict, resume: bool) -> dict | None:
    """Whether the search can start (or resume) in ``out``; returns the run's ``run.json`` when it resumes one.

    Resuming with any option of the run's identity changed is refused, except ``trials`` raised: the search is
    extended (the seeded strategy replays the candidates already trained from their records, then proposes new
    ones). Lowering ``trials`` is refused: the records already hold more candidates than asked for, and the
    summary would report them all."""
    _check_run_files(out)
    run_file = out / RUN_FILE
    if resume and not run_file.exists() and not (out / RECORDS).exists():
        raise SearchError(f"nothing to resume in {str(out)!r}: it holds no search ({RUN_FILE} and {RECORDS} are "
                          f"absent); drop --resume to start one there, or point --out at the search to continue")
    if run_file.exists():
        try:
            previous = json.loads(run_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            previous = None
        if not resume:
            raise SearchError(
                f"{str(out)!r} already holds a search; pass --resume to continue it, or choose another --out"
            )
        if not isinstance(previous, dict) or not isinstance(previous.get("identity"), dict):
            # never trusted: run.json is written atomically, so a corrupt one was not written by this tool
            raise SearchError(
                f"cannot resume the search in {str(out)!r}: {RUN_FILE} is unreadable or not archscale's, so the "
                f"options cannot be checked; remove {RUN_FILE} and {RECORDS} to start over, or choose another --out"
            )
        before = _stored_identity(previous["identity"])
        if before != identity:
            changed = sorted(k for k in set(identity) | set(before)
                             if k != "trials" and before.get(k) != identity.get(k))
            if changed:
                raise SearchError(
                    f"cannot resume the search in {str(out)!r}: options changed ({', '.join(changed)}); rerun with "
                    f"the same options (--trials may grow, to extend the search), or choose another --out"
                )
            was, now = before.get("trials"), identity.get("trials")
            if isinstance(was, int) and isinstance(now, int) and now < was:
                raise SearchError(
                    f"cannot resume the search in {str(out)!r} with --trials {now}: it is a search of --trials "
                    f"{was}, which may grow but not shrink; resume with --trials {was}, or more to extend it"
                )
        return previous
    elif (out / RECORDS).exists():
        # without run.json the records' options (and run id) are unknown: resuming would mix them into this run
        raise SearchError(f"{str(out)!r} holds trial records ({RECORDS}) of an unknown run but no {RUN_FILE}, so "
                          f"{'they cannot be resumed' if resume else 'they would be mixed with this run'}; "
                          f"move {RECORDS} away to start over there, or choose another --out")
    return None


class _Progress(threading.Thread):
    """Follows ``trials.jsonl`` (written by trials in this or another process) and shows a tqdm bar."""

    def __init__(self, path: Path, total: int, enabled: bool, run_id: str):
        super().__init__(daemon=True)
        self.path, self.total, self.enabled, self.run_id = path, total, enabled, run_id
        self.stop_event = threading.Event()

    def run(self):
        from tqdm import tqdm

        bar = tqdm(total=self.total, desc="archscale search", unit="cand", disable=not self.enabled, leave=True)
        seen = 0
        while True:
            stopping = self.stop_event.wait(0.5)
            recs = [r for r in read_records(self.path) if r.get("mode") == "archscale" and r.get("run") == self.run_id]
            # a candidate counts once its rule arm has a first result (with --seeds every arm trains it again)
            firsts = [r for r in recs if r.get("replica", 0) == 0]
            if len(firsts) > seen:
                bar.update(min(len(firsts), self.total) - min(seen, self.total))
                seen = len(firsts)
                ok = [r["accuracy"] for r in firsts if r["status"] == "ok"]
                bar.set_postfix(best=f"{max(ok):.3f}" if ok else "-", last=firsts[-1]["status"])
            if stopping:
                break
        bar.close()


def run_search(opts: SearchOptions, report=print) -> dict:
    """Run the search; returns the summary (also written to ``<out>/summary.json``)."""
    if opts.engine not in ENGINES:
        raise SearchError(f"unknown engine {opts.engine!r}; use one of {', '.join(ENGINES)}")
    if opts.strategy not in STRATEGIES:
        raise SearchError(f"unknown strategy {opts.strategy!r}; use one of {', '.join(STRATEGIES)}")
    if opts.compare is not None and opts.compare not in COMPARISONS:
        raise SearchError(f"unknown comparison {opts.compare!r}; use one of {', '.join(COMPARISONS)}")
    if opts.seeds < 1:
        raise SearchError(f"seeds must be at least 1, got {opts.seeds}")
    from .spaces import SPACE_NAMES

    if opts.space not in SPACE_NAMES:
        raise SearchError(f"unknown space {opts.space!r}; use one of {', '.join(SPACE_NAMES)}")
    if opts.strategy == "tpe" and opts.space != "nb201":
        raise SearchError(f"NNI's TPE cannot search {opts.space} (it fails on spaces with InputChoice or "
                          f"mutable widths); use --strategy evolution or random")
    from .spaces import check_space_options

    check_space_options(opts.space, opts.space_options or {})  # before the data, the calibration and any trial
    problem = data_dir_problem(opts.dataset, opts.data_dir)
    if problem:
        raise SearchError(problem)
    refusal = out_dir_refusal(opts.out, "--out", SEARCH_FILES, "archscale-search")
    if refusal:
        raise OutputError(refusal)
    created = missing_dirs(opts.out)  # removed again if the run fails before anything is written there
    try:
        out = prepare_out_dir(opts.out)
    except BaseException:
        remove_created_dirs(created)
        raise
    if not opts.resume:
        try:
            _check_not_tracked(out)
        except BaseException:
            remove_created_dirs(created)
            raise
    lock = OutDirLock(out, report)
    try:
        lock.acquire()
    except BaseException:
        remove_created_dirs(created)  # a lock file there may be another run's: then the folder stays
        raise
    state: dict = {}
    try:
        summary = _run_locked(opts, out, report, state)
    except BaseException:
        if state.get("run_file") and not (out / RECORDS).exists():
            # a new search that failed before any trial recorded anything: its run.json would only make the next
            # attempt ask for --resume (NNI's logs of the failure stay, under nni/)
            try:
                (out / RUN_FILE).unlink()
            except OSError:
                pass
        lock.release(remove=created)
        raise
    lock.release()
    return summary


def _run_locked(opts: SearchOptions, out: Path, report, state: dict) -> dict:
    """The search in ``out``, whose lock this process holds; ``state["run_file"]`` is set once it wrote a new
    search's run.json. In order: the run's identity against the folder's, the data and device, the base rates
    (:func:`_base_rates`), run.json, the base network's reference, the NNI experiment (:func:`_run_experiment`),
    the summary."""
    rule = opts.hook
    identity = {k: getattr(opts, k) for k in _IDENTITY}
    identity.update({f"hook.{k}": v for k, v in rule.to_dict().items() if k not in ("base_lr", "batch_size")})
    previous = _check_out_dir(out, identity, opts.resume) or {}
    was = (previous.get("identity") or {}).get("trials")
    # the trials the strategy is sized for: those the search started with (an extended search replays it)
    strategy_trials = previous.get("strategy_trials") or was or opts.trials
    if isinstance(was, int) and opts.trials > was:
        report(f"archscale: extending the search in {out} from {was} to {opts.trials} candidates (--trials); the "
               f"candidates already trained are reused")
    device, data = _device_and_data(opts, report)
    base_lr, shared_lr, calibration = _base_rates(opts, report)

    run_id = previous.get("run_id") or f"{int(time.time())}-{os.getpid()}"
    # compile: as asked (None: auto, on CUDA runs of at least 5,000 steps); not part of the identity (speed only)
    atomic_write_text(out / RUN_FILE, json.dumps({"identity": identity, "run_id": run_id, "base_lr": base_lr,
                                                  "shared_lr": shared_lr, "calibration": calibration,
                                                  "strategy_trials": strategy_trials, "compile": opts.compile,
                                                  "device": str(device)}, indent=2)
                      + "\n")
    state["run_file"] = not previous
    hook = replace(rule, base_lr=base_lr, batch_size=opts.batch_size)  # serialised once, for NNI's trials below
    reference = _reference(opts, data, hook, report)
    data_dir = str(Path(opts.data_dir).expanduser().resolve()) if opts.data_dir else None  # trials run elsewhere
    # ts on a local GPU pins the trials to card N (CUDA_VISIBLE_DEVICES=N, training_service.experiment_config):
    # inside a trial that card is cuda:0, so the trials are told "cuda"
    remote = opts.training_service != "local"
    trial_device = "cuda" if opts.engine == "ts" and not remote and str(device).startswith("cuda:") else device
    trial_cfg = {"out_dir": str(out), "dataset": opts.dataset, "data_dir": data_dir, "limit": opts.limit,
                 "epochs": opts.epochs, "batch_size": opts.batch_size, "seed": opts.seed, "device": trial_device,
                 "hook": hook.to_dict(), "reference": reference, "compare": opts.compare, "shared_lr": shared_lr,
                 "seeds": opts.seeds, "resume": True, "run_id": run_id,
                 "threads": opts.threads, "speed": {"compile": opts.compile, "augment": opts.augment}}
    if opts.resume:
        done = {(r["arch"], r["mode"], r.get("replica", 0)) for r in read_records(out / RECORDS)
                if r.get("run") == run_id and r["mode"] != "start"}
        report(f"archscale: resuming {out}: {len(done)} training run(s) already done are reused")

    interrupted, seconds = _run_experiment(opts, out, data, trial_cfg, strategy_trials, device, run_id, report)
    meta = {"space": space_name(opts.space, opts.width, opts.cells_per_stage, opts.space_options or None),
            "rate_rule": rule.rate_rule, "reference": reference, "dataset": opts.dataset,
            "engine": opts.engine, "training_service": opts.training_service if opts.engine == "ts" else None,
            "concurrency": opts.concurrency, "strategy": opts.strategy, "init": rule.scheme.value,
            "trials": opts.trials,
            "epochs": opts.epochs, "batch_size": opts.batch_size, "seed": opts.seed, "seeds": opts.seeds,
            "base_lr": base_lr, "calibration": calibration, "compile": opts.compile,
            "optimizer": rule.optimizer, "device": device, "compare": opts.compare, "run_id": run_id,
            "search_seconds": round(seconds, 2), "interrupted": interrupted,
            "baseline": opts.compare, "baseline_recipe": BASELINE_DESCRIPTIONS.get(opts.compare),
            "shared_lr": shared_lr if opts.compare == "shared-rate" else None}
    records = [r for r in read_records(out / RECORDS) if r.get("run") == run_id]
    if not records:
        raise SearchError(f"no candidate finished (see the NNI logs under {out / NNI_DIR}); nothing to report")
    summary = write_outputs(out, meta, opts.compare)
    if interrupted:
        raise SearchInterrupted("partial results written; continue with the same command plus --resume")
    return summary


def _device_and_data(opts: SearchOptions, report):
    """The device the search reports (a remote worker picks its own: "auto" there; only the spelling is checked
    here) and the data, loaded once here for calibration, the reference and the sequential engine's trials."""
    from ..torch_layer.data import load_dataset
    from ..torch_layer.train import pick_device

    remote = opts.training_service != "local"
    device = str(pick_device(opts.device)) if not remote else (opts.device or "auto")
    if remote:
        pick_device("cpu" if str(device).startswith("cuda") else device)
    if opts.threads:
        import torch

        torch.set_num_threads(opts.threads)  # calibration and sequential-engine trials run in this process
    data = load_dataset(opts.dataset, opts.data_dir, opts.limit, opts.seed)
    report(f"archscale: data {data.describe()}; device {device}; engine {opts.engine}; strategy {opts.strategy}")
    if opts.compile and len(data.train) < opts.batch_size:
        report(f"archscale: note: --compile has no effect here: {len(data.train)} training images make no full "
               f"batch of {opts.batch_size}, and only full batches run compiled")
    elif opts.compile and str(device) == "cpu":
        report("archscale: note: --compile on the CPU compiles every candidate with torch.compile (fp32), about a "
               "minute each before it trains, which these small networks rarely win back; drop it to train eagerly")
    return device, data


def _base_rates(opts: SearchOptions, report) -> tuple[float, float | None, dict | None]:
    """``(base_lr, shared_lr, calibration)``: the base rate ``c`` (``opts.base_lr``, else calibrated with the init's
    per-edge variances: ``exact`` as ``paper``, as the experiments do) and, for ``--compare shared-rate``, the
    shared rate (``opts.shared_lr``, else tuned on the same base network by the same recipe with He's init: the
    baseline a user has); ``calibration`` says where each came from (None: both given)."""
    rule = opts.hook
    base_lr, shared_lr, calibration = opts.base_lr, opts.shared_lr, None
    if base_lr is None:
        cal = _calibrated(opts, rule.scheme.rule.name, "calibrating base rate", report)
        base_lr = cal.base_lr
        calibration = {"base_lr": cal.base_lr, "source": cal.source, "key": cal.key,
                       "resolution_octaves": cal.resolution_octaves, "widened": cal.widened}
        report(f"archscale: base rate c = {cal.describe()}; {cal.key}")
    if opts.compare == "shared-rate" and shared_lr is None:
        cal = _calibrated(opts, Init.STANDARD.value, "tuning the shared rate", report)
        shared_lr = cal.base_lr
        calibration = dict(calibration or {}, shared_lr=cal.base_lr, shared_key=cal.key,
                           shared_resolution_octaves=cal.resolution_octaves)
        report(f"archscale: shared rate (baseline) = {cal.describe()}; {cal.key}")
    return base_lr, shared_lr, calibration


def _calibrated(opts: SearchOptions, init: str, what: str, report):
    """The refined calibration on the base network drawn with ``init`` (cached), with a progress bar, by the
    family's base-rate objective (``--calibration-objective``, else
    :data:`nni_archscale.rules.defaults.BASE_RATE_OBJECTIVES`)."""
    from tqdm import tqdm

    from ..rules.defaults import base_rate_objective
    from .adapters import space_family
    from .calibration import default_cache_path

    rule = opts.hook
    device = None if opts.training_service != "local" else opts.device
    objective = opts.calibration_objective or base_rate_objective(space_family(opts.space))
    if objective != "maxlr":
        from ..fairness.objectives import budget_rate, calibration_options

        fo = calibration_options(
            opts.space, opts.dataset, opts.epochs, opts.batch_size, {**rule.to_dict(), "init": init},
            data_dir=opts.data_dir, limit=opts.limit, width=opts.width, cells_per_stage=opts.cells_per_stage,
            seed=opts.seed, space_options=opts.space_options or {}, device=device)
        report(f"archscale: {what} by objective {objective} (the search's {opts.epochs} epoch(s))")
        return budget_rate(fo, objective, 0.1, opts.cache_path or default_cache_path(), progress=opts.progress,
                           report=report)
    bar = tqdm(total=opts.calibration_points, desc=what, unit="lr", disable=not opts.progress)
    try:
        return calibrate_space(
            CalibrationOptions(opts.space, opts.dataset, opts.data_dir, opts.width, opts.cells_per_stage,
                               rule.optimizer, opts.batch_size, init, seed=opts.seed, device=device,
                               limit=opts.limit, points=opts.calibration_points, momentum=rule.momentum,
                               weight_decay=rule.weight_decay, space_options=opts.space_options or None),
            cache_path=opts.cache_path, progress=bar_progress(bar), report=report)
    finally:
        bar.close()


def _reference(opts: SearchOptions, data, hook: HookConfig, report) -> dict | None:
    """The base network's measurements, for the measured and segmented rules (cheap: one step on one batch);
    None, with a warning, when the base network cannot be measured (a space that cannot be built raises)."""
    try:
        return space_reference(opts.space, data, hook, opts.width, opts.cells_per_stage,
                               opts.space_options or None, opts.seed).to_dict()
    except SpaceError:  # the space itself cannot be built: every candidate would fail the same way
        raise
    except ArchScaleError as exc:  # only the measured and segmented rules need it; they say so per candidate
        report(f"archscale: warning: the base network could not be measured ({exc}); the measured rule falls "
               f"back to one shared rate and the segmented rule to the graph rule's base")
        return None


def _run_experiment(opts: SearchOptions, out: Path, data, trial_cfg: dict, strategy_trials: int, device,
                    run_id: str, report) -> tuple[bool, float]:
    """Build NNI's experiment (the space, a FunctionalEvaluator running :func:`.trial.search_trial` with
    ``trial_cfg``, the strategy) and run it, NNI's console lines in ``out/nni/console.log``, the progress bar
    reading the records; ``(interrupted, seconds)``. NNI's registry entry is removed when it ends."""
    console = _NniConsole(out / NNI_DIR / NNI_CONSOLE_LOG, None if opts.quiet_nni else logging.INFO)
    console.__enter__()
    code_dir = trial_code_directory(out, opts.training_service)
    try:
        code_dir.__enter__()
    except BaseException:
        console.__exit__(None, None, None)
        raise
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nni.nas.evaluator import FunctionalEvaluator
            from nni.nas.experiment import NasExperiment
            from .spaces import build_space
            from .trial import search_trial

            overrides = dict(opts.space_options)
            if opts.space == "nb201":
                overrides = {"stem_out_channels": opts.width, "num_modules_per_stack": opts.cells_per_stage,
                             **overrides}
            space = build_space(opts.space, data.num_classes, image_size=data.image_size, **overrides)
            evaluator = FunctionalEvaluator(search_trial, config=trial_cfg)
            strategy = _strategy(opts.strategy, strategy_trials, opts.seed)
            config = experiment_config(opts.engine, opts.training_service, opts.trials, opts.concurrency, device,
                                       out / NNI_DIR, opts.machines, manager_ip=opts.manager_ip)
            exp = NasExperiment(space, evaluator, strategy, config)
    except BaseException:
        code_dir.__exit__(None, None, None)
        console.__exit__(None, None, None)
        raise

    progress = _Progress(out / RECORDS, opts.trials, opts.progress, run_id)
    progress.start()
    interrupted = False
    t0 = time.perf_counter()
    try:  # code_dir and console were entered above (before the experiment was built)
        try:
            # NNI catches Ctrl-C itself (logs "KeyboardInterrupt detected", stops) and then returns None
            # instead of True: that is an interruption too, to be continued with --resume
            if exp.run(port=opts.manager_port or _free_port()) is None:
                interrupted = True
        except KeyboardInterrupt:
            interrupted = True
        finally:
            try:
                exp.stop()
            finally:
                progress.stop_event.set()
                progress.join(timeout=5)
                # NNI registered the experiment in ~/nni-experiments/.experiment and never unregisters it
                forget_nni_experiments(out / NNI_DIR, [exp.id], report)
    finally:
        try:
            code_dir.__exit__(None, None, None)
        finally:
            console.__exit__(None, None, None)
    return interrupted, time.perf_counter() - t0

