#!/usr/bin/env bash
# The test command: sets up .venv if needed, then runs the fast test suite (slow and GPU tests are opt-in:
# pass -m slow, or -m "slow or not slow" for everything). Other arguments go to pytest as they are
# (bash scripts/test.sh -x, -q, a test file...) and keep the fast selection unless they include -m; the tests run on
# two processes (pytest-xdist) unless the arguments choose.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/setup.sh"
cd "$root"
marker_given=0
workers_given=0
for arg in "$@"; do
  case "$arg" in
    -m | -m?* | --markexpr | --markexpr=*) marker_given=1 ;;
    -n | -n?* | --numprocesses | --numprocesses=* | no:xdist | -pno:xdist | --collect-only | --co) workers_given=1 ;;
  esac
done
if [ "$marker_given" -eq 0 ]; then
  set -- -m "not slow and not gpu" "$@"
fi
# pytest-xdist: the tests on 2 processes (CI's 2 cores; 1.7x: 134 s instead of 226 s for the fast set), unless
# the caller chose (-n N, -p no:xdist, --collect-only) or ARCHSCALE_TEST_WORKERS says otherwise (0: one process)
if [ "$workers_given" -eq 0 ]; then
  set -- -n "${ARCHSCALE_TEST_WORKERS:-2}" "$@"
fi
exec .venv/bin/python -m pytest "$@"
