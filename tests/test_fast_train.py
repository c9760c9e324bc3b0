"""The trainer's fast path (torch_layer/fast_train.py, issue 15), on the CPU.

What the hook sets must be what trains under every speed option: the optimizer's learning rates are the hook's,
the initial weights are the hook's (channels_last changes the layout, never a value), and the fp32 fast loop
trains like the plain loop of train.py. The augmentation (NAS-Bench-201's crop + flip on the device) keeps shapes
and dtypes, is seeded, matches a per-image reference, and leaves flat data alone. A diverging run is reported.

torch.compile: the option combinations use the ``eager`` backend (dynamo captures the graph, the parameters are
shared with the eager model: what this file checks); the inductor backend, which the GPU uses, takes about 70 s
on this CPU for the smallest NB201 candidate and is marked slow.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings

import pytest
import torch
from torch import nn

from nni_archscale.torch_layer.data import ArrayData, load_dataset
from nni_archscale.torch_layer.fast_train import (
    TrainSpeed, configure_optimizer, crop_flip, fast_train, prepare_fast, random_crop_flip, resolve_speed,
    speed_for,
)
from nni_archscale.torch_layer.hook import HookConfig, prepare_nb201
from nni_archscale.torch_layer.param_groups import make_scheduler
from nni_archscale.torch_layer.train import train_classifier

from conftest_nni import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

SAMPLE = {"cell/0_1": "conv_3x3", "cell/0_2": "conv_1x1", "cell/1_2": "conv_3x3", "cell/0_3": "skip_connect",
          "cell/1_3": "conv_3x3", "cell/2_3": "avg_pool_3x3"}
#: per-edge rates: several param groups with different rates, so a mix-up between groups would show
HOOK = HookConfig(base_lr=0.2, init="paper", per_edge=True, weight_decay=5e-4)


@pytest.fixture(scope="module")
def nb201():
    """A frozen NNI NAS-Bench-201 candidate (C=4, N=1) before the hook, and its cell graph."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nni_archscale.nni_glue.adapters import graph_from_nb201_sample
        from nni_archscale.nni_glue.calibration import build_nb201

        torch.manual_seed(0)
        return build_nb201(4, 1, 10, SAMPLE), graph_from_nb201_sample(SAMPLE)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", limit=384)  # 384 training images (3 batches of 128), 450 validation


def prepared_candidate(nb201, steps: int = 20):
    """A fresh copy of the candidate, prepared by the hook (same generator seed each time: same init), with its
    optimizer and cosine scheduler."""
    model, cell = copy.deepcopy(nb201[0]), nb201[1]
    prepared = prepare_nb201(model, cell, 1, HOOK, torch.Generator().manual_seed(7))
    opt = prepared.make_optimizer()
    return model, prepared, opt, make_scheduler(opt, "cosine", steps)


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def _combo(b: bool, c: bool, k: bool):
    opts = dict(bf16=b, channels_last=c, compile=k)
    name = "-".join(key for key, v in opts.items() if v) or "fp32"
    # dynamo traces the candidate in 1-3 s here: the mixed compile cases are slow, the two extremes run in CI
    marks = [pytest.mark.slow] if k and b != c else []
    return pytest.param(opts, id=name, marks=marks)


COMBOS = [_combo(b, c, k) for b, c, k in itertools.product((False, True), repeat=3)]


@pytest.mark.parametrize("opts", COMBOS)
def test_every_option_keeps_the_hooks_rates_and_init(nb201, digits, opts):
    model, prepared, opt, sched = prepared_candidate(nb201)
    hook_rates = [g["lr"] for g in prepared.groups]
    assert len(set(hook_rates)) >= 2, "the candidate should have several rates (per-edge groups)"
    params = {id(p) for p in model.parameters()}
    before = snapshot(model)
    speed = TrainSpeed(compile_backend="eager", log_every=3, **opts)
    step_model, info = prepare_fast(model, opt, speed, torch.device("cpu"), total_steps=20)
    # the optimizer: the hook's groups, rates and parameters (the same objects), the fused kernel switched on
    assert [g["lr"] for g in opt.param_groups] == hook_rates
    assert [g["param_names"] for g in opt.param_groups] == [g["param_names"] for g in prepared.groups]
    assert {id(p) for g in opt.param_groups for p in g["params"]} == params == {id(p) for p in model.parameters()}
    assert info["optimizer_kernel"] == "fused" and all(g["fused"] for g in opt.param_groups)
    assert sched.base_lrs == hook_rates and sched.optimizer is opt
    # the weights: unchanged in value; channels_last only changes the layout of the 4-d ones
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).weight
    assert conv.is_contiguous(memory_format=torch.channels_last) == opts["channels_last"]
    if opts["compile"]:
        assert step_model is not model and getattr(step_model, "_orig_mod", None) is model
        assert [id(p) for p in step_model.parameters()] == [id(p) for p in model.parameters()]
    else:
        assert step_model is model
    # training under the option (fast_train's own setup again, a no-op on a prepared model; the same model
    # object keeps dynamo's compiled code): the rates are the hook's times the cosine factor, in every group
    r = train_classifier(model, digits.train, None, opt, epochs=1, batch_size=32, scheduler=sched, seed=1,
                         max_steps=3, num_classes=10, speed=speed)
    assert r.status == "ok" and r.steps == 3 and math.isfinite(r.train_loss)
    factor = (1 + math.cos(math.pi * 3 / 20)) / 2
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([lr * factor for lr in hook_rates], rel=1e-12)


