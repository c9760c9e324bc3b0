"""Start-up: wall time of ``archscale --help`` and ``archscale inspect <NAS-Bench-201 string>`` against a bare
``python -c pass`` (goal: each under 0.5 s; issue 14, "Start-up"). Run: python benchmarks/bench_startup.py

Each command is a fresh process of this interpreter (``python -m nni_archscale ...``, what the ``archscale`` entry
point runs); the three commands take turns, round after round, so drift in the machine's load touches all of them
alike, and each figure is the median over the rounds. The ratio column is each command's time over the bare
interpreter's.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import print_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
GOAL_S = 0.5
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "archscale --help": ["-m", "nni_archscale", "--help"],
    "archscale inspect NB201": ["-m", "nni_archscale", "inspect", NB201],
}


def _wall(args: list[str]) -> float:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return elapsed


def measure(rounds: int) -> dict[str, float]:
    """Median wall seconds of each command over ``rounds`` interleaved rounds (after one untimed warm-up round)."""
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for name, args in COMMANDS.items():  # warm the file cache and the bytecode
        _wall(args)
    for _ in range(rounds):
        for name, args in COMMANDS.items():
            times[name].append(_wall(args))
    return {name: statistics.median(ts) for name, ts in times.items()}


def run(quick: bool = False) -> list[tuple[str, float]]:
    """Entry point for ``benchmarks/run_all.py`` (``quick``: 5 rounds, else 15)."""
    rounds = 5 if quick else 15
    med = measure(rounds)
    base = med["python -c pass"]
    rows = [(name, s, s / base, "-" if name == "python -c pass" else ("yes" if s < GOAL_S else "NO"))
            for name, s in med.items()]
    print_table(f"start-up wall time, median of {rounds} interleaved rounds ({sys.executable})",
                ("command", "seconds", "/ python -c pass", f"< {GOAL_S} s"), rows)
    worst = max(s for name, s in med.items() if name != "python -c pass")
    verdict = "PASS" if worst < GOAL_S else "FAIL"
    print(f"\n{verdict}: slowest archscale command {worst:.3f} s (goal < {GOAL_S} s)")
    return [("startup: archscale --help, seconds", med["archscale --help"]),
            ("startup: archscale inspect NB201, seconds", med["archscale inspect NB201"]),
            ("startup: inspect NB201 / python -c pass", med["archscale inspect NB201"] / base)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 rounds instead of 15")
    run(ap.parse_args().quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
