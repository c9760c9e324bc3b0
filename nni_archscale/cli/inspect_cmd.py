"""``archscale inspect ARCH``: the graph, its path statistics, every edge's init and the learning rate."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

from ..errors import RuleError
from ..rules.explain import to_record, to_report
from ..core.formats import parse_architecture
from ..rules.paper import CONTEXTS, DEFAULT_BASE_LR, scale
from ..rules.first_step import ABSOLUTE_RULES, RULES
from ..rules.presets import Init
from ..rules import registry
from ..rules.names import SPACE_NAMES
from .main import UsageError, add_init_argument, add_renamed, kernel_size_number, positive_float, positive_int, \
    seed_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="explain the init variances and learning rate a rule gives one architecture",
        description="ARCH: a NAS-Bench-201 string (|nor_conv_3x3~0|+|...|), a paper code (2_02_002), "
        "a text graph (n=3; 0->1:param/1, 1->2:skip) or a path to a JSON graph.",
    )
    p.add_argument("arch", metavar="ARCH", nargs="?", default=None)
    p.add_argument("--space", choices=SPACE_NAMES, default=None,
                   help="instead of ARCH: sample NNI's model space with --seed and explain the sampled model's rate")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="with --space: which sample (0..2**32 - 1, numpy's seed range; default 0)")
    p.add_argument("--rate-rule", choices=(registry.AUTO, *registry.rule_names()), default=registry.AUTO,
                   help="the learning-rate rule (default auto: for ARCH eq. 8/9, graph; with --network the "
                        "evidence-backed rule for the init and optimizer; with --space the space's; "
                        "nni_archscale/rules/defaults.py). ARCH alone takes graph or shared; --network also the "
                        "DAG-cell rules; --space every rule")
    add_init_argument(p, " (exact needs --network or --space)")
    p.add_argument("--base-lr", type=positive_float, default=None,
                   help="rate calibrated on the base network; default: for ARCH 0.46 for a NAS-Bench-201 cell, "
                        "else 1.0; with --space 0.1; with --network 1.0, and required by readout-limited-sgd (an "
                        "absolute rate)")
    p.add_argument("--kernel-size", type=kernel_size_number, default=None,
                   help="kernel size q of the parameterised edges of a paper code, and q in eq. 9")
    p.add_argument("--base-kernel-size", type=kernel_size_number, default=None,
                   help="kernel size of the base network (the paper's count; default 1 for MLPs, 3 for CNNs)")
    p.add_argument("--context", choices=CONTEXTS, default=None,
                   help="what the graph is (default: nb201-cell for NAS-Bench-201 strings, else dag)")
    p.add_argument("--width", type=positive_int, default=None,
                   help="channels/units per node, for variances (default 16, NAS-Bench-201's C; 128 with --network)")
    p.add_argument("--num-classes", type=positive_int, default=10, help="readout outputs, for its variance (default 10)")
    p.add_argument("--per-edge", action="store_true", help="also give each edge the rate of its own paths")
    p.add_argument("--network", choices=("mlp", "cnn"), default=None,
                   help="read ARCH as the cell of the paper's DAG-cell network (stem, cell, readout)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=None, help="with --network (default sgd)")
    add_renamed(p, "--rule", "use --rate-rule (the learning-rate rule)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="with --network: the training batch size, for readout-limited-sgd's cap (default 32, the "
                        "batch of every measurement behind it)")
    p.add_argument("--in-features", type=positive_int, default=196, help="with --network: input size (default 196)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.space is not None:
        if args.arch is not None:
            raise UsageError("give either ARCH or --space NAME --seed N, not both")
        return run_space(args)
    if args.arch is None:
        raise UsageError("inspect needs ARCH (a NAS-Bench-201 string, paper code, text graph or JSON file) or "
                         "--space NAME --seed N")
    graph, form = parse_architecture(args.arch, kernel_size=args.kernel_size or 1)
    if args.network:
        return run_network(args, graph, form)
    for flag in ("optimizer", "batch_size"):
        if getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} needs --network mlp|cnn (it describes the DAG-cell "
                             f"network's training)")
    if Init.of(args.init).node_scales:
        raise UsageError(f"--init {args.init} sets node-sum scalars from the network's moments: add --network "
                         f"mlp|cnn, or use --space nb201 (for ARCH alone: paper, release or standard)")
    rule = registry.GRAPH if registry.is_auto(args.rate_rule) else registry.get(args.rate_rule)
    if not (rule.per_group or rule.base_rate):
        raise UsageError(f"--rate-rule {rule.name} needs a network, not a bare graph: add --network mlp|cnn (the "
                         f"DAG-cell rules) or use --space NAME (every rule); for ARCH alone: graph or shared")
    context = args.context or ("nb201-cell" if form == "nb201" else "dag")
    base_lr = args.base_lr if args.base_lr is not None else DEFAULT_BASE_LR[context]
    scaling = scale(
        graph, base_lr, args.init, context,
        kernel_size=args.kernel_size, base_kernel_size=args.base_kernel_size, per_edge=args.per_edge,
    )
    record = to_record(scaling, width=args.width or 16, num_classes=args.num_classes, form=form)
    if rule.base_rate:  # one rate for every candidate: the base rate, whatever the graph
        record.update(rate_rule=rule.name, learning_rate=base_lr,
                      learning_rate_formula=f"eta = base_lr = {base_lr:g}   [rate rule {rule.name}: {rule.summary}]")
        for item in record["init_variance"]:
            item.pop("learning_rate", None)
    else:
        record["rate_rule"] = rule.name
    print(json.dumps(record, indent=2) if args.json else to_report(record))
    return 0


def run_network(args: argparse.Namespace, graph, form: str) -> int:
    """``--network``: the cell inside the paper's DAG-cell network, with an init and an optimizer."""
    from ..rules.defaults import default_rule
    from ..rules.forward_moments import forward_moments
    from ..core.networks import CellNetwork
    from ..rules.first_step import (READOUT_LIMIT, cell_init, cell_rate, node0_moments, readout_limits,
                                    resolve_rule, rule_multiplier)

    if args.context:
        raise UsageError("--context and --network exclude each other: --network sets the context")
    init, optimizer = args.init, args.optimizer or "sgd"
    width = args.width or 128
    rule = default_rule(init, optimizer, args.network) if registry.is_auto(args.rate_rule) else args.rate_rule
    entry = registry.get(rule)
    if not (entry.per_group or entry.base_rate or entry.dag_cell_only):
        cell_rules = [r for r in registry.rule_names() if registry.get(r).dag_cell_only]
        raise UsageError(f"--rate-rule {rule} needs the whole model: use --space NAME; with --network: graph, "
                         f"shared or a DAG-cell rule ({', '.join(cell_rules)})")
    context = f"{args.network}-cell"
    base_lr = args.base_lr if args.base_lr is not None else 1.0
    scaling = scale(graph, base_lr, init, context, kernel_size=args.kernel_size)
    record = to_record(scaling, width=width, num_classes=args.num_classes, form=form)
    batch_size = args.batch_size or 32
    net = CellNetwork(graph, args.in_features, width, args.num_classes, args.network)
    terms = None
    if rule in ABSOLUTE_RULES:
        if optimizer != "sgd" or args.network != "mlp":
            raise UsageError(f"{rule} is an SGD rule for MLP cells (its constant was measured there); use "
                             f"--optimizer sgd --network mlp, or another --rate-rule")
        if args.base_lr is None:
            raise UsageError(f"{rule} gives an absolute rate, min(base_lr x second-step multiplier, readout cap): "
                             f"pass --base-lr, the rate calibrated on cell 0_00_000_2000 at this width and batch size")
        hidden, cap = readout_limits(base_lr, net, init, batch_size)  # the two limits, for the explanation
        rate = cell_rate(rule, base_lr, net, init, optimizer, batch_size)  # what the hook applies: their minimum
        terms = {"second_step_rate": hidden, "readout_cap": cap, "batch_size": batch_size}
        formula = (f"eta = min(base_lr * m_second_step(cell), {READOUT_LIMIT:.4g} * B / (n Var z_out)) = "
                   f"min({terms['second_step_rate']:.6g}, {terms['readout_cap']:.6g}) = {rate:.6g}   [rule {rule}; "
                   f"batch {batch_size}; base_lr calibrated on cell 0_00_000_2000]")
    else:  # a DAG-cell kernel rule as the hook applies it (cell_rate), or graph / shared relative to the base cell
        rate = (cell_rate(rule, base_lr, net, init, optimizer, batch_size) if entry.dag_cell_only
                else base_lr * rule_multiplier(rule, net, init, optimizer))
        formula = (f"eta = base_lr * m(cell) / m(0_00_000_2000) = {base_lr:g} * {rate / base_lr:.6g} = {rate:.6g}"
                   f"   [rule {rule}; base_lr calibrated on cell 0_00_000_2000]")
    spec = cell_init(net, init)
    mean0, second0 = node0_moments(spec.stem_gain, "linear-act", "relu")
    fm = forward_moments(graph, spec.gains, convention="linear-act", input_mean=mean0, input_second_moment=second0,
                         node_scales=spec.node_scales)
    record.update(
        network=args.network, init=init, optimizer=optimizer, rate_rule=rule, base_lr=base_lr,
        learning_rate=rate,
        learning_rate_formula=formula,
        node_scales=list(fm.node_scales),
        second_moment_ratio=list(fm.ratios),
    )
    kernel_rule = resolve_rule(rule, optimizer)
    if terms is not None:
        record["rule_terms"] = terms
    elif kernel_rule in RULES:
        record["rule_terms"] = _rule_terms(net, init, kernel_rule)
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(to_report(record))
        print(f"\nnetwork {args.network}: init {init}, optimizer {optimizer}, rate rule {rule}")
        if "rule_terms" in record:
            print(_explain_terms(kernel_rule, record["rule_terms"]))
        print("node second moment / input's: " + ", ".join(f"{r:.3g}" for r in fm.ratios))
        if Init.of(init).node_scales:
            print("node-sum scalars (exact init): " + ", ".join(f"{a:.4g}" for a in fm.node_scales))
    return 0


