"""benchmarks/gpu_check.py: CPU-only CI runs its no-GPU path (a message, exit status 0, nothing measured)."""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_without_cuda_exits_cleanly():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # hides any GPU: the path CPU-only CI takes
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no CUDA device is available" in done.stdout and "nothing to measure" in done.stdout
    assert "Traceback" not in done.stderr


def test_gpu_check_help_lists_its_options():
    done = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for option in ("--width", "--cells", "--batch-size", "--search-trials", "--data-dir", "--json"):
        assert option in done.stdout


def test_the_grid_check_compares_two_devices(monkeypatch):
    """The CPU-vs-CUDA grid comparison, run with the CPU standing in for the GPU: identical losses and rates."""
    import torch

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    out = gpu_check.grid_check(torch.device("cpu"), width=8, quick=True)
    assert out["max_abs_loss_diff"] == 0.0 and out["same_divergence"]
    assert out["cpu_best_rates"] == out["cuda_best_rates"] and len(out["cpu_best_rates"]) == 2
