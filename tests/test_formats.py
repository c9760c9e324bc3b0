"""Reading and writing graphs: NAS-Bench-201 strings, paper codes, text, JSON, networkx, edge lists."""

import json

import networkx as nx
import pytest
from hypothesis import given

from nni_archscale import (
    ArchitectureParseError, ArchGraph, Edge, EdgeKind, GraphStructureError, from_edges, from_json,
    from_nb201, from_networkx, from_paper_code, from_text, parse_architecture, to_json, to_nb201,
    to_networkx, to_paper_code, to_text,
)
from strategies import graphs, nb201_strings

CELL = "|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"


def test_nb201_edges_and_kinds():
    g = from_nb201(CELL)
    assert g.num_nodes == 4 and len(g.edges) == 6
    kinds = {e.name: (e.kind, e.kernel_size, e.op) for e in g.edges}
    assert kinds["0->1"] == (EdgeKind.PARAM, 3, "nor_conv_3x3")
    assert kinds["1->2"] == (EdgeKind.POOL, 3, "avg_pool_3x3")
    assert kinds["0->3"] == (EdgeKind.ZERO, 1, "none")
    assert kinds["1->3"] == (EdgeKind.PARAM, 1, "nor_conv_1x1")


@given(nb201_strings())
def test_nb201_round_trip(s):
    assert to_nb201(from_nb201(s)) == s


def test_paper_code_example_from_the_notes():
    # "2_02_002": node 1 <- param from 0; node 2 <- param from 1; node 3 <- param from 2
    g = from_paper_code("2_02_002")
    assert [e.name for e in g.active_edges] == ["0->1", "1->2", "2->3"]
    assert all(e.kind is EdgeKind.PARAM for e in g.active_edges)
    assert to_paper_code(g) == "2_02_002"
    assert from_paper_code("2_12_002", kernel_size=5).edge(0, 2).kind is EdgeKind.SKIP
    assert from_paper_code("2_12_002", kernel_size=5).edge(0, 1).kernel_size == 5


@given(graphs(kinds=(EdgeKind.ZERO, EdgeKind.SKIP, EdgeKind.PARAM), kernels=(1,)))
def test_paper_code_round_trip(g):
    assert from_paper_code(to_paper_code(g)).structure_key == g.structure_key


@given(graphs())
def test_text_round_trip(g):
    assert from_text(to_text(g)).identical(g)


@given(graphs())
def test_json_round_trip(g):
    assert from_json(to_json(g)).identical(g)


def test_json_keeps_labels():
    g = ArchGraph(2, [Edge(0, 1, EdgeKind.PARAM, 3, op="nor_conv_3x3", module="cells.0.edges.0")])
    back = from_json(to_json(g))
    assert back.edges[0].module == "cells.0.edges.0" and back.edges[0].op == "nor_conv_3x3"


@given(graphs())
def test_networkx_round_trip(g):
    assert from_networkx(to_networkx(g)).identical(g)


def test_networkx_renumbers_arbitrary_labels():
    d = nx.DiGraph()
    d.add_edge("out_proj", "y", kind="param")  # insertion order is not topological
    d.add_edge("x", "stem", kind="param", kernel_size=3)
    d.add_edge("stem", "out_proj", kind="skip")
    d.add_edge("stem", "y", kind="param")
    g = from_networkx(d)
    assert to_text(g) == "n=4; 0->1:param/3, 1->2:skip, 1->3:param/1, 2->3:param/1"


def test_networkx_cycle_is_named():
    d = nx.DiGraph()
    d.add_edge("a", "b", kind="skip")
    d.add_edge("b", "c", kind="skip")
    d.add_edge("c", "a", kind="skip")
    with pytest.raises(GraphStructureError, match="closes a cycle"):
        from_networkx(d)


def test_edge_list_constructor():
    g = from_edges([(0, 1, "param", 3), (1, 2, "skip"), (0, 2, "pool", 3)])
    assert g.num_nodes == 3 and g.in_degree == (0, 1, 2)


def test_parse_architecture_detects_the_form(tmp_path):
    assert parse_architecture(CELL)[1] == "nb201"
    assert parse_architecture("2_02_002")[1] == "paper-code"
    assert parse_architecture("n=2; 0->1:param/1")[1] == "text"
    path = tmp_path / "g.json"
    path.write_text(to_json(from_nb201(CELL)))
    g, form = parse_architecture(str(path))
    assert form == "json" and g.identical(from_nb201(CELL))
    assert parse_architecture(json.dumps({"num_nodes": 2, "edges": []}))[1] == "json"
