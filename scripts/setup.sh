#!/usr/bin/env bash
# Creates .venv (once) and installs the project into it; re-installs only when pyproject.toml changes.
# Needs only python3.11 and pip. torch 2.13.0 (CPU) comes from the local wheel cache, installed first so that
# nothing pulls a multi-GB CUDA build.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.nni-archscale-installed"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing dependencies into .venv (first run: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "is ignored: it is neither" || true
  # mup (the App. E.3 baseline) declares torchvision and seaborn, which would pull a CUDA torch; it needs neither
  .venv/bin/python -m pip install -q --no-deps "mup==1.0.0" 2>&1 | grep -v "is ignored: it is neither" || true
  .venv/bin/python -c "import nni_archscale, symbolic, torch, nni, sympy, networkx, hypothesis, xdist, mup" \
    || { echo "[setup] installation failed: see the pip messages above" >&2; exit 1; }
  echo "$want" > "$stamp"
fi
