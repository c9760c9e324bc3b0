"""Forward second moments, rule drift and restorability (symbolic.moments / restore / verification)."""

from __future__ import annotations

import random
from fractions import Fraction

import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import graphs

from nni_archscale.core.formats import from_paper_code
from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind
from nni_archscale.core.networks import chain
from nni_archscale.rules.paper import edge_init
from symbolic.moments import PoolModel, edge_symbol, second_moments, two_input_kernel
from symbolic.restore import live_nodes, restoring_gains
from symbolic.rule_check import check_rule

PARAM_ONLY = (EdgeKind.ZERO, EdgeKind.PARAM)


def fully_live(graph: ArchGraph) -> bool:
    live = live_nodes(graph)
    return all(live[e.src] for e in graph.active_edges) and all(live)


def test_resnet_block_drifts_by_three_halves():
    # z2 = W relu(z1) + z0 with z1 = W' relu(z0): eq. 4 gives 2/1 and 2/2 -> 1 + (2/2)/2 ... = 3/2
    rc = check_rule(from_paper_code("2_12"))
    assert [n.ratio for n in rc.nodes] == [1, 1, Fraction(3, 2)]
    assert [n.status for n in rc.nodes] == ["preserved", "preserved", "drifts"]


def test_symbolic_moments_are_products_of_half_gains_along_a_chain():
    g = chain(4)
    fm = second_moments(g)
    expected = sp.Integer(1)
    for v, e in enumerate(g.parameterised_edges, start=1):
        expected *= edge_symbol(e) / 2
        assert sp.expand(fm.ratios[v] - expected) == 0


def test_skips_from_correlated_nodes_add_covariance_twice():
    # node 2 = skip(0) + skip(1) where node 1 = skip(0): z2 = 2 x, moment 4 (not 1 + 1)
    g = ArchGraph(3, [Edge(0, 1, EdgeKind.SKIP), Edge(0, 2, EdgeKind.SKIP), Edge(1, 2, EdgeKind.SKIP)])
    assert second_moments(g).ratios[2] == 4
    # a parameterised edge decorrelates: node 2 = skip(0) + W relu(0): 1 + C/2
    g2 = ArchGraph(3, [Edge(0, 1, EdgeKind.PARAM), Edge(0, 2, EdgeKind.SKIP), Edge(1, 2, EdgeKind.SKIP)])
    fm = second_moments(g2)
    assert fm.K[1][0] == 0 and sp.expand(fm.ratios[2] - (1 + edge_symbol(g2.parameterised_edges[0]) / 2)) == 0


@given(graphs(kinds=PARAM_ONLY, max_nodes=7))
def test_paper_rule_preserves_every_node_of_skip_free_graphs(graph):
    if not fully_live(graph):
        return
    rc = check_rule(graph, "paper")
    assert rc.preserved and all(n.ratio == 1 for n in rc.nodes)


@given(graphs(max_nodes=6))
def test_symbolic_moments_substituted_equal_exact_moments(graph):
    sym = second_moments(graph, None, pool="symbolic")
    gains = {(i.edge.src, i.edge.dst): i.gain for i in edge_init(graph, "paper")}
    exact = second_moments(graph, gains, pool="identity")
    subs = {edge_symbol(e): sp.Rational(gains[(e.src, e.dst)]) for e in graph.parameterised_edges}
    subs.update({sp.Symbol(f"rho_{q}", positive=True): 1 for q in (1, 3, 5, 7)})
    for v in range(graph.num_nodes):
        value = sp.nsimplify(sp.sympify(sym.ratios[v]).subs(subs))
        assert value == sp.Rational(exact.ratios[v].numerator, exact.ratios[v].denominator)


@given(graphs(max_nodes=7), st.integers(0, 2**16))
def test_restoring_gains_restore_and_any_split_of_a_node_total_does(graph, seed):
    rest = restoring_gains(graph)
    if not rest.feasible:
        return
    gains = {k: (0 if v is None else v) for k, v in rest.gains.items()}
    ratios = second_moments(graph, gains).ratios
    live = live_nodes(graph)
    assert all(r == 1 for r, alive in zip(ratios, live) if alive)
    # the per-node total is forced, the split is free: redistribute each node's total at random
    rng = random.Random(seed)
    resplit = dict(gains)
    for v in range(graph.num_nodes):
        keys = [(e.src, e.dst) for e in graph.in_edges[v] if e.kind is EdgeKind.PARAM and live[e.src]]
        if len(keys) < 2:
            continue
        total = sum(gains[k] for k in keys)
        weights = [Fraction(rng.randint(1, 9)) for _ in keys]
        for k, w in zip(keys, weights):
            resplit[k] = total * w / sum(weights)
    assert all(r == 1 for r, alive in zip(second_moments(graph, resplit).ratios, live) if alive)


def test_restoration_says_where_no_gain_can_help():
    rest = restoring_gains(from_paper_code("2_12_112"))  # node 3 = skip(0) + skip(1) + W relu(z2)
    statuses = [n.status for n in rest.nodes]
    assert statuses == ["input", "ok", "zero-variance", "over"]
    assert rest.nodes[3].skip_moment_ratio == 2 and not rest.feasible
    under = restoring_gains(ArchGraph(3, [Edge(0, 1, EdgeKind.PARAM), Edge(1, 2, EdgeKind.POOL, 3)]),
                            pool={3: Fraction(1, 9)})
    assert under.nodes[2].status == "under" and under.nodes[2].skip_moment_ratio == Fraction(1, 9)


def test_dead_nodes_and_dead_edges():
    # node 1 has no input; node 2 = W relu(x) + W' relu(z1): eq. 4 counts the dead edge -> ratio 1/2
    g = ArchGraph(3, [Edge(0, 2, EdgeKind.PARAM), Edge(1, 2, EdgeKind.PARAM)])
    rc = check_rule(g, "paper")
    assert [n.status for n in rc.nodes] == ["preserved", "dead", "drifts"]
    assert rc.nodes[2].ratio == Fraction(1, 2)
    rest = restoring_gains(g)
    assert rest.gains[(0, 2)] == 2 and rest.gains[(1, 2)] is None and rest.feasible


def test_gelu_moments_need_larger_gains():
    g = chain(3)
    rc = check_rule(g, "paper", activation="gelu")
    assert all(float(n.ratio) < 1 for n in rc.nodes[1:])  # V_gelu(1) < 1/2: He's gain 2 shrinks
    rest = restoring_gains(g, "gelu")
    fm = second_moments(g, rest.gains, "gelu")
    assert all(abs(float(r) - 1) < 1e-30 for r in fm.ratios)


def test_pool_models():
    g = ArchGraph(3, [Edge(0, 1, EdgeKind.POOL, 3), Edge(1, 2, EdgeKind.SKIP), Edge(0, 2, EdgeKind.SKIP)])
    assert second_moments(g).ratios[2] == 4  # identity-like: z2 = 2x
    sym = second_moments(g, pool="symbolic").ratios[2]
    rho = sp.Symbol("rho_3", positive=True)
    assert sp.simplify(sym - (1 + sp.sqrt(rho)) ** 2) == 0
    assert second_moments(g, pool={3: Fraction(1, 9)}).ratios[2] == Fraction(16, 9)


def test_two_input_kernel_single_layer_is_arc_cosine():
    k = two_input_kernel(chain(1), {(0, 1): 2}, (1, 1), sp.Integer(0))
    # orthogonal inputs: 2 * E[relu u] E[relu v] = 2 / (2 pi)
    assert sp.simplify(k[1][2] - 1 / sp.pi) == 0
    assert k[1][0] == 1 and k[1][1] == 1
