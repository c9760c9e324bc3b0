"""The trainer's fast path (issue 15): the same training as :func:`.train.train_classifier`, faster on a GPU.

What :class:`TrainSpeed` switches, each independently (tests/test_fast_train.py checks every combination keeps
the hook's init and learning rates):

* ``device_data``: the datasets move to the model's device once (batches are then one index operation);
* ``augment``: NAS-Bench-201's augmentation (random crop with ``augment_pad``-pixel zero padding, horizontal flip)
  on the device, in batched tensor ops, from a seeded device generator; a no-op for data that is not N,C,H,W.
  It changes the recipe, not only the speed, so it is off unless asked for (on the CPU and the GPU alike);
* ``bf16``: ``torch.autocast`` to bfloat16 (CUDA; allowed on the CPU too); the loss is taken in float32;
* ``channels_last``: model and batches in NHWC layout (values unchanged, the parameters stay the same objects);
* ``compile``: ``torch.compile`` of the model for the full-size training batches (a last, smaller batch and the
  evaluation run eagerly on the same parameters, so nothing recompiles). ``None`` (auto): on when the device is
  CUDA and the run has at least ``compile_min_steps`` steps (the compile, ~100 s for NB201 C=16 N=5, has to be
  amortised); ``True``/``False`` force it;
* ``fused``: the optimizer's fused kernel where torch has one for its class and the parameters' device (SGD,
  Adam, AdamW, Adagrad on CUDA and CPU), else its foreach implementation; set on the optimizer's groups in place
  (its scheduler stays attached, its learning rates untouched);
* ``log_every``: no host synchronisation inside the step loop: the losses stay on the device and are read every
  ``log_every`` steps and at the end of each epoch. Divergence (a non-finite loss) is detected at those points
  and reported as :mod:`.train` does (status ``diverged``, the first bad step named); ``on_step`` still sees
  every step's loss, in order, delivered at those points.

``train_classifier(..., speed=None)`` keeps today's loop on the CPU and uses ``TrainSpeed()`` (the fields'
defaults: bf16, channels_last, compile auto, fused, log every 50 steps, no augmentation) on CUDA.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import torch
from torch import nn

from .outcome import TrainResult, close_epoch, finished, is_oom, out_of_memory

log = logging.getLogger("nni_archscale")

#: optimizer classes with a fused kernel in torch (``torch.optim.<Name>(..., fused=True)``)
FUSED_OPTIMIZERS = ("SGD", "Adam", "AdamW", "Adagrad")


@dataclass(frozen=True)
class TrainSpeed:
    """How the fast path trains (not what: model, optimizer, rates, data, seeds and epochs are the caller's).
    The defaults are the GPU defaults."""

    device_data: bool = True
    augment: bool = False
    augment_pad: int = 4
    bf16: bool = True
    channels_last: bool = True
    #: None: auto (CUDA and at least ``compile_min_steps`` steps); True/False: forced
    compile: bool | None = None
    compile_min_steps: int = 5000
    #: torch.compile's ``mode`` (None: its default) and ``backend`` ("inductor"; "eager"/"aot_eager" for tests)
    compile_mode: str | None = None
    compile_backend: str = "inductor"
    fused: bool = True
    log_every: int = 50

    def __post_init__(self):
        if self.compile not in (None, True, False):
            raise ValueError(f"compile must be None (auto), True or False, got {self.compile!r}")
        if int(self.log_every) < 1:
            raise ValueError(f"log_every must be at least 1, got {self.log_every!r}")
        if int(self.augment_pad) < 0:
            raise ValueError(f"augment_pad must be >= 0, got {self.augment_pad!r}")

    @classmethod
    def exact(cls, **overrides) -> "TrainSpeed":
        """The fast loop with every numerics-changing option off (fp32, NCHW, eager, loss read every step)."""
        base = dict(bf16=False, channels_last=False, compile=False, fused=False, log_every=1)
        return cls(**{**base, **overrides})

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSpeed":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainSpeed field(s) {sorted(unknown)}; known: {sorted(names)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def use_compile(self, device: torch.device, total_steps: int) -> bool:
        if self.compile is not None:
            return bool(self.compile)
        return torch.device(device).type == "cuda" and total_steps >= self.compile_min_steps

    def describe(self, device=None, total_steps: int | None = None) -> str:
        comp = self.compile
        if comp is None and device is not None and total_steps is not None:
            comp = self.use_compile(device, total_steps)
        parts = ["bf16" if self.bf16 else "fp32", "channels_last" if self.channels_last else "NCHW",
                 "compile" if comp else ("eager" if comp is False else "compile=auto"),
                 "fused" if self.fused else "foreach", f"log_every={self.log_every}"]
        if self.augment:
            parts.append(f"augment(pad {self.augment_pad}, flip)")
        if not self.device_data:
            parts.append("host data")
        return ", ".join(parts)


def resolve_speed(speed, device: torch.device) -> TrainSpeed | None:
    """What ``train_classifier``'s ``speed=`` means: None -> the fast defaults on CUDA, today's loop (None)
    elsewhere; False / "off" -> today's loop; True / "fast" -> ``TrainSpeed()``; a dict -> its fields."""
    if speed is None:
        return TrainSpeed() if torch.device(device).type == "cuda" else None
    if speed is False or speed == "off":
        return None
    if speed is True or speed == "fast":
        return TrainSpeed()
    if isinstance(speed, TrainSpeed):
        return speed
    if isinstance(speed, dict):
        return TrainSpeed.from_dict(speed)
    raise TypeError(f"speed must be None, a bool, 'off', 'fast', a dict or a TrainSpeed, got {speed!r}")


def speed_for(device, compile: bool | None = None, augment: bool = False) -> TrainSpeed | None:
    """The trainer's options for a search or an experiment on ``device`` from its two user-facing switches
    (``--compile/--no-compile``, ``--augment``): on CUDA the fast defaults with them; on the CPU the plain loop
    (None) unless one is asked for, then the fast loop in fp32 / NCHW (the CPU's numerics) with it."""
    if torch.device(device).type == "cuda":
        return TrainSpeed(compile=compile, augment=augment)
    if not augment and not compile:
        return None
    return TrainSpeed.exact(augment=augment, compile=bool(compile), log_every=50)


# --------------------------------------------------------------------------- augmentation
def crop_flip(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor, pad: int) -> torch.Tensor:
    """Image ``i`` of ``x`` (N,C,H,W) zero-padded by ``pad``, cropped back to H x W at offset (dy[i], dx[i]) of the
    padded image and mirrored left-right where ``flip[i]``: two gathers, no per-image loop, no host sync."""
    b, c, h, w = x.shape
    dev = x.device
    padded = nn.functional.pad(x, (pad, pad, pad, pad))
    rows = dy[:, None] + torch.arange(h, device=dev)[None, :]                 # (b, h)
    cols = dx[:, None] + torch.arange(w, device=dev)[None, :]                 # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)                     # the flip: columns read backwards
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * pad))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def random_crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """NAS-Bench-201's training augmentation on a batch (random crop with ``pad``-pixel zero padding, horizontal
    flip with probability 1/2), drawn from ``generator`` (on ``x``'s device) in the order dy, dx, flip, as
    ``experiments.nb201_training.AugmentedArrayData`` draws them. Data that is not N,C,H,W (flat features) is returned
    unchanged. Zero padding after normalisation: the padded pixels are the data's mean."""
    if x.dim() != 4:
        return x
    b = x.shape[0]
    dev = x.device
    dy = torch.randint(0, 2 * pad + 1, (b,), device=dev, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=dev, generator=generator)
    flip = torch.rand(b, device=dev, generator=generator) < 0.5
    return crop_flip(x, dy, dx, flip, pad)


