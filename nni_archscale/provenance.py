"""Where a run came from: the commit, whether the checkout was clean, when it started (``run.json``).

Every ``archscale experiment ...`` and ``archscale fairness`` run writes ``run.json`` into its output folder
(:func:`write_run_record`) with the fields of :func:`provenance`: the commit of the checkout the package ran from,
whether that checkout's tracked files were clean, and the start time (UTC). Those three fields are what the
research's held-out check (:func:`nni_archscale.experiments.held_out.held_out`) needs to decide, from git alone,
whether a run was made *after* a rule and the statement of its test were committed.

Everything here is a pure function of its arguments and of the git repository it is pointed at; git is run as a
subprocess with optional locks off (``GIT_OPTIONAL_LOCKS=0``), so recording provenance never takes the index
lock of a checkout somebody is committing in, and a missing git, a folder that is not a checkout, or any git
failure gives ``None`` fields: recording provenance never fails an experiment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

#: the file every experiment writes into its output folder
RUN_FILE = "run.json"

#: a full commit sha
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def git_stdout(repo: Path, *args: str, timeout: float = 20.0) -> str | None:
    """``git -C repo ARGS``'s stdout, or None when git is missing, fails or hangs."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=timeout,
                             env=env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout if res.returncode == 0 else None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def package_repo() -> Path:
    """The folder holding the ``nni_archscale`` package: the checkout's top when it runs from a git checkout."""
    return Path(__file__).resolve().parents[1]


def provenance(repo_dir: str | Path | None = None) -> dict:
    """``{"commit": sha or None, "clean": bool or None, "started": ISO time, UTC}`` for a run starting now.

    ``repo_dir`` (default :func:`package_repo`, the code that runs) must be the *top* of a git checkout: a folder
    inside some other checkout (a virtual environment's site-packages under a project's tree, say) would
    otherwise be credited with that checkout's commit. ``clean`` is True when no tracked file differs from the
    commit (staged or not); untracked files (other runs' output folders, for instance) do not count, since the
    code that runs is tracked. ``commit`` and ``clean`` are None when git is missing, the folder is not the top
    of a checkout, or git fails; this function never raises for that. When the tree is dirty, ``changed`` lists
    up to 50 of the changed paths, so a reader can see what differed.
    """
    started = _now()
    repo = Path(repo_dir) if repo_dir is not None else package_repo()
    out: dict = {"commit": None, "clean": None, "started": started}
    top = git_stdout(repo, "rev-parse", "--show-toplevel")
    try:
        if top is None or Path(top.strip()).resolve() != repo.resolve():
            return out
    except OSError:
        return out
    head = git_stdout(repo, "rev-parse", "--verify", "HEAD^{commit}")
    if head is None or not FULL_SHA.match(head.strip()):
        return out  # a checkout without a commit yet
    status = git_stdout(repo, "status", "--porcelain", "--untracked-files=no")
    out["commit"] = head.strip()
    if status is not None:
        changed = [line[3:] for line in status.splitlines() if line.strip()]
        out["clean"] = not changed
        if changed:
            out["changed"] = changed[:50]
    return out


def write_run_record(out_dir: str | Path, experiment: str, config: Mapping, prov: Mapping,
                     finished: bool = False, **extra) -> dict:
    """Write ``out_dir/run.json`` (atomically): the experiment's name, its configuration, the :func:`provenance`
    fields ``prov`` taken when it started, ``finished`` (the UTC time now when ``finished``, else None: a run
    that was interrupted keeps a record saying so) and any ``extra`` JSON-able fields. Returns the record."""
    from .results import atomic_write_text

    record = {"experiment": experiment, **dict(prov), "finished": _now() if finished else None, **extra,
              "config": dict(config)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / RUN_FILE, json.dumps(record, indent=2, default=str) + "\n")
    return record
