#!/usr/bin/env bash
# The main job on the embedded default data. Sets up .venv if needed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
exec .venv/bin/python examples/inspect_cells.py "$@"
