"""``archscale inspect ARCH``: the graph, its path statistics, every edge's init and the learning rate."""

from __future__ import annotations

import argparse
import json

from ..explain import to_record, to_report
from ..formats import parse_architecture
from ..rules import CONTEXTS, PRESETS, scale
from .main import positive_float, positive_int

#: Default base learning rates: the authors' NAS-Bench-201 example (0.46); elsewhere 1.0, so that the printed
#: learning rate reads as the multiplier of the rate calibrated on the base network.
DEFAULT_BASE_LR = {"nb201-cell": 0.46, "dag": 1.0, "mlp-cell": 1.0, "cnn-cell": 1.0}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="explain the init variances and learning rate a rule gives one architecture",
        description="ARCH: a NAS-Bench-201 string (|nor_conv_3x3~0|+|...|), a paper code (2_02_002), "
        "a text graph (n=3; 0->1:param/1, 1->2:skip) or a path to a JSON graph.",
    )
    p.add_argument("arch", metavar="ARCH")
    p.add_argument("--preset", choices=PRESETS, default="paper")
    p.add_argument("--base-lr", type=positive_float, default=None,
                   help="rate calibrated on the base network (default 0.46 for NAS-Bench-201, else 1.0)")
    p.add_argument("--kernel-size", type=positive_int, default=None,
                   help="kernel size q of the parameterised edges of a paper code, and q in eq. 9")
    p.add_argument("--base-kernel-size", type=positive_int, default=None,
                   help="kernel size of the base network (paper preset; default 1 for MLPs, 3 for CNNs)")
    p.add_argument("--context", choices=CONTEXTS, default=None,
                   help="what the graph is (default: nb201-cell for NAS-Bench-201 strings, else dag)")
    p.add_argument("--width", type=positive_int, default=16, help="channels/units per node, for variances")
    p.add_argument("--num-classes", type=positive_int, default=10)
    p.add_argument("--per-edge", action="store_true", help="also give each edge the rate of its own paths")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    graph, form = parse_architecture(args.arch, kernel_size=args.kernel_size or 1)
    context = args.context or ("nb201-cell" if form == "nb201" else "dag")
    base_lr = args.base_lr if args.base_lr is not None else DEFAULT_BASE_LR[context]
    scaling = scale(
        graph, base_lr, args.preset, context,
        kernel_size=args.kernel_size, base_kernel_size=args.base_kernel_size, per_edge=args.per_edge,
    )
    record = to_record(scaling, width=args.width, num_classes=args.num_classes, form=form)
    print(json.dumps(record, indent=2) if args.json else to_report(record))
    return 0
