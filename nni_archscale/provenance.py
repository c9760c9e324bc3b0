"""Pre-registration anyone can verify: what a run ran from, and whether it may be scored as held out.

Every ``archscale experiment ...`` run writes ``run.json`` into its output folder (:func:`write_run_record`)
with the fields of :func:`provenance`: the commit of the checkout the package ran from, whether that checkout's
tracked files were clean, and the start time (UTC). Those three fields are what :func:`held_out` needs to decide,
from git alone, whether a run was made *after* a rule and the statement of its test were committed.

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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping

from .errors import NotHeldOutError

#: the file every experiment writes into its output folder
RUN_FILE = "run.json"

#: where the project's rules are registered by name: the scaling rules, the paper's presets, the research variants,
#: and the rules the lr-prediction harness scores (``readout-limited-sgd`` was first registered there)
RULE_PATHS = ("nni_archscale/scaling_rules.py", "nni_archscale/rules.py", "nni_archscale/experiments/rule_variants.py",
              "nni_archscale/experiments/lr_prediction.py")

#: where the project's pre-registered statements are written
STATEMENT_PATH = "reports/beyond-paper/README.md"

#: how far a run's recorded start may precede its commit's committer time (clocks of two machines)
CLOCK_SKEW = timedelta(minutes=5)

_SHA = re.compile(r"^[0-9a-f]{40}$")


def _git(repo: Path, *args: str, timeout: float = 20.0) -> str | None:
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
    top = _git(repo, "rev-parse", "--show-toplevel")
    try:
        if top is None or Path(top.strip()).resolve() != repo.resolve():
            return out
    except OSError:
        return out
    head = _git(repo, "rev-parse", "--verify", "HEAD^{commit}")
    if head is None or not _SHA.match(head.strip()):
        return out  # a checkout without a commit yet
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
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


def read_run_record(path: str | Path) -> dict:
    """``run.json`` of a run folder (or the file itself), for :func:`held_out`."""
    p = Path(path)
    if p.is_dir():
        p = p / RUN_FILE
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotHeldOutError(f"{str(p)!r} does not exist: the run predates recorded provenance (or is not a run "
                              "folder); it can only be reported as exploratory", "no-commit") from None
    except (OSError, ValueError) as exc:
        raise NotHeldOutError(f"{str(p)!r} is unreadable ({exc}); it cannot vouch for the run; re-run it",
                              "no-commit") from None


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _parse_time(text) -> datetime | None:
    try:
        t = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)


def held_out(run: Mapping, rule: str, statement: str | None, *, statement_path: str = STATEMENT_PATH,
             rule_paths: str | Iterable[str] = RULE_PATHS, repo_dir: str | Path | None = None,
             ref: str = "HEAD") -> dict:
    """Decide whether ``run`` (a ``run.json`` record) may be scored as held out for ``rule``; raise if not.

    The contract. A run is held out for ``rule`` under ``statement`` only if all of these hold, checked in this
    order in the git repository ``repo_dir`` (default: :func:`package_repo`):

    1. ``run["commit"]`` is a full sha (the run recorded where it ran from; reason ``no-commit``),
    2. that commit exists in ``repo_dir`` (``unknown-commit``) and is an ancestor of ``ref`` (default HEAD), so
       it is part of the history doing the scoring, not a side branch made for the purpose (``not-in-history``),
    3. ``run["clean"]`` is True: no tracked file differed from that commit when the run started, so the commit
       is the code that ran (``dirty``; an unknown cleanliness, None, is refused too),
    4. ``run["finished"]`` is set (an interrupted run's record may sit beside an older run's results;
       ``unfinished``), and ``run["started"]`` is a time no earlier than the commit's committer time (less
       :data:`CLOCK_SKEW`): a run cannot start from a commit that did not exist yet (``no-start``,
       ``started-before-commit``),
    5. at that commit the rule is defined: its name, quoted (``"name"`` or ``'name'``), appears in one of
       ``rule_paths`` (``git show COMMIT:PATH``; default :data:`RULE_PATHS`, where rules are registered;
       ``rule-missing``),
    6. at that commit ``statement_path`` exists and, when ``statement`` is given, contains it (compared with
       runs of whitespace collapsed, so a re-wrapped paragraph still matches; case-sensitive). Pass the test's
       decision rule or its run commands, words that could not have been written by chance; ``statement=None``
       means the file itself is the statement (a dedicated pre-registration file; ``statement-missing``).

    Since the commit existed when the run started, 5 and 6 mean the rule and the statement were committed
    before the run, which is what "held out" claims; 1-4 make the run's record bind it to that commit. What this
    cannot show: that nobody looked at *other* results of the same cells before committing (a run folder that
    was never committed is invisible to git), and that ``run.json`` itself was not edited; compare it with the
    commit that added the results.

    Returns the evidence: ``{"commit", "committed", "started", "rule", "rule_path", "statement_path"}``
    (``committed``: the commit's committer time). Raises :class:`~nni_archscale.errors.NotHeldOutError`, whose
    message says why and what to do and whose ``reason`` is the code above.
    """
    repo = Path(repo_dir) if repo_dir is not None else package_repo()
    todo = ("report the run as exploratory, or commit the rule and the statement, then re-run the experiment from "
            "a clean checkout of that commit")
    if not str(rule).strip():
        raise NotHeldOutError("no rule named: held_out needs the registered name of the rule being tested",
                              "rule-missing")
    commit = run.get("commit")
    if not isinstance(commit, str) or not _SHA.match(commit):
        raise NotHeldOutError(f"the run records no commit ({commit!r}): it predates recorded provenance or ran "
                              f"outside a git checkout, so git cannot show what it ran from; {todo}", "no-commit")
    if _git(repo, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise NotHeldOutError(f"commit {commit[:12]} is not in the repository at {str(repo)!r} (or git is "
                              "missing there): score the run in a checkout that holds its history (fetch it)",
                              "unknown-commit")
    head = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    if head is None or _git(repo, "merge-base", "--is-ancestor", commit, head.strip()) is None:
        raise NotHeldOutError(f"commit {commit[:12]} is not in the history of {ref}: a pre-registration must be "
                              f"part of the published history; merge it, or {todo}", "not-in-history")
    if run.get("clean") is not True:
        what = "unknown" if run.get("clean") is None else "dirty (tracked files differed from it)"
        changed = run.get("changed") or []
        more = f" ({', '.join(map(str, changed[:5]))}{', ...' if len(changed) > 5 else ''})" if changed else ""
        raise NotHeldOutError(f"the run's checkout at {commit[:12]} was {what}{more}, so the commit is not the "
                              f"code that ran; {todo}", "dirty")
    if not run.get("finished"):
        raise NotHeldOutError(f"the run records no finish time: it was interrupted (or its record was written "
                              f"before its results), so its results may come from another run; {todo}",
                              "unfinished")
    started = _parse_time(run.get("started"))
    if started is None:
        raise NotHeldOutError(f"the run records no readable start time ({run.get('started')!r}); {todo}",
                              "no-start")
    committed = _parse_time((_git(repo, "show", "-s", "--format=%cI", commit) or "").strip())
    if committed is not None and started < committed - CLOCK_SKEW:
        raise NotHeldOutError(f"the run says it started at {started.isoformat()}, before its commit {commit[:12]} "
                              f"was made ({committed.isoformat()}): its record is inconsistent; {todo}",
                              "started-before-commit")
    paths = (rule_paths,) if isinstance(rule_paths, str) else tuple(rule_paths)
    found = None
    for path in paths:
        text = _git(repo, "show", f"{commit}:{path}")
        if text is not None and (f'"{rule}"' in text or f"'{rule}'" in text):
            found = path
            break
    if found is None:
        raise NotHeldOutError(f"rule {rule!r} is not defined at the run's commit {commit[:12]} (its quoted name is "
                              f"in none of {', '.join(paths)} there): the run predates the rule; {todo}",
                              "rule-missing")
    text = _git(repo, "show", f"{commit}:{statement_path}")
    if text is None:
        raise NotHeldOutError(f"the statement file {statement_path!r} does not exist at the run's commit "
                              f"{commit[:12]}: the run predates the statement; {todo}", "statement-missing")
    if statement is not None:
        if not _normalise(statement):
            raise NotHeldOutError("the statement is empty: pass the pre-registered text (the decision rule or the "
                                  "run commands), or None when the whole file is the statement", "statement-missing")
        if _normalise(statement) not in _normalise(text):
            raise NotHeldOutError(f"{statement_path!r} at the run's commit {commit[:12]} does not contain the "
                                  f"statement {_normalise(statement)[:80]!r}: it was written (or changed) after the "
                                  f"run started; {todo}", "statement-missing")
    return {"commit": commit, "committed": None if committed is None else committed.isoformat(),
            "started": started.isoformat(), "rule": rule, "rule_path": found, "statement_path": statement_path}
