"""Provenance in run.json and the held-out check: a temporary git repository stands in for the project."""

import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from nni_archscale.errors import ArchScaleError
from nni_archscale.experiments.held_out import NotHeldOutError, held_out, read_run_record
from nni_archscale.provenance import (
    RUN_FILE, package_repo, provenance, write_run_record,
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

RULES = "nni_archscale/rules/first_step.py"
STATEMENTS = "reports/beyond-paper/README.md"
STATEMENT = ("Decision rule: `new-rule` becomes the default if its mean error, averaged over the two new runs, "
             "is lower than the incumbent's.")


@pytest.fixture(autouse=True)
def git_identity(monkeypatch, tmp_path):
    """Commits work on a machine without git config, and the user's config cannot change them."""
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1",
                       "GIT_CONFIG_GLOBAL": str(tmp_path / "no-gitconfig")}.items():
        monkeypatch.setenv(key, value)


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def commit_file(repo, path, text, message):
    f = repo / path
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path):
    """History: the old rule only (c0), then the new rule (c1), then the statement of its test (c2)."""
    r = tmp_path / "project"
    r.mkdir()
    git(r, "init", "-q")
    c0 = commit_file(r, RULES, 'RULES = ("old-rule",)\n', "old rule")
    c1 = commit_file(r, RULES, 'RULES = ("old-rule", "new-rule")\n', "new rule")
    c2 = commit_file(r, STATEMENTS, "# Tests\n\nDecision rule: `new-rule` becomes the default if its mean\nerror, "
                                    "averaged over the two new runs, is lower than the incumbent's.\n", "statement")
    return r, {"old": c0, "rule": c1, "statement": c2}


def finished(prov):
    return {**prov, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def test_provenance_of_a_clean_checkout(repo):
    r, commits = repo
    prov = provenance(r)
    assert prov["commit"] == commits["statement"] and prov["clean"] is True and "changed" not in prov
    started = datetime.fromisoformat(prov["started"])
    assert started.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - started) < timedelta(minutes=1)
    (r / "reports" / "beyond-paper" / "new-run").mkdir()  # another run's output folder: untracked, still clean
    (r / "reports" / "beyond-paper" / "new-run" / "runs.csv").write_text("x\n")
    assert provenance(r)["clean"] is True


def test_provenance_of_a_dirty_checkout(repo):
    r, commits = repo
    (r / RULES).write_text('RULES = ("old-rule", "new-rule", "edited")\n')
    prov = provenance(r)
    assert prov["commit"] == commits["statement"] and prov["clean"] is False and prov["changed"] == [RULES]
    git(r, "add", RULES)  # staged but not committed: still not the commit's code
    assert provenance(r)["clean"] is False


def test_provenance_outside_a_checkout_is_none_not_an_error(tmp_path, repo, monkeypatch):
    plain = tmp_path / "plain"
    plain.mkdir()
    prov = provenance(plain)
    assert prov["commit"] is None and prov["clean"] is None and datetime.fromisoformat(prov["started"])
    r, _ = repo
    inside = r / "reports"  # inside a checkout but not its top (a venv's site-packages, say): not credited
    assert provenance(inside)["commit"] is None
    assert provenance(tmp_path / "missing")["commit"] is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))  # git missing
    prov = provenance(r)
    assert prov["commit"] is None and prov["clean"] is None and set(prov) == {"commit", "clean", "started"}


def test_held_out_accepts_a_clean_run_after_rule_and_statement(repo):
    r, commits = repo
    run = finished(provenance(r))
    got = held_out(run, "new-rule", STATEMENT, repo_dir=r, statement_path=STATEMENTS, rule_paths=RULES)
    assert got["commit"] == commits["statement"] and got["rule_path"] == RULES
    assert got["statement_path"] == STATEMENTS and got["committed"] <= got["started"]
    # a whole file as the statement (a dedicated pre-registration file)
    assert held_out(run, "new-rule", None, repo_dir=r, statement_path=STATEMENTS, rule_paths=RULES)
    # a later commit that does not touch the rule or statement changes nothing
    commit_file(r, "notes.txt", "later\n", "unrelated")
    assert held_out(run, "new-rule", STATEMENT, repo_dir=r, statement_path=STATEMENTS, rule_paths=RULES)


def refusal(run, r, rule="new-rule", statement=STATEMENT):
    with pytest.raises(NotHeldOutError) as info:
        held_out(run, rule, statement, repo_dir=r, statement_path=STATEMENTS, rule_paths=RULES)
    assert isinstance(info.value, ArchScaleError)
    return info.value