def _rule_terms(net, init: str, rule: str) -> dict:
    """What a kernel rule (:mod:`nni_archscale.rules.first_step`) multiplies, for the cell and for the base cell."""
    from ..rules.first_step import base_cell, cell_init, first_step_kernel

    terms = {}
    for prefix, cell in (("", net.cell), ("base_", base_cell(net.kind))):
        k = first_step_kernel(cell_init(replace(net, cell=cell), init))
        terms[f"{prefix}hidden_kernel"] = k.hidden_centered1 if rule == "feature-adam" else k.hidden_centered2
        terms[f"{prefix}output_second_moment"] = k.output_second_moment
    return terms


def _explain_terms(rule: str, t: dict) -> str:
    if rule in ABSOLUTE_RULES:
        binding = "the readout cap" if t["readout_cap"] < t["second_step_rate"] else "the second-step rate"
        return (f"{rule}: min(second-step rate {t['second_step_rate']:.4g}, readout cap {t['readout_cap']:.4g} at "
                f"batch {t['batch_size']}): {binding} binds")
    return (f"{rule}: m(cell) / m(base) = sqrt(E[z_out^2] / base's) * Theta_h(base) / Theta_h = "
            f"sqrt({t['output_second_moment']:.4g} / {t['base_output_second_moment']:.4g}) * "
            f"{t['base_hidden_kernel']:.4g} / {t['hidden_kernel']:.4g}")


