"""Regenerate every committed report from its records in a temporary folder and compare it with the committed
files, one line per file (:mod:`nni_archscale.experiments.regenerate`). Exit status 1 when a file differs.

    python scripts/regenerate_reports.py                 # every report folder under reports/
    python scripts/regenerate_reports.py nb201 mup/depth # the named folders (relative to reports/)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nni_archscale.experiments.regenerate import check_reports


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent / "reports"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="*", help="report folders relative to reports/ (default: all)")
    p.add_argument("--root", type=Path, default=root, help=f"the reports folder (default {root})")
    args = p.parse_args(argv)
    checks = check_reports(args.root, args.folders or None)
    for c in checks:
        print(c.line(), flush=True)
    counts = {s: sum(c.status == s for c in checks) for s in ("identical", "differs", "not regenerable")}
    print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 1 if counts["differs"] else 0


if __name__ == "__main__":
    sys.exit(main())
