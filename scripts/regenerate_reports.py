"""Regenerate every committed report from its records in a temporary folder and compare it with the committed
files, one line per file (:mod:`nni_archscale.experiments.regenerate`). Exit status 1 when a file differs in a way
reports/regeneration-baseline.json does not record (or a recorded difference changed or has gone).

    python scripts/regenerate_reports.py                 # every report folder under reports/
    python scripts/regenerate_reports.py nb201 mup/depth # the named folders (relative to reports/)
    python scripts/regenerate_reports.py --update-baseline  # record the differences of a full check (keeps the
                                                            # recorded causes; a new entry needs its "why")
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import json

from nni_archscale.experiments.regenerate import BASELINE, baseline_problems, check_reports, read_baseline, \
    updated_baseline


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent / "reports"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", help="report folders relative to reports/ (default: all)")
    p.add_argument("--root", type=Path, default=root, help=f"the reports folder (default {root})")
    p.add_argument("--update-baseline", action="store_true",
                   help=f"write the differences found to {BASELINE} (a full check only), keeping their causes")
    args = p.parse_args(argv)
    if args.update_baseline and args.folders:
        p.error("--update-baseline records a full check: name no folders")
    checks = check_reports(args.root, args.folders or None)
    for c in checks:
        print(c.line(), flush=True)
    counts = {s: sum(c.status == s for c in checks) for s in ("identical", "differs", "not regenerable")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    baseline = read_baseline(args.root)
    if args.update_baseline:
        new = updated_baseline(checks, baseline)
        (args.root / BASELINE).write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
        missing = [k for k, v in new.items() if not v["why"]]
        print(f"wrote {len(new)} entries to {args.root / BASELINE}" +
              (f"; {len(missing)} need their cause ('why'): {', '.join(missing)}" if missing else ""))
        return 1 if missing else 0
    problems = baseline_problems(checks, baseline)
    for line in problems:
        print(f"beyond the baseline: {line}")
    print(f"{len(problems)} difference(s) beyond reports/{BASELINE}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
