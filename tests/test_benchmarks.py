"""The benchmark entry point runs and reports (a smoke test; the figures themselves are not asserted)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_run_all_quick_paths_prints_the_summary():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--only", "paths"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "paths: DP speed-up at 14 nodes" in out.stdout and "summary" in out.stdout


def test_every_benchmark_has_a_run_entry_point():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run_all

    for module in run_all.BENCHMARKS.values():
        assert callable(getattr(__import__(module), "run")), module


def test_run_all_quick_startup_prints_the_times_and_a_verdict():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--quick", "--only", "startup"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "startup: archscale inspect NB201, seconds" in out.stdout and "summary" in out.stdout
    assert "PASS: " in out.stdout or "FAIL: " in out.stdout  # the verdict is printed, not asserted


def test_the_dag_cell_hook_benchmark_measures_every_rule(monkeypatch, capsys):
    """run_all.py --quick --only dag-cell-hook, in this process and at width 32 instead of 256 (the figures are not
    asserted; the two run_all tests above start it as a script)."""
    import functools
    import logging

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import bench_dag_cell_hook
    import run_all

    monkeypatch.setattr(bench_dag_cell_hook, "run", functools.partial(bench_dag_cell_hook.run, width=32))
    monkeypatch.setattr(sys, "argv", ["run_all.py", "--quick", "--only", "dag-cell-hook"])
    logger = logging.getLogger("nni_archscale")
    level = logger.level
    try:
        assert run_all.main() == 0
    finally:
        logger.setLevel(level)  # the benchmark quiets the package's logger for its own run
    out = capsys.readouterr().out
    assert "hook readout-limited-sgd ms" in out and "readout-limited-sgd hook / training step" in out