# --------------------------------------------------------------------------- setup
def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device(fallback)


def _to_device(data, device: torch.device):
    """``data`` on ``device`` when it can move (an ArrayData); a wrapper (e.g. an augmenting one) stays where it
    is and its batches are moved per step."""
    if data is None or data.y.device == device or not hasattr(data, "to"):
        return data
    return data.to(device)


def configure_optimizer(optimizer: torch.optim.Optimizer, fused: bool) -> str:
    """Switch ``optimizer``'s groups to the fused kernel (``fused``, where torch has one for its class and every
    parameter is a floating tensor on a supported device), else to foreach on CUDA; returns which. Only the
    implementation flags change: learning rates, momentum, weight decay and state stay as they are."""
    params = [p for g in optimizer.param_groups for p in g["params"]]
    groups = optimizer.param_groups
    if not params or not all("fused" in g and "foreach" in g for g in groups):
        return "default"
    if any(g.get("differentiable") for g in groups):
        return "default"
    if fused and type(optimizer).__name__ in FUSED_OPTIMIZERS:
        try:
            from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

            supported = set(_get_fused_kernels_supported_devices())
        except ImportError:  # an older torch: CUDA only
            supported = {"cuda"}
        if all(p.device.type in supported and p.is_floating_point() and not p.is_sparse for p in params):
            for g in groups:
                g["fused"], g["foreach"] = True, False
            return "fused"
    if all(p.device.type == "cuda" for p in params):
        for g in groups:
            g["fused"], g["foreach"] = False, True
        return "foreach"
    return "default"


