"""benchmarks/gpu_check.py: CPU-only CI runs its no-GPU path (a message, exit status 0, nothing measured) and its
--dry-run, every phase of the device run on the CPU at tiny sizes (the concurrency phase's trainer processes in the
slow set)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest_nni import one_thread  # noqa: F401

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
    for option in ("--width", "--cells", "--batch-size", "--search-trials", "--data-dir", "--json", "--out",
                   "--budget-s", "--dry-run", "--concurrency", "--no-compile", "--peak-tflops"):
        assert option in done.stdout


def test_the_grid_check_compares_two_devices(monkeypatch):
    """The CPU-vs-CUDA grid comparison, run with the CPU standing in for the GPU: identical losses and rates."""
    import torch

    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    out = gpu_check.grid_check(torch.device("cpu"), width=8, quick=True)
    assert out["max_abs_loss_diff"] == 0.0 and out["same_divergence"]
    assert out["cpu_best_rates"] == out["cuda_best_rates"] and len(out["cpu_best_rates"]) == 2


def _check_dry_run_report(out, copy, workers: bool):
    import json

    f = json.loads((out / "gpu_check.json").read_text())
    assert f["errors"] == [] and json.loads(copy.read_text()) == f
    assert f["gflop_per_image"] > 0 and f["rounds"] == 2
    names = [r["variant"] for r in f["variants"]]
    assert names == ["eager fp32 b8", "eager bf16+cl b16 (A)", "eager bf16+cl b16 (A')",
                     "eager bf16+cl b16 hook off", "compile bf16+cl b16"]
    for r in f["variants"]:
        assert r["images_per_s"] > 0 and 0 < r["ratio_to_best"] <= 1 and r["cifar10_200_epochs_min"] > 0
        assert r["optimizer_kernel"] == "fused"
    assert max(r["ratio_to_best"] for r in f["variants"]) == 1.0
    for key in ("aa_ratio", "hook_on_off"):
        assert len(f[key]["per_round"]) == 2 and f[key]["min"] <= f[key]["median"] <= f[key]["max"]
    e = f["end_to_end"]
    assert e["status"] == "ok" and len(e["epoch_s"]) == 2 and e["images_per_s"] > 0 and "augment" in e["speed"]
    rows = {r["k"]: r for r in f["concurrency"]["rows"]}
    assert set(rows) == {1, 2} and len(rows[2]["per_process"]) == 2 and rows[1]["vs_k1"] == 1.0
    assert all(r["aggregate_images_per_s"] > 0 for r in rows.values())
    if workers:
        assert f["concurrency"]["startup_s"] > 0
    assert f["hook_ms"] and f["peak_bf16_tflops"] is None  # the CPU has no bf16 peak in the table
    md = (out / "gpu_check.md").read_text()
    for text in ("| variant | batch | images/s (median)", "ratio to best", "A/A", "Hook on/off",
                 "fast path end to end", "| K | aggregate images/s"):
        assert text in md, text


def test_gpu_check_dry_run_measures_every_phase_and_writes_its_report(tmp_path, monkeypatch, capsys, one_thread):
    """--dry-run: every phase of the device run on the CPU at tiny sizes (C=4 N=1, batches 8/16, 2 interleaved
    rounds, torch.compile with the eager backend), written as JSON and markdown under --out. The script's main runs
    in this process, and the concurrency phase's trainer processes (each a new Python importing torch and NNI:
    most of the dry run's time) are left to the slow test below: here the phase is asked for K = 1, 2 and its
    figures are a stand-in of the same form, so that the report writing around them is still checked."""
    out = tmp_path / "report"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(sys, "path", list(sys.path))  # main puts the checkout and benchmarks/ in front of it
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    asked = []

    def concurrency(args, dev, clock, figures, save):
        asked.append((args.concurrency, args.batch_size, str(dev)))
        rows = [{"k": 1, "aggregate_images_per_s": 100.0, "per_process": [100.0], "vs_k1": 1.0},
                {"k": 2, "aggregate_images_per_s": 150.0, "per_process": [75.0, 75.0], "vs_k1": 1.5}]
        figures["concurrency"] = {"batch": args.batch_size, "variant": "stand-in", "window_s": 1.0,
                                  "startup_s": 0.0, "rows": rows, "best_k": 2}
        save()

    monkeypatch.setattr(gpu_check, "concurrency", concurrency)
    code = gpu_check.main(["--dry-run", "--out", str(out), "--concurrency", "1,2",
                           "--json", str(tmp_path / "copy.json")])
    printed = capsys.readouterr()
    assert code == 0, printed.out[-2000:] + printed.err[-2000:]
    assert asked == [("1,2", 8, "cpu")]
    _check_dry_run_report(out, tmp_path / "copy.json", workers=False)


@pytest.mark.slow
def test_gpu_check_dry_run_as_a_script_with_its_trainer_processes(tmp_path):
    """The whole --dry-run as a script, the concurrency phase included: 2 trainer processes started, readied,
    and run in rounds K = 1 and K = 2 (about 20 s more than the test above, nearly all of it their start-up)."""
    out = tmp_path / "report"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--concurrency", "1,2",
                           "--json", str(tmp_path / "copy.json")], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    _check_dry_run_report(out, tmp_path / "copy.json", workers=True)


def test_peak_figures_and_card_names(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import gpu_check

    assert gpu_check.peak_tflops("NVIDIA H200", None)[0] == 989.4
    assert gpu_check.peak_tflops("NVIDIA H200 NVL", None)[0] == 835.5
    assert gpu_check.peak_tflops("Some GPU", None)[0] is None and gpu_check.peak_tflops("x", 100.0)[0] == 100.0
    assert gpu_check.card_slug("NVIDIA H200") == "h200"
