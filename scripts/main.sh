#!/usr/bin/env bash
# The main job on the embedded default data (scikit-learn's digits): a real NNI NAS search in which every
# candidate gets its own init and learning rate, compared with NNI's default recipe. Sets up .venv if needed.
# Extra arguments go to `archscale search` (e.g. --trials 30 --epochs 5, --engine ts, --preset release).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
out="out/search"
args=(--trials 12 --epochs 2 --compare --out "$out")
if [ -f "$out/run.json" ]; then
  args+=(--resume)  # a finished or interrupted earlier run continues instead of being refused
fi
exec .venv/bin/archscale search "${args[@]}" "$@"