def test_fp32_fast_path_matches_the_plain_loop(nb201, digits):
    """Same seed, same data order, fp32, augmentation off: the fast loop (fused SGD, losses read every 4 steps,
    float64 loss sums on the device) trains like train.py's loop; with every numerics option off, identically."""
    steps = 2 * -(-len(digits.train) // 56)  # 7 batches an epoch, the last one smaller
    runs = {}
    for name, speed in (("plain", False), ("exact", TrainSpeed.exact()),
                        ("fast32", TrainSpeed(bf16=False, channels_last=False, compile=False, log_every=4)),
                        ("bf16cl", TrainSpeed(compile=False, log_every=4))):
        model, _, opt, sched = prepared_candidate(nb201, steps)
        losses: list[float] = []
        r = train_classifier(model, digits.train, digits.val, opt, epochs=2, batch_size=56, scheduler=sched,
                             seed=3, num_classes=10, on_step=lambda s, v: losses.append((s, v)), speed=speed)
        runs[name] = (r, losses, snapshot(model))
    plain, plain_losses, plain_w = runs["plain"]
    assert plain.status == "ok" and plain.steps == steps
    exact, exact_losses, _ = runs["exact"]
    assert (exact.accuracy, exact.train_loss, exact.history, exact_losses) == \
        (plain.accuracy, plain.train_loss, plain.history, plain_losses)
    fast, fast_losses, fast_w = runs["fast32"]
    assert fast.status == "ok" and (fast.epochs, fast.steps) == (plain.epochs, plain.steps)
    assert [s for s, _ in fast_losses] == list(range(steps))  # every step's loss reaches on_step, in order
    assert [v for _, v in fast_losses] == pytest.approx([v for _, v in plain_losses], rel=1e-4, abs=1e-5)
    assert fast.train_loss == pytest.approx(plain.train_loss, rel=1e-4)
    assert abs(fast.accuracy - plain.accuracy) <= 2 / len(digits.val)
    for h, hp in zip(fast.history, plain.history):
        assert h["val_loss"] == pytest.approx(hp["val_loss"], rel=1e-3)
    for k, v in plain_w.items():
        if v.is_floating_point():
            assert torch.allclose(fast_w[k], v, rtol=1e-3, atol=1e-4), k
    bf16, _, _ = runs["bf16cl"]  # bf16 autocast: close, not equal
    assert bf16.status == "ok" and bf16.train_loss == pytest.approx(plain.train_loss, abs=0.05)


def test_a_diverging_run_is_reported(nb201, digits):
    for speed in (False, TrainSpeed(compile=False, log_every=50), TrainSpeed.exact()):
        model, _, _, _ = prepared_candidate(nb201)
        opt = torch.optim.SGD(model.parameters(), lr=1e20)
        seen: list[float] = []
        r = train_classifier(model, digits.train, digits.val, opt, epochs=3, num_classes=10, speed=speed,
                             on_step=lambda s, v: seen.append(v))
        assert r.status == "diverged" and r.accuracy == pytest.approx(0.1) and math.isnan(r.train_loss), speed
        assert "loss became" in r.message and f"at step {r.steps}" in r.message
        assert len(seen) == r.steps and all(math.isfinite(v) for v in seen)  # only the losses before the bad one
        if speed is False:
            plain_steps = r.steps
        else:
            assert r.steps == plain_steps  # the same first bad step, found at a sync point


def test_augmentation_matches_a_per_image_reference():
    x = torch.arange(2 * 2 * 3 * 5, dtype=torch.float32).reshape(2, 2, 3, 5) + 1
    pad = 2
    dy, dx, flip = torch.tensor([0, 4]), torch.tensor([3, 1]), torch.tensor([False, True])
    out = crop_flip(x, dy, dx, flip, pad)
    for i in range(2):
        padded = torch.zeros(2, 3 + 2 * pad, 5 + 2 * pad)
        padded[:, pad:pad + 3, pad:pad + 5] = x[i]
        ref = padded[:, int(dy[i]):int(dy[i]) + 3, int(dx[i]):int(dx[i]) + 5]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref), i
    # centred crop, no flip: the identity
    centre = torch.full((2,), pad)
    assert torch.equal(crop_flip(x, centre, centre, torch.tensor([False, False]), pad), x)
    # random draws: the order dy, dx, flip of one generator, as the experiments' augmentation draws them
    g = torch.Generator().manual_seed(5)
    dy, dx = torch.randint(0, 2 * pad + 1, (2,), generator=g), torch.randint(0, 2 * pad + 1, (2,), generator=g)
    flip = torch.rand(2, generator=g) < 0.5
    assert torch.equal(random_crop_flip(x, torch.Generator().manual_seed(5), pad), crop_flip(x, dy, dx, flip, pad))


