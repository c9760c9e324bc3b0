"""Cost of the hook: its time per candidate as a fraction of one training epoch of that candidate (target < 1%),
and training throughput with the hook against without it (target ratio >= 0.99), measured side by side.

    python benchmarks/bench_hook.py [--candidates 6] [--width 8] [--cells 1] [--dataset digits] [--repeats 3]

"With the hook" = the candidate re-initialised by the rule and trained with the rule's param groups; "without" =
the same candidate as NNI built it (PyTorch default init) trained with one SGD group at the same rate. Both
variants step through the same batches in alternation for ``--repeats`` epochs (which goes first alternates), and
the epoch time is that of the variant without the hook.
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import time
import warnings

warnings.filterwarnings("ignore")

import torch  # noqa: E402

from nni_archscale.errors import NoPathError  # noqa: E402
from nni_archscale.nni_glue.adapters import prepare_candidate  # noqa: E402
from nni_archscale.nni_glue.calibration import build_nb201  # noqa: E402
from nni_archscale.torch_layer.data import load_dataset  # noqa: E402
from nni_archscale.torch_layer.hook import HookConfig  # noqa: E402
from nni_archscale.torch_layer.param_groups import make_optimizer  # noqa: E402
from nni_archscale.torch_layer.train import pick_device, train_classifier  # noqa: E402

OPS = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
KEYS = ["cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--candidates", type=int, default=6)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--cells", type=int, default=1)
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="do not flush denormal floats on CPU (they slow down whichever variant produces them)")
    args = ap.parse_args()
    if not args.keep_denormals:
        torch.set_flush_denormal(True)

    device = pick_device(args.device)
    data = load_dataset(args.dataset, args.data_dir, args.limit, args.seed).to(device)
    print(f"{data.describe()}; NB201 C={args.width} N={args.cells}; device {device}; "
          f"torch threads {torch.get_num_threads()}")
    rng = random.Random(args.seed)
    cfg = HookConfig(base_lr=0.5, weight_decay=5e-4, scheduler="none")
    fractions, ratios = [], []
    print(f"{'candidate':<74} {'hook ms':>8} {'epoch s':>8} {'fraction':>9} {'thr with':>9} {'thr w/o':>9} {'ratio':>6}")
    done = 0
    while done < args.candidates:
        sample = {k: rng.choice(OPS) for k in KEYS}
        base = build_nb201(args.width, args.cells, data.num_classes, sample)
        # hook cost: the whole preparation (adapter, rule, plan, init, param groups), median of 5
        costs = []
        try:
            for _ in range(5):
                m = copy.deepcopy(base)
                t0 = time.perf_counter()
                prepared = prepare_candidate(m, cfg, sample=sample)
                costs.append(time.perf_counter() - t0)
        except NoPathError:
            continue
        hook_s = statistics.median(costs)
        # side by side: both variants step through the same batches, alternating which goes first, so that
        # load from other processes hits both alike
        mw, mo = copy.deepcopy(base), copy.deepcopy(base)
        prepared = prepare_candidate(mw, cfg, sample=sample)
        mw.to(device)
        mo.to(device)
        ow = prepared.make_optimizer()
        oo = make_optimizer("sgd", [{"params": list(mo.parameters()), "lr": prepared.learning_rate,
                                     "weight_decay": cfg.weight_decay}])
        tw = to = 0.0
        n = 0
        gen = torch.Generator().manual_seed(args.seed)
        for rep in range(args.repeats):
            perm = torch.randperm(len(data.train), generator=gen).to(device)
            for i, start in enumerate(range(0, len(data.train), 128)):
                x, y = data.train.batch(perm[start:start + 128])
                pair = ((mw, ow, "w"), (mo, oo, "o")) if (i + rep) % 2 == 0 else ((mo, oo, "o"), (mw, ow, "w"))
                for model, opt, tag in pair:
                    t0 = time.perf_counter()
                    loss = torch.nn.functional.cross_entropy(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    float(loss)
                    dt = time.perf_counter() - t0
                    if tag == "w":
                        tw += dt
                    else:
                        to += dt
                n += int(x.shape[0])
        with_thr, without_thr, epoch_s = [n / tw], [n / to], [to / args.repeats]
        ep = statistics.median(epoch_s)
        frac = hook_s / ep
        ratio = statistics.median(with_thr) / statistics.median(without_thr)
        fractions.append(frac)
        ratios.append(ratio)
        arch = prepared.graph.to_text()[:72]
        print(f"{arch:<74} {hook_s * 1e3:8.2f} {ep:8.3f} {frac:9.3%} {statistics.median(with_thr):9.0f} "
              f"{statistics.median(without_thr):9.0f} {ratio:6.3f}")
        done += 1
    print(f"\nhook cost per candidate / one epoch: median {statistics.median(fractions):.3%}, "
          f"max {max(fractions):.3%} (target < 1%)")
    print(f"throughput with / without hook: median {statistics.median(ratios):.3f}, min {min(ratios):.3f} "
          f"(target >= 0.99)")


if __name__ == "__main__":
    main()
