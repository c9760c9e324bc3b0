#!/usr/bin/env bash
# The three-arm NAS test (issue 17.3) at the paper's scale: CIFAR-10, NNI's NasBench201 at C = 16, N = 5,
# 200 epochs, batch 256, augmentation (random crop + flip, as NAS-Bench-201), on a GPU. The same arms and
# statement as reports/nb201-3arm/PREREGISTRATION.md; commit a statement of your own before running it.
#
#   bash scripts/three_arm_cifar10.sh DATA_DIR [extra archscale options, which override the ones below]
#
# DATA_DIR holds cifar-10-batches-py/ (the python archive, extracted; nothing is downloaded). The published
# NAS-Bench-201 table is read from $ARCHSCALE_NB201_TABLE (or --published PATH). Cost: about 8 min per run at
# 21,000 images/s (issue 15's figure for the all-conv_3x3 cell on an H200, torch.compile), so 40 cells x 3 seeds x
# 3 arms = 360 runs is about 48 GPU-hours one run at a time: far beyond a 15-minute device session. runs.csv is
# rewritten after every run, so an interrupted run keeps what finished; --epochs lowers the cost.
set -euo pipefail
if [ "$#" -lt 1 ]; then
  echo "usage: bash scripts/three_arm_cifar10.sh DATA_DIR [archscale experiment nb201 options]" >&2
  exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data_dir="$1"
shift
archscale="${ARCHSCALE:-$root/.venv/bin/archscale}"
exec "$archscale" experiment nb201 --dataset cifar10 --data-dir "$data_dir" --cells 40 --seeds 3 --epochs 200 \
  --width 16 --cells-per-stage 5 --batch-size 256 --recipes benchmark,shared,archscale --augment \
  --device cuda --no-progress --out "${OUT:-reports/nb201-3arm-cifar10}" "$@"
