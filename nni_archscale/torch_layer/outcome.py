"""How a training run ends, shared by both training loops (:mod:`.train`'s plain loop and :mod:`.fast_train`).

A run ends ``ok`` (the last epoch's validation accuracy), ``diverged`` (a non-finite training or validation loss)
or ``oom`` (out of memory, the CUDA cache emptied): outcomes, not crashes, so that a NAS search can report them
and go on. :func:`close_epoch` is the end of an epoch in either loop (validate, record, report).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch


def is_oom(exc: BaseException) -> bool:
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass
class TrainResult:
    status: str                      # ok | diverged | oom
    accuracy: float                  # validation accuracy after the last completed epoch (chance when failed)
    train_loss: float                # mean training loss of the last epoch (nan when failed)
    epochs: int
    steps: int
    seconds: float
    samples_per_second: float
    message: str = ""
    history: list = field(default_factory=list)


@torch.no_grad()
def close_epoch(epoch: int, train_loss: float, validate: Callable[[], tuple[float, float]] | None,
                history: list[dict], on_epoch: Callable[[int, dict], None] | None, chance: float, steps: int,
                t0: float, seen: int, train_time: float) -> TrainResult | None:
    """The end of an epoch, in both training loops: validate (``validate() -> (accuracy, loss)``; None without
    validation data), record the epoch's metrics and report them to ``on_epoch``. A non-finite validation loss is
    the outcome ``diverged`` (returned); otherwise None."""
    metrics = {"epoch": epoch + 1, "train_loss": train_loss}
    if validate is not None:
        acc, vloss = validate()
        metrics.update(val_acc=acc, val_loss=vloss)
        if not math.isfinite(vloss):
            return TrainResult("diverged", chance, float("nan"), epoch + 1, steps, time.perf_counter() - t0,
                               seen / max(train_time, 1e-9), "validation loss is not finite", history)
    history.append(metrics)
    if on_epoch is not None:
        on_epoch(epoch, metrics)
    return None


def out_of_memory(exc: BaseException, device: torch.device, chance: float, history: list[dict], steps: int,
                  t0: float) -> TrainResult:
    """Running out of memory is the outcome ``oom`` (the CUDA cache is emptied); call it for an OOM exception only
    (:func:`is_oom`)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return TrainResult("oom", chance, float("nan"), len(history), steps, time.perf_counter() - t0, 0.0,
                       f"out of memory: {str(exc).splitlines()[0][:200]}", history)


def finished(history: list[dict], chance: float, last_loss: float, steps: int, t0: float, seen: int,
             train_time: float) -> TrainResult:
    """The outcome ``ok``: the last epoch's validation accuracy (chance without validation data)."""
    acc = history[-1].get("val_acc", chance) if history else chance
    return TrainResult("ok", acc, last_loss, len(history), steps, time.perf_counter() - t0,
                       seen / max(train_time, 1e-9), "", history)