def run_space(args: argparse.Namespace) -> int:
    """``inspect --space NAME --seed N``: the sampled model's family, the rule applied and why, its rate against
    the base rate and what the other rules would give, and any guard-rail report."""
    import logging
    import warnings

    logger = logging.getLogger("nni_archscale")
    level = logger.level
    logger.setLevel(logging.ERROR)  # the notes are printed below, once
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # NNI's import noise
            return _run_space(args)
    finally:
        logger.setLevel(level)


def _run_space(args: argparse.Namespace) -> int:
    import copy
    import math

    import torch
    from ..nni_glue.adapters import network_family, prepare_candidate
    from ..nni_glue.calibration import measurement_batch, space_reference
    from ..nni_glue.spaces import SampleRejected, sample_model
    from ..torch_layer.data import load_dataset
    from ..torch_layer.hook import HookConfig
    for flag in ("network", "context", "per_edge", "kernel_size", "width", "batch_size", "base_kernel_size"):
        if getattr(args, flag):
            raise UsageError(f"--{flag.replace('_', '-')} does not apply with --space")
    base_lr = args.base_lr if args.base_lr is not None else 0.1
    optimizer = args.optimizer or "sgd"
    data = load_dataset("digits")
    batch = measurement_batch(data)
    cfg = HookConfig(base_lr=base_lr, init=args.init, optimizer=optimizer, rate_rule=args.rate_rule)
    try:
        sample, model = sample_model(args.space, args.seed, data.num_classes, image_size=data.image_size)
    except SampleRejected as exc:
        raise UsageError(f"{exc}; NNI refuses some samples of {args.space} (a choice combination its space "
                         f"forbids): try another --seed, e.g. --seed {args.seed + 1}") from None
    reference = space_reference(args.space, data, cfg)  # after the sample: a rejected seed fails at once
    rates = {}
    for rule in registry.rule_names():
        probe = copy.deepcopy(model)  # the same sample and weights, as a fresh sample would give (seconds less)
        torch.manual_seed(args.seed)  # the re-init draws from torch's RNG: the same draw for every rule, every run
        try:
            p = prepare_candidate(probe, replace(cfg, rate_rule=rule), sample=sample,
                                  batch=batch, reference=reference)
        except RuleError:  # a DAG-cell rule on a model that is not the paper's DAG-cell MLP
            continue
        rates[rule] = {"rate": p.learning_rate, "clamped": any(n.startswith("guard: parameter") or
                                                               "clamped" in n for n in p.notes)}
    torch.manual_seed(args.seed)
    prepared = prepare_candidate(model, cfg, sample=sample, batch=batch, reference=reference)
    family = network_family(model, prepared.adapter)
    record = {
        "space": args.space, "seed": args.seed, "sample": sample, "adapter": prepared.adapter, "family": family,
        "optimizer": optimizer, "init": args.init, "base_lr": base_lr,
        "rate_rule": prepared.rate_rule,
        "why": ("--rate-rule " + args.rate_rule) if not registry.is_auto(args.rate_rule) else
        f"the default for family {family} with {optimizer} (nni_archscale/rules/defaults.py SPACE_RATE_RULES, decided by "
        f"reports/spaces-maxlr/)",
        "learning_rate": prepared.learning_rate,
        "octaves_from_base": math.log2(prepared.learning_rate / base_lr),
        "every_rule": rates, "notes": list(prepared.notes), "graph": prepared.summary(),
    }
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"{args.space} sample {args.seed}: {len(sample)} choices; adapter {prepared.adapter}; family {family}")
    print(f"rate rule: {prepared.rate_rule} ({record['why']})")
    print(f"learning rate: {prepared.learning_rate:.4g} ({record['octaves_from_base']:+.2f} octaves from the base "
          f"rate {base_lr:g}; {optimizer}, init {args.init})")
    print("what each rule gives this model:")
    for rule, v in rates.items():
        mark = "  <- applied" if rule == prepared.rate_rule else ""
        print(f"  {rule:10s} {v['rate']:.4g}{' (clamped by the guard)' if v['clamped'] else ''}{mark}")
    for note in prepared.notes:
        print(f"note: {note}")
    print(f"graph: {prepared.summary()}")
    return 0