@dataclass
class _Pending:
    """Losses still on the device, not yet looked at (steps ``first``..)."""

    first: int = 0
    losses: list = field(default_factory=list)


def _first_bad(values: list[float]) -> int | None:
    for i, v in enumerate(values):
        if not math.isfinite(v):
            return i
    return None


@torch.no_grad()
def evaluate_fast(model: nn.Module, data, speed: TrainSpeed, device: torch.device,
                  batch_size: int = 512) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``data`` under ``speed``'s precision and layout; one host
    synchronisation at the end."""
    was = model.training
    model.eval()
    n = len(data)
    data_dev = data.y.device
    loss_sum = torch.zeros((), dtype=_acc_dtype(device), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size), device=data_dev)
        x, y = data.batch(idx)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if speed.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with _autocast(device, speed.bf16):
            out = model(x)
        out = out.float()
        loss_sum += nn.functional.cross_entropy(out, y, reduction="sum").to(loss_sum.dtype)
        correct += (out.argmax(1) == y).sum()
    model.train(was)
    loss_value, correct_value = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
    return int(correct_value) / max(n, 1), loss_value / max(n, 1)


def _acc_dtype(device: torch.device) -> torch.dtype:
    """float64 accumulators (the reference loop sums in Python floats), float32 where the device has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


def _autocast(device: torch.device, bf16: bool):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def prepare_fast(model: nn.Module, optimizer: torch.optim.Optimizer, speed: TrainSpeed, device: torch.device,
                 total_steps: int):
    """The fast path's setup on ``model`` and ``optimizer``, in place: layout, optimizer kernel, compile.
    Returns ``(step_model, info)``: the module to call for full training batches (``model`` itself, or its
    compiled wrapper sharing its parameters) and what was chosen."""
    if speed.channels_last:
        model.to(memory_format=torch.channels_last)  # in place: same Parameter objects, same values
    kernel = configure_optimizer(optimizer, speed.fused)
    compiled = speed.use_compile(device, total_steps)
    step_model = model
    if compiled:
        step_model = torch.compile(model, mode=speed.compile_mode, backend=speed.compile_backend)
    return step_model, {"optimizer_kernel": kernel, "compile": compiled}


