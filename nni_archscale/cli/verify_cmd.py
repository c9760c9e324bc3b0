"""``archscale verify ARCH|--nb201-all|--random N``: symbolic derivations checked against the numeric code.

For every graph: PASS/FAIL of the path statistics, init variances and learning-rate rule against the
derivations of the ``symbolic`` package (exit status 1 on any FAIL), and, reported exactly, each node's
second-moment ratio under the init's variances with what could restore it. ``--nb201-all`` enumerates the
15,625 NAS-Bench-201 cells itself (5 operations on 6 edges; no data file) and verifies each isomorphism class
once. ``symbolic`` (sympy) is imported only when the command runs.

How many classes the space has depends on the equivalence (:data:`EQUIVALENCES`; the same names are the
``--json`` summary's fields): ``canonical_classes`` = 14,125, our isomorphism, which keeps every edge's operation;
``live_edge_classes`` = 8,765, the same after dropping the edges on no input-output path; and
``nb201_unique_strings`` = 6,466, NAS-Bench-201's own ``UniqueString``, which also merges nodes joined by a skip
and compares sums as multisets: the benchmark's "6,466 unique architectures" (all three computed by
:func:`nb201_class_counts`).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from typing import Iterator

from ..errors import shorten
from ..core.formats import nb201_cells, parse_architecture, to_text
from ..core.graph import ArchGraph, Edge, EdgeKind
from ..rules.paper import CONTEXTS, DEFAULT_BASE_LR
from .main import UsageError, add_renamed, kernel_size_number, positive_float, positive_int

#: What each class count of a many-graph run means (the --json summary's field names).
EQUIVALENCES = {
    "canonical_classes": "isomorphism: relabellings of the inner nodes that keep the input, the output and every "
                         "active edge's operation (kind and kernel size); zero (none) edges dropped; every class is "
                         "verified once (null with --no-cache)",
    "live_edge_classes": "the same isomorphism after also dropping every edge that no input-to-output path uses",
    "nb201_unique_strings": "NAS-Bench-201's own UniqueString (its API's to_unique_str(consider_zero=True)): the cell "
                            "read as an expression, a skip merging a node into its source, none and dead terms "
                            "dropped, sums compared as multisets; the benchmark's count of unique architectures",
}

#: Largest ``--max-nodes`` of ``--random``: a dense random graph of 64 nodes verifies in about 10 s, one of 100
#: nodes in about 45 s (the symbolic derivations grow faster than the square of the edges). Far below the graph
#: limits (:data:`~nni_archscale.core.graph.MAX_NODES`, :data:`~nni_archscale.core.graph.MAX_EDGES`), which bound what can be
#: read, not what verifies in seconds; verify a larger graph as ARCH.
MAX_RANDOM_NODES = 64

#: the inits the symbolic side derives (``exact`` is the paper's variances plus node-sum scalars, which this
#: command does not derive; tests/test_moments.py holds them to the forward moments)
VERIFIED_INITS = ("paper", "release", "standard")
#: Above this many edges verifying one ARCH says first that it may take minutes (measured on a 2-core machine:
#: a ladder of 12 nodes, 21 edges, 4.5 s; of 16 nodes, 29 edges, 30 s; of 24 nodes, 45 edges, over 100 s).
SLOW_EDGES = 24


def random_graph_size(text: str) -> int:
    """``--max-nodes``: an integer in 2..:data:`MAX_RANDOM_NODES` (an input and an output at least)."""
    value = positive_int(text)
    if not 2 <= value <= MAX_RANDOM_NODES:
        raise argparse.ArgumentTypeError(
            f"expected 2..{MAX_RANDOM_NODES} nodes (nni_archscale.cli.verify_cmd.MAX_RANDOM_NODES: a dense random "
            f"graph of {MAX_RANDOM_NODES} nodes verifies in about 10 s), got {shorten(text)}; verify a larger "
            f"graph as ARCH")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="check path statistics, init variances and learning rates against symbolic derivations",
        description="Verify one ARCH (same forms as `archscale inspect`; a paper code is the bare DAG), every "
        "NAS-Bench-201 cell (--nb201-all), or N random graphs (--random N). Exit status 1 on any mismatch.",
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("arch", metavar="ARCH", nargs="?", help="one architecture")
    what.add_argument("--nb201-all", action="store_true",
                      help="all 15,625 NAS-Bench-201 cells; also counts them under three equivalences (14,125 "
                           "isomorphism classes keeping every edge's op; 8,765 without dead edges; 6,466 under the "
                           "benchmark's UniqueString)")
    what.add_argument("--random", type=positive_int, metavar="N", help="N random graphs")
    p.add_argument("--init", choices=VERIFIED_INITS, default="paper",
                   help="the init verified (default paper); its rate check counts paths as the init's preset does "
                        "(release: the released code; paper and standard: the paper)")
    add_renamed(p, "--preset", "use --init (paper, release, standard): the init verified")
    p.add_argument("--context", choices=CONTEXTS, default=None,
                   help="what a graph is (default: nb201-cell for NAS-Bench-201 strings and --nb201-all, else dag)")
    p.add_argument("--base-lr", type=positive_float, default=None,
                   help="rate calibrated on the base network (default 0.46 for NAS-Bench-201, else 1.0)")
    p.add_argument("--kernel-size", type=kernel_size_number, default=None,
                   help="kernel size of the parameterised edges of a paper code")
    p.add_argument("--activation", choices=("relu", "gelu"), default="relu",
                   help="activation for the forward moments (the inits are derived for ReLU)")
    p.add_argument("--pool", choices=("identity", "symbolic"), default="identity",
                   help="average pooling's second-moment factor: 1 (identity-like) or a symbol rho_q")
    p.add_argument("--seed", type=int, default=0, help="seed of --random")
    p.add_argument("--max-nodes", type=random_graph_size, default=7,
                   help=f"largest random graph (nodes, 2..{MAX_RANDOM_NODES}; default 7)")
    p.add_argument("--no-cache", action="store_true", help="verify isomorphic graphs separately")
    p.add_argument("--fail-on-drift", action="store_true",
                   help="also exit 1 when a rule does not keep some node at the input's second moment")
    p.add_argument("--all-lines", action="store_true", help="with many graphs, print a line for every graph")
    p.add_argument("--json", action="store_true", help="print JSON instead of the report")
    p.set_defaults(run=run)


# --------------------------------------------------------------------------- graph sources
def nb201_class_counts() -> dict[str, int]:
    """The 15,625 NAS-Bench-201 cells counted under each of :data:`EQUIVALENCES` (about 3 s)."""
    from ..core.formats import from_nb201, nb201_unique_string
    from ..core.paths import live_edges_only

    cells = list(nb201_cells())
    graphs = [from_nb201(c) for c in cells]
    return {
        "cells": len(cells),
        "canonical_classes": len(set(graphs)),
        "live_edge_classes": len({live_edges_only(g) for g in graphs}),
        "nb201_unique_strings": len({nb201_unique_string(c) for c in cells}),
    }


def random_graphs(count: int, seed: int, max_nodes: int) -> Iterator[ArchGraph]:
    """``count`` random DAGs with 2..max_nodes nodes, every edge kind, kernel sizes 1 and 3."""
    if not 2 <= max_nodes <= MAX_RANDOM_NODES:
        raise UsageError(f"--max-nodes must be in 2..{MAX_RANDOM_NODES} (an input and an output at least; "
                         f"MAX_RANDOM_NODES verifies in seconds), got {max_nodes}")
    rng = random.Random(seed)
    kinds = (EdgeKind.ZERO, EdgeKind.SKIP, EdgeKind.POOL, EdgeKind.PARAM, EdgeKind.PARAM)
    for _ in range(count):
        n = rng.randint(2, max_nodes)
        density = rng.choice((0.3, 0.6, 1.0))
        edges = []
        for dst in range(1, n):
            for src in range(dst):
                if rng.random() < density:
                    kind = rng.choice(kinds)
                    q = rng.choice((1, 3)) if kind is EdgeKind.PARAM else (3 if kind is EdgeKind.POOL else 1)
                    edges.append(Edge(src, dst, kind, q))
        yield ArchGraph(n, edges)


# --------------------------------------------------------------------------- reports
def _line(result) -> str:
    rec_drift = result.drift
    drift = "moments preserved" if rec_drift.preserved else f"drift up to {rec_drift.max_drift()}"
    status = "PASS" if result.ok else "FAIL"
    failed = "; ".join(f"{c.name}: {c.detail}" for c in result.checks if not c.ok)
    return f"{status}  {to_text(result.graph)}  P={result.num_paths} sum L^3={result.update.power_sum}  {drift}" + (
        f"  [{failed}]" if failed else ""
    )


def _report(result, symbolic_moments) -> str:
    rec = result.to_record()
    lines = [f"graph      {rec['graph']}", f"init       {rec['init']}   context {rec['context']}   "
             f"activation {rec['activation']}", ""]
    for name, c in rec["checks"].items():
        lines.append(f"{'PASS' if c['ok'] else 'FAIL'}  {name:<16} {c['detail']}")
    lines += ["", f"paths P = {rec['num_paths']}, (S0..S3) = {tuple(rec['path_moments'])}, "
              f"sum_p L_p^3 = {rec['sum_L3']}, q = {rec['kernel_size']}", "",
              "node  d_in  E|z_v|^2/E|z_0|^2   status      restoration"]
    for n in rec["nodes"]:
        lines.append(f"{n['node']:>4}  {n['in_degree']:>4}  {n['second_moment_ratio']:>17}   {n['status']:<10}  "
                     f"{n['restoration']}")
    if symbolic_moments is not None:
        lines += ["", "E|z_v|^2/E|z_0|^2 in the gains C_u_v (Var W = C / fan_in), eq. 1 at infinite width:"]
        for v, r in enumerate(symbolic_moments.ratios):
            lines.append(f"  z_{v}: {r}")
    if rec["restoring_gains"]:
        gains = ", ".join(f"{k}: {v if v is not None else 'any'}" for k, v in rec["restoring_gains"].items())
        lines += ["", f"gains keeping every node at the input's moment: {gains}"
                  + ("" if rec["restorable"] else "  (not restorable: see the nodes marked over/under)")]
    elif rec["restorability_undecided"]:
        lines += ["", f"restorability undecided: {rec['restorability_undecided']}"]
    lr = rec["learning_rate"]
    lines += ["", f"maximal update: B(eta) = {lr['update']}   eta* = {lr['eta_star']}",
              f"  {lr['constant']}", f"  rule learning rate = {lr['rule']}", "",
              "path sums in closed form (sum_p k_p^j, k_p = parameterised layers on the path):"]
    return "\n".join(lines)


def _closed_forms(graph: ArchGraph, context: str) -> dict:
    """Path sums of repeated copies of the graph as closed forms in the number of copies N."""
    from symbolic.pathsums import nb201_power_sums, stacked_power_sums

    forms = {"N stacked copies": stacked_power_sums(graph)}
    if context == "nb201-cell":
        forms["NAS-Bench-201 network, N cells per stage"] = nb201_power_sums(graph)
    return forms


def run(args: argparse.Namespace) -> int:
    from symbolic.moments import second_moments
    from symbolic.verify import Verifier

    from tqdm import tqdm

    if args.arch is not None:
        graph, form = parse_architecture(args.arch, kernel_size=args.kernel_size or 1)
        if graph.num_nodes > MAX_RANDOM_NODES:
            raise UsageError(
                f"ARCH has {graph.num_nodes:,} nodes; verify derives every moment symbolically (sympy), which grows "
                f"faster than the square of the edges, and takes graphs of at most {MAX_RANDOM_NODES} nodes "
                f"(nni_archscale.cli.verify_cmd.MAX_RANDOM_NODES); archscale inspect gives any graph's numeric rate")
        if len(graph.active_edges) > SLOW_EDGES:
            print(f"verify: {len(graph.active_edges)} edges: the symbolic derivation may take minutes (a 16-node "
                  f"ladder of 29 edges takes about 30 s); Ctrl-C stops it", file=sys.stderr)
        context = args.context or ("nb201-cell" if form == "nb201" else "dag")
        graphs = [graph]
        total = 1
    elif args.nb201_all:
        from ..core.formats import from_nb201

        context = args.context or "nb201-cell"
        graphs = (from_nb201(s) for s in nb201_cells())
        total = 5**6
    else:
        context = args.context or "dag"
        graphs = random_graphs(args.random, args.seed, args.max_nodes)
        total = args.random
    base_lr = args.base_lr if args.base_lr is not None else DEFAULT_BASE_LR[context]
    verifier = Verifier(args.init, context, base_lr, args.activation, args.pool, use_cache=not args.no_cache)

    start = time.perf_counter()
    results = []
    for g in tqdm(graphs, total=total, desc="verify", unit="graph", file=sys.stderr, disable=total == 1,
                  mininterval=0.5):
        results.append(verifier.verify(g))
    elapsed = time.perf_counter() - start

    failed = [r for r in results if not r.ok]
    drifting = [r for r in results if not r.drift.preserved]
    exit_status = 1 if failed or (args.fail_on_drift and drifting) else 0

    if total == 1:
        result = results[0]
        closed = _closed_forms(result.graph, context)
        if args.json:
            record = result.to_record()
            record["closed_forms"] = {k: [str(x) for x in v] for k, v in closed.items()}
            print(json.dumps(record, indent=2))
        else:
            sym = second_moments(result.graph, None, args.activation, args.pool) if args.activation == "relu" else None
            print(_report(result, sym))
            for name, sums in closed.items():
                print(f"  {name}: (S0..S3) = ({', '.join(str(x) for x in sums)})")
        return exit_status

    worst = max((r for r in drifting), key=lambda r: abs(float(r.drift.max_drift()) - 1), default=None)
    summary = {
        "graphs": len(results),
        "canonical_classes": verifier.classes if not args.no_cache else None,
        "cache_hits": verifier.hits,
        "pass": len(results) - len(failed),
        "fail": len(failed),
        "moments_preserved": len(results) - len(drifting),
        "moments_drift": len(drifting),
        "restorable": sum(bool(r.drift.restoration and r.drift.restoration.feasible) for r in results),
        "with_dead_nodes": sum(bool(r.drift.dead) for r in results),
        "largest_drift": None if worst is None else str(worst.drift.max_drift()),
        "largest_drift_graph": None if worst is None else to_text(worst.graph),
        "seconds": round(elapsed, 3),
        "init": args.init,
        "context": context,
        "equivalences": {"canonical_classes": EQUIVALENCES["canonical_classes"]},
    }
    if args.nb201_all:
        counts = nb201_class_counts()
        summary["live_edge_classes"] = counts["live_edge_classes"]
        summary["nb201_unique_strings"] = counts["nb201_unique_strings"]
        summary["equivalences"] = dict(EQUIVALENCES)
    if args.json:
        print(json.dumps({"summary": summary, "graphs": [r.to_record() for r in results]}))
        return exit_status
    for r in results if args.all_lines else failed:
        print(_line(r))
    print(
        f"{summary['graphs']} graphs ({summary['canonical_classes'] or 'no cache'} canonical classes) in "
        f"{elapsed:.1f} s: {summary['pass']} PASS, {summary['fail']} FAIL; "
        f"moments preserved on {summary['moments_preserved']}, drift on {summary['moments_drift']} "
        f"(largest {summary['largest_drift']} on {summary['largest_drift_graph']}); "
        f"restorable {summary['restorable']}; with dead nodes {summary['with_dead_nodes']}"
    )
    if args.nb201_all:
        print(f"classes by equivalence: {summary['canonical_classes'] or 'no cache'} canonical classes (isomorphism "
              f"keeping every edge's operation; zero edges dropped); {summary['live_edge_classes']} when edges on no "
              f"input-output path are also dropped; {summary['nb201_unique_strings']} under NAS-Bench-201's own "
              f"UniqueString (skips merge nodes, sums compared as multisets: the benchmark's unique architectures)")
    else:
        print("canonical classes: isomorphism keeping every edge's operation (zero edges dropped)")
    return exit_status