def test_augmentation_shapes_dtypes_seeds_and_flat_data():
    x = torch.randn(16, 3, 8, 8)
    for dtype in (torch.float32, torch.bfloat16):
        out = random_crop_flip(x.to(dtype), torch.Generator().manual_seed(0))
        assert out.shape == x.shape and out.dtype == dtype
    a = random_crop_flip(x, torch.Generator().manual_seed(1))
    b = random_crop_flip(x, torch.Generator().manual_seed(1))
    c = random_crop_flip(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # every output image is a shifted (and maybe mirrored) copy: its values come from the image or the padding
    assert set(a[0].unique().tolist()) <= set(x[0].unique().tolist()) | {0.0}
    flat = torch.randn(16, 196)
    assert random_crop_flip(flat, torch.Generator().manual_seed(0)) is flat


def test_augmented_training_is_seeded_and_flat_data_trains(digits):
    """The fast path's augmentation is drawn from a generator seeded by the run's seed: same seed, same run."""
    results = []
    for seed in (4, 4, 5):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        r = train_classifier(model, digits.train, digits.val, opt, epochs=1, batch_size=128, seed=seed,
                             num_classes=10, speed=TrainSpeed(augment=True, compile=False, log_every=4))
        results.append((r.status, r.train_loss, r.accuracy))
    assert results[0] == results[1] and results[0] != results[2] and results[0][0] == "ok"
    # flat features (an MLP's data): augmentation is a no-op, channels_last is skipped
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 20, generator=g)
    flat = ArrayData(x, (x[:, 0] > 0).long(), torch.zeros(1), torch.ones(1))
    flat.batch = lambda idx: (flat.x[idx], flat.y[idx])  # flat data: no per-channel normalisation
    runs = []
    for augment in (False, True):
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.SGD(mlp.parameters(), lr=0.1)
        runs.append(train_classifier(mlp, flat, None, opt, epochs=2, batch_size=64, num_classes=2,
                                     speed=TrainSpeed(augment=augment, compile=False)).train_loss)
    assert runs[0] == runs[1] and math.isfinite(runs[0])


def test_speed_options_and_defaults(monkeypatch, digits):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_speed(None, cpu) is None and resolve_speed(False, cuda) is None
    assert resolve_speed(None, cuda) == TrainSpeed() == resolve_speed(True, cpu) == resolve_speed("fast", cpu)
    fast = TrainSpeed()
    assert (fast.bf16, fast.channels_last, fast.compile, fast.fused, fast.augment, fast.device_data) == \
        (True, True, None, True, False, True)
    assert resolve_speed({"bf16": False, "log_every": 5}, cpu) == TrainSpeed(bf16=False, log_every=5)
    assert TrainSpeed.from_dict(TrainSpeed(compile=True).to_dict()) == TrainSpeed(compile=True)
    with pytest.raises(ValueError, match="unknown TrainSpeed"):
        TrainSpeed.from_dict({"bogus": 1})
    with pytest.raises(ValueError):
        TrainSpeed(log_every=0)
    with pytest.raises(TypeError):
        resolve_speed(3, cpu)
    # compile auto: CUDA and a long enough run only
    assert not fast.use_compile(cpu, 10**6) and not fast.use_compile(cuda, fast.compile_min_steps - 1)
    assert fast.use_compile(cuda, fast.compile_min_steps) and TrainSpeed(compile=True).use_compile(cpu, 1)
    assert not TrainSpeed(compile=False).use_compile(cuda, 10**6)
    assert "bf16" in fast.describe() and "compile" in fast.describe(cuda, 10**6)
    # the search's switches (--compile/--no-compile, --augment): GPU defaults on CUDA; on the CPU the plain loop,
    # or the fp32 fast loop when one is asked for
    assert speed_for(cuda) == TrainSpeed() and speed_for(cuda, False, True) == TrainSpeed(compile=False, augment=True)
    assert speed_for(cpu) is None and speed_for(cpu, compile=False) is None
    on_cpu = speed_for(cpu, augment=True)
    assert on_cpu.augment and not (on_cpu.bf16 or on_cpu.channels_last or on_cpu.compile)
    # the default on the CPU is the plain loop: the fast path is not entered
    import nni_archscale.torch_layer.fast_train as ft

    def boom(*a, **k):
        raise AssertionError("fast path entered")

    monkeypatch.setattr(ft, "fast_train", boom)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    assert train_classifier(model, digits.train, None, opt, max_steps=2).status == "ok"
    with pytest.raises(AssertionError, match="fast path"):
        train_classifier(model, digits.train, None, opt, max_steps=2, speed=TrainSpeed())