# --------------------------------------------------------------------------- the step loop
def fast_train(
    model: nn.Module,
    train,
    val,
    optimizer: torch.optim.Optimizer,
    epochs: int = 1,
    batch_size: int = 128,
    scheduler=None,
    seed: int = 0,
    max_steps: int | None = None,
    num_classes: int | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
    on_step: Callable[[int, float], None] | None = None,
    speed: TrainSpeed | None = None,
):
    """Train as :func:`.train.train_classifier` does (same data order for the same ``seed``, same outcomes:
    ``ok`` / ``diverged`` / ``oom``, same :class:`.outcome.TrainResult`), under ``speed``."""
    speed = speed or TrainSpeed()
    device = model_device(model, train.y.device)
    if speed.device_data:
        train, val = _to_device(train, device), _to_device(val, device)
    data_dev = train.y.device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = len(train)
    per_epoch = -(-n // batch_size)
    total = epochs * per_epoch if max_steps is None else min(epochs * per_epoch, max_steps)
    chance = 1.0 / num_classes if num_classes else 0.0
    history: list[dict] = []
    steps, seen = 0, 0
    t0 = time.perf_counter()
    train_time = 0.0
    last_loss = float("nan")
    aug_gen = torch.Generator(device=device).manual_seed(seed) if speed.augment else None
    log_every = int(speed.log_every)
    try:
        step_model, info = prepare_fast(model, optimizer, speed, device, total)
        compiled_ok = info["compile"]
        model.train()
        for epoch in range(epochs):
            te = time.perf_counter()
            perm = torch.randperm(n, generator=gen).to(data_dev)
            loss_sum = torch.zeros((), dtype=_acc_dtype(device), device=device)
            count = 0
            pending = _Pending(steps)

            def flush() -> tuple[int, float] | None:
                """Read the pending losses (one sync); deliver them to on_step; the first bad one, if any."""
                if not pending.losses:
                    return None
                values = torch.stack(pending.losses).tolist()
                bad = _first_bad(values)
                upto = len(values) if bad is None else bad
                if on_step is not None:
                    for k in range(upto):
                        on_step(pending.first + k, values[k])
                result = None if bad is None else (pending.first + bad, values[bad])
                pending.first += len(values)
                pending.losses = []
                return result

            for start in range(0, n, batch_size):
                if max_steps is not None and steps >= max_steps:
                    break
                idx = perm[start:start + batch_size]
                x, y = train.batch(idx)
                if x.device != device:
                    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if aug_gen is not None:
                    x = random_crop_flip(x, aug_gen, speed.augment_pad)
                if speed.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                b = int(idx.shape[0])
                full = b == batch_size
                net = step_model if (compiled_ok and full) else model
                try:  # forward and backward: inductor compiles the backward at its first call
                    with _autocast(device, speed.bf16):
                        out = net(x)
                    loss = nn.functional.cross_entropy(out.float(), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                except Exception as exc:  # noqa: BLE001 - a compile failure falls back to eager, once
                    if net is model or is_oom(exc):
                        raise
                    log.warning("archscale: torch.compile failed (%s: %s); training this run eagerly",
                                type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
                    compiled_ok = False
                    optimizer.zero_grad(set_to_none=True)
                    with _autocast(device, speed.bf16):
                        out = model(x)
                    loss = nn.functional.cross_entropy(out.float(), y)
                    loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                d = loss.detach()
                pending.losses.append(d)
                loss_sum += d.to(loss_sum.dtype) * b
                steps += 1
                seen += b
                count += b
                if len(pending.losses) >= log_every:
                    bad = flush()
                    if bad is not None:
                        return TrainResult("diverged", chance, float("nan"), epoch, bad[0],
                                           time.perf_counter() - t0,
                                           seen / max(train_time + time.perf_counter() - te, 1e-9),
                                           f"loss became {bad[1]} at step {bad[0]}", history)
            bad = flush()
            epoch_loss = float(loss_sum)  # the epoch's sync point (its work is finished once this returns)
            train_time += time.perf_counter() - te
            if bad is not None:
                return TrainResult("diverged", chance, float("nan"), epoch, bad[0], time.perf_counter() - t0,
                                   seen / max(train_time, 1e-9), f"loss became {bad[1]} at step {bad[0]}", history)
            last_loss = epoch_loss / max(count, 1)
            validate = (lambda: evaluate_fast(model, val, speed, device, max(512, batch_size))) if val is not None \
                else None
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
