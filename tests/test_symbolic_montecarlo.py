"""Empirical check (torch): at width 1024 the measured second moment of every node at initialisation agrees
with the symbolic prediction, on random graphs with skips.

Statistical tolerance. For ReLU the symbolic mean recursion holds at finite width too (the cross terms
vanish in expectation exactly; ``E relu(z)^2 = E z^2 / 2`` up to O(1/n) where a skip meets a parameterised
output), so the test is a plain mean test: over R = 6 independent networks (fresh weights and a batch of
32 inputs each), ``|mean - prediction| <= 5 * SE + 0.01 * prediction`` with ``SE`` the standard error across
the R replicates (5 sigma: a false alarm rate below 1e-6 per node) and 1% for the O(1/n) bias. GeLU adds a
finite-width bias to E gelu(z)^2 (z is only Gaussian as n -> inf); the same bound holds with room.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
import torch

from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind
from nni_archscale.rules.paper import edge_init
from symbolic.moments import second_moments

WIDTH = 1024
REPLICATES = 6
BATCH = 32


def random_skip_graph(seed: int) -> ArchGraph:
    rng = random.Random(seed)
    n = rng.randint(3, 6)
    edges = [Edge(v - 1, v, rng.choice((EdgeKind.PARAM, EdgeKind.SKIP))) for v in range(1, n)]  # a spine
    for v in range(2, n):
        for u in range(v - 1):
            if rng.random() < 0.5:
                edges.append(Edge(u, v, rng.choice((EdgeKind.PARAM, EdgeKind.SKIP, EdgeKind.SKIP))))
    return ArchGraph(n, edges)


def measure(graph: ArchGraph, gains: dict, act, seed: int) -> list[float]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, WIDTH, generator=gen)
    z = [x] + [None] * (graph.num_nodes - 1)
    for v in range(1, graph.num_nodes):
        acc = torch.zeros(BATCH, WIDTH)
        for e in graph.in_edges[v]:
            if e.kind is EdgeKind.PARAM:
                W = torch.randn(WIDTH, WIDTH, generator=gen) * math.sqrt(float(gains[(e.src, e.dst)]) / WIDTH)
                acc = acc + act(z[e.src]) @ W.T
            else:
                acc = acc + z[e.src]
        z[v] = acc
    return [float((t * t).mean()) for t in z]


def assert_agrees(graph, gains, activation, act):
    predicted = [float(r) for r in second_moments(graph, gains, activation).ratios]
    runs = [measure(graph, gains, act, seed) for seed in range(REPLICATES)]
    for v in range(graph.num_nodes):
        values = [r[v] for r in runs]
        mean = sum(values) / REPLICATES
        se = math.sqrt(sum((x - mean) ** 2 for x in values) / (REPLICATES - 1) / REPLICATES)
        assert abs(mean - predicted[v]) <= 5 * se + 0.01 * predicted[v], (graph, v, mean, predicted[v], se)


@pytest.mark.parametrize("seed", range(6))
def test_relu_moments_under_the_paper_rule(seed):
    torch.set_num_threads(2)
    graph = random_skip_graph(seed)
    gains = {(i.edge.src, i.edge.dst): i.gain for i in edge_init(graph, "paper")}
    assert_agrees(graph, gains, "relu", torch.relu)


def test_relu_moments_with_other_gains_and_a_drifting_resnet():
    rng = random.Random(7)
    graph = ArchGraph(5, [Edge(0, 1, EdgeKind.PARAM), Edge(0, 2, EdgeKind.SKIP), Edge(1, 2, EdgeKind.PARAM),
                          Edge(2, 3, EdgeKind.PARAM), Edge(2, 4, EdgeKind.SKIP), Edge(3, 4, EdgeKind.PARAM),
                          Edge(1, 4, EdgeKind.SKIP)])
    gains = {(e.src, e.dst): Fraction(rng.randint(1, 8), 4) for e in graph.parameterised_edges}
    assert_agrees(graph, gains, "relu", torch.relu)


def test_gelu_moments():
    graph = ArchGraph(4, [Edge(0, 1, EdgeKind.PARAM), Edge(1, 2, EdgeKind.PARAM), Edge(0, 2, EdgeKind.SKIP),
                          Edge(2, 3, EdgeKind.PARAM), Edge(1, 3, EdgeKind.PARAM)])
    gains = {(e.src, e.dst): Fraction(2) for e in graph.parameterised_edges}
    assert_agrees(graph, gains, "gelu", torch.nn.functional.gelu)
