#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the fast test suite (slow and GPU tests are opt-in:
# pass -m slow, or -m "slow or not slow" for everything).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
if [ "$#" -eq 0 ]; then
  set -- -m "not slow and not gpu"
fi
exec .venv/bin/python -m pytest "$@"
