"""Shared fixtures for tests that start NNI experiments or trial processes (import them into a test module:
``from conftest_nni import no_leaked_nnimanager``; pytest picks fixtures up from the module's namespace).

``no_leaked_nnimanager`` fails a test after which an nnimanager (``node .../nni_node/main.js``) that the test
started is still running, and stops it so that one failure does not leak into the next test. "Started by the
test" means: a descendant of this pytest process, or one whose command line names the test's ``tmp_path``
(NNI passes the experiment working directory, which our tests put under ``tmp_path``). nnimanagers of other
sessions on the same machine are never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest


def nnimanager_pids() -> list[int]:
    """Process ids of running nnimanagers (``node .../nni_node/main.js``): none must outlive a run."""
    pids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "nni_node/main.js" in cmd:
            pids.append(int(entry))
    return pids


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            # the command name may hold spaces and parentheses: the fields after the last ')' are fixed
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def is_descendant(pid: int, ancestor: int | None = None) -> bool:
    ancestor = os.getpid() if ancestor is None else ancestor
    seen = set()
    while pid and pid not in seen:
        seen.add(pid)
        if pid == ancestor:
            return True
        pid = _parent(pid) or 0
    return False


def children_of(ancestor: int) -> list[int]:
    """Every live descendant of ``ancestor`` (from /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != ancestor and is_descendant(int(entry), ancestor):
            out.append(int(entry))
    return out


def stop_pids(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds, each process we started (by pid)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if Path(f"/proc/{p}").exists() and _state(p) != "Z"]
        time.sleep(0.1)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def our_nnimanagers(tmp_path: Path | None = None) -> list[int]:
    mine = []
    for pid in nnimanager_pids():
        if _state(pid) == "Z":
            continue
        if is_descendant(pid) or (tmp_path is not None and str(tmp_path) in _cmdline(pid)):
            mine.append(pid)
    return mine


@pytest.fixture
def no_leaked_nnimanager(tmp_path):
    yield
    deadline = time.monotonic() + 10  # NNI stops its manager asynchronously after exp.stop()
    leaked = our_nnimanagers(tmp_path)
    while leaked and time.monotonic() < deadline:
        time.sleep(0.5)
        leaked = our_nnimanagers(tmp_path)
    if leaked:
        stop_pids(leaked)
        pytest.fail(f"nnimanager process(es) {leaked} outlived the test (stopped now)")


@pytest.fixture
def one_thread(monkeypatch):
    """Tiny models on a shared 2-core machine: one intra-op thread is several times faster than two (in this
    process, and through OMP_NUM_THREADS for trial subprocesses). Use with ``autouse`` via ``usefixtures``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def contained(config):
    """NNI's files for one test experiment in a temporary folder (``config.experiment_working_directory``), and
    its entry in NNI's registry ``~/nni-experiments/.experiment`` removed afterwards, as ``archscale search`` does
    (:func:`nni_archscale.nni_glue.search.forget_nni_experiments`): a test leaves nothing in the user's home."""
    from nni_archscale.nni_glue.search import forget_nni_experiments

    with tempfile.TemporaryDirectory(prefix="archscale-test-nni-") as folder:
        config.experiment_working_directory = folder
        try:
            yield config
        finally:
            forget_nni_experiments(Path(folder), report=lambda message: None)
