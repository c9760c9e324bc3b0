"""The architecture graph: structure, validation, canonical form."""

import pickle

import networkx as nx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nni_archscale import (
    ArchGraph, Edge, EdgeKind, GraphStructureError, from_nb201, from_paper_code,
)
from nni_archscale.errors import CanonicalFormError
from strategies import graphs, relabellings


def test_in_degree_counts_skips_and_pools_not_zeros():
    g = from_nb201("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")
    assert g.in_degree == (0, 1, 2, 2)
    assert g.out_degree == (2, 2, 1, 0)
    assert [e.name for e in g.parameterised_edges] == ["0->1", "1->3"]
    assert g.kernel_sizes == (1, 3)


def test_immutable_and_hashable():
    g = from_paper_code("2_02_002")
    with pytest.raises(AttributeError):
        g.num_nodes = 5
    assert len({g, from_paper_code("2_02_002"), from_paper_code("2_12_002")}) == 2
    assert pickle.loads(pickle.dumps(g)).identical(g)


def test_isomorphic_cells_compare_equal():
    # swapping the two inner nodes of a cell with no edge between them
    a = from_nb201("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    b = from_nb201("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
    assert not a.identical(b)
    assert a == b and hash(a) == hash(b)
    assert a.canonical().identical(b.canonical())
    c = from_nb201("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    assert a != c


def test_kernel_size_and_kind_distinguish():
    assert from_paper_code("2", kernel_size=3) != from_paper_code("2", kernel_size=1)
    assert ArchGraph(2, [Edge(0, 1, EdgeKind.SKIP)]) != ArchGraph(2, [Edge(0, 1, EdgeKind.POOL)])


def test_zero_edges_do_not_matter_for_equality():
    a = ArchGraph(3, [Edge(0, 1, "param"), Edge(1, 2, "skip"), Edge(0, 2, "zero")])
    b = ArchGraph(3, [Edge(0, 1, "param"), Edge(1, 2, "skip")])
    assert a == b and not a.identical(b)


@given(graphs(max_nodes=7), st.data())
def test_relabelling_is_equal_and_canonical_is_identical(g, data):
    h = data.draw(relabellings(g))
    assert g == h
    assert hash(g) == hash(h)
    assert g.canonical().identical(h.canonical())


@given(graphs(max_nodes=7))
def test_canonical_numbering_is_topological_and_equal(g):
    c = g.canonical()  # the constructor rejects non-topological numberings
    assert c == g
    assert c.in_degree[0] == 0


def test_canonical_of_parallel_branches_is_fast():
    # 12 identical parallel two-layer branches: 12! numberings, twins prune them
    edges = []
    n = 2 + 12
    for b in range(12):
        edges += [Edge(0, 1 + b, EdgeKind.PARAM), Edge(1 + b, n - 1, EdgeKind.PARAM)]
    g = ArchGraph(n, edges)
    assert g == g.canonical()


def test_canonical_form_gives_up_clearly_on_pathological_symmetry(monkeypatch):
    import nni_archscale.core.canonical as canonical

    monkeypatch.setattr(canonical, "MAX_LEAVES", 2)
    # 4 parallel chains of length 2: inner nodes are not twins, so the search branches
    edges, n = [], 2 + 8
    for b in range(4):
        u, v = 1 + 2 * b, 2 + 2 * b
        edges += [Edge(0, u, "param"), Edge(u, v, "param"), Edge(v, n - 1, "param")]
    g = ArchGraph(n, edges)
    with pytest.raises(CanonicalFormError, match="identical"):
        hash(g)


@pytest.mark.parametrize(
    "num_nodes, edges, message",
    [
        (1, [], "at least 2 nodes"),
        (3, [Edge(0, 3, EdgeKind.SKIP)], "outside 0..2"),
        (3, [Edge(1, 1, EdgeKind.SKIP)], "self-loop"),
        (3, [Edge(0, 1, EdgeKind.SKIP), Edge(0, 1, EdgeKind.PARAM)], "appears twice"),
        (3, [Edge(0, 1, EdgeKind.SKIP), Edge(1, 2, EdgeKind.SKIP), Edge(2, 1, EdgeKind.SKIP)], "closes a cycle"),
        (3, [Edge(2, 1, EdgeKind.SKIP)], "topological"),
    ],
)
def test_invalid_structures_are_named(num_nodes, edges, message):
    with pytest.raises(GraphStructureError, match=message):
        ArchGraph(num_nodes, edges)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(src=0, dst=1, kind="conv"), "unknown edge kind 'conv'"),
        (dict(src=0, dst=1, kind="param", kernel_size=0), "kernel_size must be >= 1"),
        (dict(src="0", dst=1, kind="param"), "src must be an integer"),
        (dict(src=0, dst=1.5, kind="param"), "dst must be an integer"),
    ],
)
def test_invalid_edges_are_named(kwargs, message):
    with pytest.raises(GraphStructureError, match=message):
        Edge(**kwargs)


def test_networkx_is_the_graph_library_underneath():
    g = from_nb201("|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")
    from nni_archscale import from_networkx, to_networkx

    nxg = to_networkx(g)
    assert nx.is_directed_acyclic_graph(nxg)
    assert from_networkx(nxg).identical(g)
