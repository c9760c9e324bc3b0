"""The fast numeric moments (nni_archscale.rules.forward_moments, floats) held to the symbolic derivation (symbolic.moments,
exact fractions for ReLU, 50-digit mpmath for GeLU) on generated graphs, eq. 1 convention."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nni_archscale.rules.forward_moments import forward_moments
from nni_archscale.rules.paper import edge_init
from strategies import graphs
from symbolic.moments import second_moments


@given(graphs(max_nodes=7), st.sampled_from(["paper", "release", "standard"]))
def test_relu_moments_equal_the_exact_fractions(g, preset):
    gains = {i.edge: i.gain for i in edge_init(g, preset, "dag")}
    exact = second_moments(g, gains, "relu")
    numeric = forward_moments(g, {e: float(v) for e, v in gains.items()})
    assert all(isinstance(x, Fraction) for x in exact.second_moments)
    for v in range(g.num_nodes):
        assert numeric.second_moment[v] == pytest.approx(float(exact.second_moments[v]), rel=1e-12, abs=1e-15)
        for w in range(g.num_nodes):
            assert numeric.cross_moment(v, w) == pytest.approx(float(exact.K[v][w]), rel=1e-12, abs=1e-15)


@settings(max_examples=15)
@given(graphs(max_nodes=6))
def test_gelu_moments_equal_the_high_precision_derivation(g):
    gains = {i.edge: float(i.gain) for i in edge_init(g, "paper", "dag")}
    exact = second_moments(g, gains, "gelu")
    numeric = forward_moments(g, gains, activation="gelu")
    for v in range(g.num_nodes):
        assert numeric.second_moment[v] == pytest.approx(float(exact.second_moments[v]), rel=1e-9, abs=1e-15)
