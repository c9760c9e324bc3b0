"""Whether a run may be scored as held out for a rule: the research's pre-registration check, from git alone.

A run's ``run.json`` (:mod:`nni_archscale.provenance`) records the commit it ran from, whether the checkout was
clean and when it started; :func:`held_out` decides from those and the repository's history whether the rule and
the statement of its test were committed before the run. The product never imports this module.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Mapping

from ..errors import ArchScaleError
from ..provenance import FULL_SHA, RUN_FILE, git_stdout, package_repo


class NotHeldOutError(ArchScaleError, ValueError):
    """A run cannot be scored as held out for a rule: its record does not prove that the rule and the
    pre-registered statement existed, committed, before it ran (see :func:`held_out`).
    ``reason`` is a short machine-readable code (``no-commit``, ``unknown-commit``, ``not-in-history``, ``dirty``,
    ``unfinished``, ``no-start``, ``started-before-commit``, ``rule-missing``, ``statement-missing``)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


#: where the project's rules are registered by name: the first-step rules, the paper's presets, the research
#: variants, and the rules the lr-prediction harness scores (``readout-limited-sgd`` was first registered there).
#: Read at each run's own commit, so the paths before issue 24's relayout (``scaling_rules.py``, ``rules.py``) stay
#: beside the same modules' paths since.
RULE_PATHS = ("nni_archscale/scaling_rules.py", "nni_archscale/rules.py", "nni_archscale/rules/first_step.py",
              "nni_archscale/rules/paper.py", "nni_archscale/experiments/rule_variants.py",
              "nni_archscale/experiments/lr_prediction.py")

#: where the project's pre-registered statements are written
STATEMENT_PATH = "reports/beyond-paper/README.md"

#: how far a run's recorded start may precede its commit's committer time (clocks of two machines)
CLOCK_SKEW = timedelta(minutes=5)


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
    if not isinstance(commit, str) or not FULL_SHA.match(commit):
        raise NotHeldOutError(f"the run records no commit ({commit!r}): it predates recorded provenance or ran "
                              f"outside a git checkout, so git cannot show what it ran from; {todo}", "no-commit")
    if git_stdout(repo, "cat-file", "-e", f"{commit}^{{commit}}") is None:
        raise NotHeldOutError(f"commit {commit[:12]} is not in the repository at {str(repo)!r} (or git is "
                              "missing there): score the run in a checkout that holds its history (fetch it)",
                              "unknown-commit")
    head = git_stdout(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    if head is None or git_stdout(repo, "merge-base", "--is-ancestor", commit, head.strip()) is None:
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
    committed = _parse_time((git_stdout(repo, "show", "-s", "--format=%cI", commit) or "").strip())
    if committed is not None and started < committed - CLOCK_SKEW:
        raise NotHeldOutError(f"the run says it started at {started.isoformat()}, before its commit {commit[:12]} "
                              f"was made ({committed.isoformat()}): its record is inconsistent; {todo}",
                              "started-before-commit")
    paths = (rule_paths,) if isinstance(rule_paths, str) else tuple(rule_paths)
    found = None
    for path in paths:
        text = git_stdout(repo, "show", f"{commit}:{path}")
        if text is not None and (f'"{rule}"' in text or f"'{rule}'" in text):
            found = path
            break
    if found is None:
        raise NotHeldOutError(f"rule {rule!r} is not defined at the run's commit {commit[:12]} (its quoted name is "
                              f"in none of {', '.join(paths)} there): the run predates the rule; {todo}",
                              "rule-missing")
    text = git_stdout(repo, "show", f"{commit}:{statement_path}")
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
