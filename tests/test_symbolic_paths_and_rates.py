"""Path sums in closed form and the maximal-update learning rate, against the numeric code.

Includes the mutation check: deliberately wrong rules (source instead of target in-degree; exponent 1
instead of 3/2) must be rejected by the same property checks the real rules pass.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import sympy as sp
from hypothesis import find, given, settings
from hypothesis import strategies as st
from strategies import chains, graphs, nb201_strings, relabellings

from nni_archscale.errors import NoPathError, RuleError
from nni_archscale.core.formats import from_nb201
from nni_archscale.core.graph import EdgeKind
from nni_archscale.core.networks import chain, nb201_network, stacked
from nni_archscale.core.paths import enumerated_moments, path_statistics
from nni_archscale.rules.paper import EdgeInit, edge_init, learning_rate
from symbolic.maxupdate import max_update, solved_rate
from symbolic.pathsums import (
    L,
    N,
    chain_power_sums,
    nb201_power_sums,
    path_polynomial,
    polynomial_power_sums,
    stacked_moments_by_matrix,
    stacked_power_sums,
)
from symbolic.restore import live_nodes
from symbolic.rule_check import check_rule
from symbolic.verify import Verifier, check_init, check_path_statistics

# --------------------------------------------------------------------------- path sums


@given(graphs(max_nodes=8))
def test_path_polynomial_moments_equal_numeric_path_statistics(graph):
    assert check_path_statistics(graph).ok
    polys = path_polynomial(graph)
    assert polynomial_power_sums(polys[-1], 3) == tuple(enumerated_moments(graph))


def test_chain_of_symbolic_depth():
    assert chain_power_sums() == (1, L, L**2, L**3)
    assert chain_power_sums(offset=2)[3] == (L + 2) ** 3
    for depth in (1, 5, 40):
        assert chain_power_sums()[3].subs(L, depth) == path_statistics(chain(depth)).depth_power_sum(3)


@settings(max_examples=15)
@given(graphs(min_nodes=2, max_nodes=5))
def test_stacked_cells_closed_form_in_N(cell):
    closed = stacked_power_sums(cell)
    by_matrix = stacked_moments_by_matrix(cell)
    for copies in (1, 2, 3, 5):
        numeric = stacked(cell, copies).output_moments
        assert tuple(int(x.subs(N, copies)) for x in closed) == tuple(numeric)
        assert tuple(int(x.subs(N, copies)) for x in by_matrix) == tuple(numeric)


@settings(max_examples=10)
@given(nb201_strings())
def test_nb201_macro_network_closed_form_in_N(text):
    cell = from_nb201(text)
    closed = nb201_power_sums(cell)
    for n in (1, 2, 5):
        assert tuple(int(x.subs(N, n)) for x in closed) == tuple(nb201_network(cell, n).output_moments)


def test_nb201_all_conv_cell_closed_form():
    cell = from_nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    P = nb201_power_sums(cell)[0]
    # 4 paths per cell, 15 cells at N = 5, 2 paths per reduction block
    assert sp.simplify(P - 4 * 4 ** (3 * N)) == 0 and P.subs(N, 5) == 4**15 * 4


# --------------------------------------------------------------------------- maximal update


def test_maximal_update_root():
    root = solved_rate()
    assert {str(x) for x in root.free_symbols} == {"S", "beta", "kappa", "q"}
    assert sp.simplify(root**2 * sp.Symbol("kappa", positive=True) * sp.Symbol("q", positive=True) ** 2
                       * sp.Symbol("S", positive=True) - sp.Symbol("beta", positive=True)) == 0


@pytest.mark.parametrize("preset", ["paper", "release"])
@given(graph=graphs(max_nodes=7))
def test_rule_learning_rate_is_the_maximal_update_root(preset, graph):
    mu = max_update(graph, preset, "dag", base_lr=0.3)
    assert mu.matches, mu.detail


@given(nb201_strings(), st.sampled_from(["paper", "release"]))
def test_nb201_learning_rates(text, preset):
    mu = max_update(from_nb201(text), preset, "nb201-cell", base_lr=0.46)
    assert mu.matches, mu.detail


def test_constant_c_is_graph_independent():
    implied = {max_update(g, "paper", "dag", 0.7).implied_constant for g in (chain(1), chain(9), chain(3, 3))}
    assert all(math.isclose(c, 0.7, rel_tol=1e-12) for c in implied)


# --------------------------------------------------------------------------- mutation check


def source_degree_rule(graph):
    """Wrong on purpose: eq. 4 read with the *source* in-degree."""
    return tuple(
        EdgeInit(e, Fraction(2, max(graph.in_degree[e.src], 1)), "fan_in", e.src,
                 graph.in_degree[e.src], "mutant")
        for e in graph.parameterised_edges
    )


def exponent_one_rate(graph, base_lr=1.0):
    """Wrong on purpose: eta ~ (sum L^3)^-1 instead of ^-1/2."""
    return learning_rate(graph, base_lr).value ** 2 / base_lr


def _skip_free_live(graph):
    live = live_nodes(graph)
    return all(live) and all(live[e.src] for e in graph.active_edges)


def preserves_moments(graph, rule) -> bool:
    return check_rule(graph, rule).preserved


def test_mutation_source_degree_is_rejected():
    skip_free = graphs(kinds=(EdgeKind.ZERO, EdgeKind.PARAM), max_nodes=7)
    # the property the real rule passes (test above) ...
    bad = find(skip_free, lambda g: _skip_free_live(g) and not preserves_moments(g, source_degree_rule))
    # ... fails for the mutant, and the init check names the offending edge
    assert preserves_moments(bad, "paper")
    check = check_init(bad, "paper", "dag", gains_fn=source_degree_rule)
    assert not check.ok and "derivation gives" in check.detail


def test_mutation_exponent_one_is_rejected():
    mlps = graphs(max_nodes=7, kernels=(1,))  # no kernel factor: only the exponent can go wrong
    bad = find(mlps, lambda g: _has_rate(g) and not max_update(g, rate=exponent_one_rate).matches)
    assert max_update(bad).matches  # the real rule passes on the very graph that exposes the mutant
    assert max_update(bad).power_sum > 1  # exponents agree only where sum_p L_p^3 = 1


def _has_rate(graph):
    try:
        learning_rate(graph, 1.0)
    except (NoPathError, RuleError):
        return False
    return True


# --------------------------------------------------------------------------- canonical cache


@settings(max_examples=30)
@given(st.data())
def test_cache_maps_node_results_through_isomorphisms(data):
    graph = data.draw(graphs(min_nodes=3, max_nodes=7))
    twin = data.draw(relabellings(graph))
    verifier = Verifier()
    first = verifier.verify(graph)
    second = verifier.verify(twin)
    assert second.cached and verifier.classes == 1
    plain = Verifier(use_cache=False).verify(twin)
    assert [second.ratio(v) for v in range(twin.num_nodes)] == [plain.ratio(v) for v in range(twin.num_nodes)]
    assert second.to_record()["nodes"] == plain.to_record()["nodes"]
    assert second.to_record()["restoring_gains"] == plain.to_record()["restoring_gains"]
    assert first.ok and second.ok


@given(chains(max_depth=30))
def test_deep_chains_verify(graph):
    result = Verifier().verify(graph)
    assert result.ok, [c.detail for c in result.checks if not c.ok]
