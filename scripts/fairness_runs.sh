#!/usr/bin/env bash
# The pre-registered fairness runs (reports/fairness/PREREGISTRATION.md), in order; re-running resumes each.
# OUT (default reports/fairness) is where the run folders go.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
out="${OUT:-reports/fairness}"
py=".venv/bin/python"
common=(--seeds 3 --batch-size 64 --optimizer sgd --init paper --workers 2 --no-progress)
resume() { if [ -f "$1/run.json" ]; then echo --resume; fi; }
for epochs in 2 8 32; do
  d="$out/dagcell-e$epochs"
  $py -m nni_archscale fairness --space dagcell --dataset mnist --limit 2000 --candidates 40 --dag-width 64 \
      --epochs "$epochs" "${common[@]}" --out "$d" $(resume "$d")
done
d="$out/nb201"
$py -m nni_archscale fairness --space nb201 --dataset mnist --limit 1500 --candidates 40 --epochs 2 --width 8 \
    --cells 1 --benchmark-lr 0.1 --published "${NB201_TABLE:-../shared/data/nb201_accuracies.csv}" \
    "${common[@]}" --out "$d" $(resume "$d")
d="$out/darts"
$py -m nni_archscale fairness --space darts --dataset digits --limit 600 --candidates 20 --epochs 2 --benchmark-lr 0.025 \
    --seeds 2 --batch-size 64 --optimizer sgd --init paper --workers 2 --no-progress --out "$d" $(resume "$d")
