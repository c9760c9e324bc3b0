"""Exact path statistics: dynamic programming against enumeration, invariances, composition."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nni_archscale import ArchGraph, Edge, EdgeKind, from_nb201, path_statistics
from nni_archscale.core.networks import (
    Block, Network, chain, dag_cell_network, nb201_network, resnet_reduction_block, stacked,
)
from nni_archscale.core.paths import (
    compose_moments, depth_range, enumerate_paths, enumerated_moments, power_sum, shift_moments,
)
from strategies import chains, graphs, relabellings


@given(graphs(max_nodes=9))
def test_dynamic_programming_equals_enumeration(g):
    assert path_statistics(g).output == enumerated_moments(g)


@given(chains())
def test_deep_chains(g):
    assert path_statistics(g).output == enumerated_moments(g)
    k = len(g.parameterised_edges)
    assert path_statistics(g).output == (1, k, k**2, k**3)


@pytest.mark.parametrize("n", [2, 5, 9])
def test_empty_graph_has_no_paths(n):
    g = ArchGraph(n, [])
    assert path_statistics(g).output == (0, 0, 0, 0)
    assert depth_range(g) is None


def test_skip_only_graph_counts_paths_with_depth_zero():
    g = from_nb201("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|")
    assert path_statistics(g).output == (4, 0, 0, 0)
    assert path_statistics(g).num_paths == (1, 1, 2, 4)


def test_disconnected_inner_node_contributes_nothing():
    # node 1 is unreachable (0->1 none) but feeds the output
    g = from_nb201("|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert path_statistics(g).output == (1, 2, 4, 8)
    assert path_statistics(g).in_degree == (0, 0, 2, 2)


@given(graphs(max_nodes=8), st.data())
def test_isomorphic_relabellings_have_equal_statistics(g, data):
    h = data.draw(relabellings(g))
    assert path_statistics(h).output == path_statistics(g).output
    assert sorted(h.in_degree) == sorted(g.in_degree)
    assert depth_range(h) == depth_range(g)


@given(graphs(max_nodes=8), st.data())
def test_zero_edges_change_nothing(g, data):
    present = {(e.src, e.dst) for e in g.edges}
    missing = [(j, i) for i in range(1, g.num_nodes) for j in range(i) if (j, i) not in present]
    extra = data.draw(st.lists(st.sampled_from(missing), unique=True)) if missing else []
    h = ArchGraph(g.num_nodes, [*g.edges, *(Edge(j, i, EdgeKind.ZERO) for j, i in extra)])
    assert path_statistics(h).moments == path_statistics(g).moments
    assert h.in_degree == g.in_degree
    assert h == g


@pytest.mark.parametrize("depth", [1, 2, 3, 10, 200])
def test_chain_of_depth_L_gives_L_cubed(depth):
    stats = path_statistics(chain(depth))
    assert stats.depth_power_sum(3) == depth**3
    assert stats.output == (1, depth, depth**2, depth**3)


@given(graphs(max_nodes=9))
def test_depth_range_matches_enumeration(g):
    ks = [sum(e.kind is EdgeKind.PARAM for e in p) for p in enumerate_paths(g)]
    assert depth_range(g) == ((min(ks), max(ks)) if ks else None)


@given(graphs(max_nodes=6), graphs(max_nodes=6), graphs(max_nodes=6))
def test_composition_law(a, b, c):
    net = Network("abc", tuple(Block(f"block{i}", g, "cell") for i, g in enumerate((a, b, c))))
    flat = net.flatten()
    assert net.output_moments == path_statistics(flat).output == enumerated_moments(flat)
    # associativity
    ma, mb, mc = (path_statistics(x).output for x in (a, b, c))
    assert compose_moments(compose_moments(ma, mb), mc) == compose_moments(ma, compose_moments(mb, mc))


@given(st.lists(st.integers(0, 50), min_size=4, max_size=4), st.integers(0, 7), st.integers(0, 5))
def test_shift_and_power_sum_agree(m, by, offset):
    # adding `by` to every k and then `offset` equals adding by + offset at once
    assert power_sum(shift_moments(m, by), 3, offset) == power_sum(m, 3, by + offset)


def test_nb201_network_paths_multiply_across_cells():
    cell = from_nb201("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    net = nb201_network(cell, cells_per_stage=5)
    red = path_statistics(resnet_reduction_block()).output
    assert red == (2, 3, 5, 9)
    # stem (1 path) * 4^15 cells * 2^2 reductions * classifier (1 path)
    assert net.num_paths == 4**15 * 2**2
    assert net.output_moments == path_statistics(net.flatten()).output


def test_stacked_copies_equal_repeated_composition():
    cell = from_nb201("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|skip_connect~1|nor_conv_3x3~2|")
    m = path_statistics(cell).output
    total = m
    for _ in range(6):
        total = compose_moments(total, m)
    assert stacked(cell, 7).output_moments == total


def test_dag_cell_network_adds_stem_and_readout_layers():
    net = dag_cell_network(ArchGraph(2, [Edge(0, 1, EdgeKind.SKIP)]), "mlp")
    assert net.output_moments == (1, 2, 4, 8)  # stem + readout, both parameterised
    assert dag_cell_network(chain(2, 5), "cnn").meta["kernel_size"] == 5


def test_huge_graph_is_exact():
    # a 10,000-node chain of diamonds: 2^4999 paths, exact integers
    n = 10_001
    edges = []
    for i in range(0, n - 1, 2):
        edges += [Edge(i, i + 1, EdgeKind.PARAM), Edge(i + 1, i + 2, EdgeKind.SKIP), Edge(i, i + 2, EdgeKind.SKIP)]
    g = ArchGraph(n, edges)
    s0, s1, s2, s3 = path_statistics(g).output
    blocks = (n - 1) // 2
    assert s0 == 2**blocks
    assert s1 == blocks * 2 ** (blocks - 1)  # each diamond's param branch is taken in half the paths
