"""A small, fast classification training loop (GPU when present, else CPU).

Whole datasets sit on the device as tensors (:class:`~.data.ArrayData`); an epoch is a seeded permutation cut
into batches. A NaN/inf loss stops training with status ``diverged``; running out of memory stops it with status
``oom``; both are outcomes, not crashes, so that a NAS search can report them and go on.

``speed=`` chooses the loop: by default the plain loop below on the CPU (its results are the reference) and the
fast path of :mod:`.fast_train` on CUDA (bf16, channels_last, fused optimizer steps, ``torch.compile`` for long
runs, no host synchronisation inside the step loop); a :class:`~.fast_train.TrainSpeed` forces the fast path
with those options anywhere, ``speed=False`` forces the plain loop. Both loops end in the outcomes of
:mod:`.outcome` (:class:`~.outcome.TrainResult`).
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch
from torch import nn

from ..errors import SearchError
from .data import ArrayData
from . import fast_train as fast  # read at call time: tests and tools may replace its functions
from .outcome import TrainResult, close_epoch, finished, is_oom, out_of_memory


#: the device options that mean "a GPU when present, else the CPU" (``--device auto``, or none given)
AUTO_DEVICES = (None, "", "auto")


def device_request(requested: str | None) -> str | None:
    """The device a run asked for by name, or None when it asked for a GPU when present (:data:`AUTO_DEVICES`)."""
    return None if requested in AUTO_DEVICES else requested


def pick_device(requested: str | None = None) -> torch.device:
    """``cuda`` when available (or when asked), else ``cpu``."""
    if device_request(requested) is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(requested)
    except (RuntimeError, TypeError, ValueError):
        raise SearchError(f"unknown device {requested!r}; use --device auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):  # mps, xpu...: the trainers are written and tested for the CPU and CUDA
        raise SearchError(f"device {requested!r} is not supported; use --device auto, cpu, cuda or cuda:N (the "
                          f"trainers support the CPU and CUDA devices only)")
    if dev.type == "cuda" and not torch.cuda.is_available():

        raise SearchError(f"device {requested!r} requested but CUDA is not available; use --device cpu or auto")
    return dev


def evaluate(model: nn.Module, data: ArrayData, batch_size: int = 512) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``data``."""
    was = model.training
    model.eval()
    correct, loss_sum, n = 0, 0.0, len(data)
    device = data.y.device
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size), device=device)
        x, y = data.batch(idx)
        out = model(x)
        loss_sum += float(nn.functional.cross_entropy(out, y, reduction="sum"))
        correct += int((out.argmax(1) == y).sum())
    model.train(was)
    return correct / max(n, 1), loss_sum / max(n, 1)


def train_classifier(
    model: nn.Module,
    train: ArrayData,
    val: ArrayData | None,
    optimizer: torch.optim.Optimizer,
    epochs: int = 1,
    batch_size: int = 128,
    scheduler=None,
    seed: int = 0,
    max_steps: int | None = None,
    num_classes: int | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    speed=None,
) -> TrainResult:
    """Train with cross-entropy; returns accuracy, loss, throughput and an outcome status.

    ``scheduler`` is stepped once per optimisation step (build it with the total step count).
    ``on_step(step, loss)`` sees every step's loss (calibration records them); ``on_epoch(epoch, metrics)`` gets
    ``{"train_loss", "val_acc", "val_loss"}`` after each epoch (the NNI glue reports intermediate results).
    ``speed``: None (the plain loop on the CPU, the fast defaults on CUDA), False / "off" (the plain loop), True /
    "fast" / a dict / a :class:`~.fast_train.TrainSpeed` (the fast path, :func:`.fast_train.fast_train`; with
    it ``on_step`` gets every step's loss at the sync points, every ``speed.log_every`` steps).
    """
    chosen = fast.resolve_speed(speed, fast.model_device(model, train.y.device))
    if chosen is not None:
        return fast.fast_train(model, train, val, optimizer, epochs, batch_size, scheduler, seed, max_steps,
                          num_classes, on_epoch, on_step, chosen)
    device = train.y.device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = len(train)
    chance = 1.0 / num_classes if num_classes else 0.0
    history: list[dict] = []
    steps, seen = 0, 0
    t0 = time.perf_counter()
    train_time = 0.0
    last_loss = float("nan")
    model.train()
    try:
        for epoch in range(epochs):
            te = time.perf_counter()
            perm = torch.randperm(n, generator=gen).to(device)
            loss_sum, count = 0.0, 0
            for start in range(0, n, batch_size):
                if max_steps is not None and steps >= max_steps:
                    break
                idx = perm[start:start + batch_size]
                x, y = train.batch(idx)
                out = model(x)
                loss = nn.functional.cross_entropy(out, y)
                value = float(loss.detach())
                if not math.isfinite(value):
                    return TrainResult("diverged", chance, float("nan"), epoch, steps, time.perf_counter() - t0,
                                       seen / max(train_time + time.perf_counter() - te, 1e-9),
                                       f"loss became {value} at step {steps}", history)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                if on_step is not None:
                    on_step(steps, value)
                steps += 1
                seen += int(idx.shape[0])
                loss_sum += value * int(idx.shape[0])
                count += int(idx.shape[0])
            train_time += time.perf_counter() - te
            last_loss = loss_sum / max(count, 1)
            validate = (lambda: evaluate(model, val)) if val is not None else None
            failed = close_epoch(epoch, last_loss, validate, history, on_epoch, chance, steps, t0, seen, train_time)
            if failed is not None:
                return failed
            if max_steps is not None and steps >= max_steps:
                break
    except BaseException as exc:  # noqa: BLE001 - only OOM is an outcome; everything else propagates
        if not is_oom(exc):
            raise
        return out_of_memory(exc, device, chance, history, steps, t0)
    return finished(history, chance, last_loss, steps, t0, seen, train_time)