def test_optimizer_kernels_keep_rates_and_state():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    groups = [{"params": list(model[0].parameters()), "lr": 0.3}, {"params": list(model[2].parameters()), "lr": 0.01}]
    for cls in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
        opt = cls([dict(g) for g in groups], lr=0.1)
        assert configure_optimizer(opt, fused=True) == "fused"
        assert [g["lr"] for g in opt.param_groups] == [0.3, 0.01]
        model(torch.randn(3, 4)).sum().backward()
        opt.step()  # the fused kernel runs on the CPU
    opt = torch.optim.SGD([dict(g) for g in groups], lr=0.1)
    assert configure_optimizer(opt, fused=False) == "default" and opt.param_groups[0]["fused"] is None
    rms = torch.optim.RMSprop(model.parameters(), lr=0.1)  # no fused kernel: left as it is on the CPU
    assert configure_optimizer(rms, fused=True) == "default"


def test_out_of_memory_is_an_outcome(digits):
    class Boom(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 TiB")

    m = Boom()
    r = fast_train(m, digits.train, digits.val, torch.optim.SGD(m.parameters(), lr=0.1), num_classes=10,
                   speed=TrainSpeed(compile=False))
    assert r.status == "oom" and "out of memory" in r.message


@pytest.mark.slow
def test_inductor_compile_on_the_cpu_trains_like_eager(nb201, digits):
    """torch.compile with inductor (what the GPU uses; about 70 s to compile on this CPU): same rates, and the
    compiled full batches plus the eager last batch train like the eager loop."""
    out = []
    for compile_ in (False, True):
        model, prepared, opt, sched = prepared_candidate(nb201, 24)
        hook_rates = [g["lr"] for g in prepared.groups]  # the groups are the optimizer's: read before training
        torch._dynamo.reset()
        r = train_classifier(model, digits.train, digits.val, opt, epochs=2, batch_size=128, scheduler=sched,
                             seed=2, num_classes=10,
                             speed=TrainSpeed(bf16=False, channels_last=False, compile=compile_))
        assert [g["initial_lr"] for g in opt.param_groups] == hook_rates
        out.append(r)
    assert out[1].status == "ok" and out[1].train_loss == pytest.approx(out[0].train_loss, rel=1e-3)


@pytest.mark.parametrize("where", ["forward", "backward"])
def test_a_compile_failure_falls_back_to_eager_training(digits, where):
    """A backend that fails (at the first forward, or at the first backward, which inductor compiles lazily)
    leaves the run training eagerly with the same result, and says so."""
    from torch._dynamo.backends.common import aot_autograd

    def boom(gm, example_inputs):
        raise RuntimeError("backend boom")

    backend = boom if where == "forward" else aot_autograd(fw_compiler=lambda gm, ex: gm, bw_compiler=boom)
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(192, 16), nn.ReLU(), nn.Linear(16, 10))
    twin = copy.deepcopy(model)
    fp32 = dict(bf16=False, channels_last=False)
    compiled = train_classifier(model, digits.train, digits.val, torch.optim.SGD(model.parameters(), lr=0.1), epochs=1,
                                batch_size=32, seed=0, num_classes=10,
                                speed=TrainSpeed(compile=True, compile_backend=backend, **fp32))
    eager = train_classifier(twin, digits.train, digits.val, torch.optim.SGD(twin.parameters(), lr=0.1), epochs=1,
                             batch_size=32, seed=0, num_classes=10, speed=TrainSpeed(compile=False, **fp32))
    assert compiled.status == eager.status == "ok"
    assert compiled.train_loss == pytest.approx(eager.train_loss, rel=1e-6)