def test_held_out_refuses_a_dirty_run(repo):
    r, _ = repo
    (r / RULES).write_text('RULES = ("old-rule", "new-rule", "tuned")\n')
    err = refusal(finished(provenance(r)), r)
    assert err.reason == "dirty" and "dirty" in str(err) and RULES in str(err)
    assert "re-run the experiment from a clean checkout" in str(err)
    unknown = {**finished(provenance(r)), "clean": None}
    assert refusal(unknown, r).reason == "dirty"


def test_held_out_refuses_a_run_older_than_the_rule(repo):
    r, commits = repo
    git(r, "checkout", "-q", commits["old"])
    run = finished(provenance(r))
    git(r, "checkout", "-q", "-")
    assert run["commit"] == commits["old"] and run["clean"] is True
    err = refusal(run, r)
    assert err.reason == "rule-missing" and "predates the rule" in str(err)


def test_held_out_refuses_a_run_older_than_the_statement(repo):
    r, commits = repo
    git(r, "checkout", "-q", commits["rule"])
    run = finished(provenance(r))
    git(r, "checkout", "-q", "-")
    err = refusal(run, r)
    assert err.reason == "statement-missing" and "predates the statement" in str(err)
    # the statement file existed but said something else: edited after the run started
    c3 = commit_file(r, STATEMENTS, "# Tests\n\nto be decided\n", "vague statement")
    commit_file(r, STATEMENTS, "# Tests\n\n" + STATEMENT + "\n", "statement written after the run")
    vague = {**run, "commit": c3}
    err = refusal(vague, r)
    assert err.reason == "statement-missing" and "does not contain the statement" in str(err)


def test_held_out_refuses_records_that_cannot_vouch_for_the_run(repo, tmp_path):
    r, commits = repo
    good = finished(provenance(r))
    assert refusal({**good, "commit": None}, r).reason == "no-commit"  # the runs before provenance
    assert refusal({k: v for k, v in good.items() if k != "commit"}, r).reason == "no-commit"
    assert refusal({**good, "commit": "f" * 40}, r).reason == "unknown-commit"
    assert refusal({**good, "finished": None}, r).reason == "unfinished"
    assert refusal({**good, "started": "yesterday"}, r).reason == "no-start"
    early = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    assert refusal({**good, "started": early}, r).reason == "started-before-commit"
    assert refusal(good, r, rule="no-such-rule").reason == "rule-missing"
    assert refusal(good, r, rule="new").reason == "rule-missing"  # the quoted name, not a substring
    assert refusal(good, r, statement="  ").reason == "statement-missing"
    # a commit on a side branch, never merged into the history doing the scoring
    git(r, "checkout", "-q", "-b", "side")
    side = commit_file(r, "side.txt", "x\n", "side")
    git(r, "checkout", "-q", "-")
    assert refusal({**good, "commit": side}, r).reason == "not-in-history"
    # read_run_record: a folder without run.json is a run that predates provenance
    with pytest.raises(NotHeldOutError, match="predates recorded provenance"):
        read_run_record(tmp_path)


def test_run_record_round_trips(repo, tmp_path):
    r, _ = repo
    prov = provenance(r)
    out = tmp_path / "out"
    rec = write_run_record(out, "lr-prediction", {"width": 16, "inits": ("paper",)}, prov, finished=True, seconds=1.5)
    assert read_run_record(out) == json.loads((out / RUN_FILE).read_text()) == json.loads(json.dumps(rec))
    assert rec["experiment"] == "lr-prediction" and rec["finished"] and rec["config"]["width"] == 16
    assert held_out(read_run_record(out), "new-rule", STATEMENT, repo_dir=r, statement_path=STATEMENTS,
                    rule_paths=RULES)
    unfinished = write_run_record(out, "nb201", {}, prov)
    assert unfinished["finished"] is None


def test_an_experiment_writes_its_provenance_into_run_json(tmp_path, capsys):
    """The smallest lr-prediction run (as in test_experiment_lr_prediction) records where it ran from."""
    from nni_archscale.cli import main

    out = tmp_path / "lrp"
    assert main(["experiment", "lr-prediction", "--cells", "2", "--seeds", "1", "--width", "8", "--limit", "64",
                 "--per-octave", "1", "--sgd-grid", "0.25", "4", "--inits", "paper", "--out", str(out)]) == 0
    capsys.readouterr()
    rec = json.loads((out / RUN_FILE).read_text())
    assert rec["experiment"] == "lr-prediction" and rec["config"]["width"] == 8
    assert {"commit", "clean", "started", "finished"} <= set(rec)
    assert datetime.fromisoformat(rec["started"]) <= datetime.fromisoformat(rec["finished"])
    here = provenance(package_repo())
    assert rec["commit"] == here["commit"]  # this checkout's commit, or None outside a checkout
    if rec["commit"] is None:
        assert rec["clean"] is None
    else:
        assert len(rec["commit"]) == 40 and isinstance(rec["clean"], bool)
