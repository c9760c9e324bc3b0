#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the fast test suite (slow and GPU tests are opt-in:
# pass -m slow, or -m "slow or not slow" for everything). Other arguments go to pytest as they are
# (bash scripts/test.sh -x, -q, a test file...) and keep the fast selection unless they include -m.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
marker_given=0
for arg in "$@"; do
  case "$arg" in
    -m | -m?* | --markexpr | --markexpr=*) marker_given=1 ;;
  esac
done
if [ "$marker_given" -eq 0 ]; then
  set -- -m "not slow and not gpu" "$@"
fi
exec .venv/bin/python -m pytest "$@"
