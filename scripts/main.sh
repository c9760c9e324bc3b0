#!/usr/bin/env bash
# The main job on the embedded default data (scikit-learn's digits): a real NNI NAS search in which every
# candidate gets its own init and learning rate, compared with one shared rate tuned on the base network (3 seeds
# per arm: the gain with its 95% interval and the ranking noise floor). Sets up .venv if needed.
# Extra arguments go to `archscale search` (e.g. --trials 30 --epochs 5, --engine ts, --init release).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
out="out/search"
args=(--trials 12 --epochs 2 --compare shared-rate --seeds 3 --out "$out")
if [ "$#" -gt 0 ]; then
  out="out/search-$(date +%Y%m%d-%H%M%S)"  # other options make another experiment: give it its own directory
  args=(--trials 12 --epochs 2 --compare shared-rate --seeds 3 --out "$out")
elif [ -f "$out/run.json" ]; then
  args+=(--resume)  # the default run again: an interrupted or finished earlier run continues, nothing is retrained
fi
# one intra-op thread: these small candidates train several times faster than with two on a 2-core machine
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec .venv/bin/archscale search "${args[@]}" "$@"
