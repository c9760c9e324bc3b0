"""The measured maximal-update rule (torch_layer.measured_rate) and normalisation-aware segments
(torch_layer.segments): exact where eq. 8 applies, defined on any module, and side-effect free."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nni_archscale.errors import RuleError
from nni_archscale.core.networks import CellNetwork
from nni_archscale.experiments.mup_cellnet import CellNet
from nni_archscale.core.graph import ArchGraph, Edge, EdgeKind
from nni_archscale.core.paths import path_statistics, power_sum
from nni_archscale.torch_layer.measured_rate import first_step_change, measured_rate
from nni_archscale.torch_layer.segments import segment_rate_factor, segment_sums


def chain(k: int) -> ArchGraph:
    return ArchGraph(k + 1, [Edge(i, i + 1, EdgeKind.PARAM, 1) for i in range(k)])


CELLS = {
    "chain1": chain(1),
    "chain3": chain(3),
    "chain7": chain(7),
    "diamond": ArchGraph(3, [Edge(0, 1, EdgeKind.PARAM, 1), Edge(0, 2, EdgeKind.PARAM, 1),
                             Edge(1, 2, EdgeKind.PARAM, 1)]),
    "skip-chain": ArchGraph(4, [Edge(0, 1, EdgeKind.PARAM, 1), Edge(1, 2, EdgeKind.PARAM, 1),
                                Edge(2, 3, EdgeKind.PARAM, 1), Edge(0, 3, EdgeKind.SKIP, 1)]),
    "two-branches": ArchGraph(4, [Edge(0, 1, EdgeKind.PARAM, 1), Edge(1, 3, EdgeKind.PARAM, 1),
                                  Edge(0, 2, EdgeKind.PARAM, 1), Edge(2, 3, EdgeKind.PARAM, 1),
                                  Edge(1, 2, EdgeKind.PARAM, 1)]),
}


def paper_net(cell: ArchGraph, width: int, seed: int, in_features: int = 64) -> CellNet:
    """The paper's DAG-cell MLP with its init (§3.2): He fan-in variance over the target's in-degree, mean-field
    readout (variance 1/n^2), zero biases."""
    net = CellNet(CellNetwork(cell, in_features, width, 10), mup_readout=False)
    g = torch.Generator().manual_seed(seed)
    indeg = {v: sum(1 for e in cell.in_edges[v] if e.kind is not EdgeKind.ZERO) for v in range(cell.num_nodes)}
    with torch.no_grad():
        net.stem.weight.normal_(0, math.sqrt(2 / in_features), generator=g)
        for e, lin in zip(net.edge_list, net.edges):
            lin.weight.normal_(0, math.sqrt(2 / (width * indeg[e.dst])), generator=g)
        net.readout.weight.normal_(0, 1 / width, generator=g)
        for m in net.modules():
            if isinstance(m, nn.Linear):
                m.bias.zero_()
    return net


def depth_sum(cell: ArchGraph) -> int:
    return power_sum(path_statistics(cell).output, 3, 1)  # L_p = stem + the cell's layers on p


def mean_change(cell: ArchGraph, width: int = 384, seeds: int = 3) -> float:
    logs = []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(100 + seed)
        x, y = torch.randn(32, 64, generator=g), torch.randint(0, 10, (32,), generator=g)
        logs.append(math.log(first_step_change(paper_net(cell, width, seed), x, y, "sgd")))
    return math.exp(sum(logs) / len(logs))


def test_measured_rule_agrees_with_eq8_on_mlp_dags():
    """Where eq. 8 applies (ReLU MLP DAGs, the paper's init), the measured rule predicts the same rate ratios:
    each DAG's log2 rate relative to the one-layer cell within 0.75 octave of eq. 8's (finite width and three
    seeds leave that much noise), and the two orderings agree (Pearson r of the log ratios above 0.95)."""
    base = mean_change(CELLS["chain1"])
    measured, predicted = [], []
    for name, cell in CELLS.items():
        m = math.log2(base / mean_change(cell))
        p = 0.5 * math.log2(depth_sum(CELLS["chain1"]) / depth_sum(cell))
        measured.append(m)
        predicted.append(p)
        assert abs(m - p) < 0.75, f"{name}: measured {m:+.2f} octaves, eq. 8 {p:+.2f}"
    mm, pm = sum(measured) / len(measured), sum(predicted) / len(predicted)
    cov = sum((a - mm) * (b - pm) for a, b in zip(measured, predicted))
    r = cov / math.sqrt(sum((a - mm) ** 2 for a in measured) * sum((b - pm) ** 2 for b in predicted))
    assert r > 0.95


def test_measured_depth_exponent_is_eq8s():
    """Along a chain, eq. 8 says the change grows as L^(3/2): the fitted exponent from L = 2 to 16 is 1.5 +- 0.3."""
    ls = [2, 4, 8, 16]
    logs = [math.log(mean_change(chain(L - 1), width=256, seeds=2)) for L in ls]
    xs = [math.log(L) for L in ls]
    xm, ym = sum(xs) / len(xs), sum(logs) / len(logs)
    slope = sum((x - xm) * (y - ym) for x, y in zip(xs, logs)) / sum((x - xm) ** 2 for x in xs)
    assert 1.2 < slope < 1.8, slope


class _Mobile(nn.Module):
    """Batch norm, a depthwise conv, squeeze-excite and dropout: what the path count cannot read."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.dw = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 2, 1), nn.ReLU(), nn.Conv2d(2, 8, 1),
                                nn.Sigmoid())
        self.pw = nn.Sequential(nn.Conv2d(8, 16, 1), nn.BatchNorm2d(16), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(16, 10))

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x)
        y = y * self.se(y)
        x = self.pw(x + y)
        return self.head(x.mean((2, 3)))


def test_measurement_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = _Mobile().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    for opt in ("sgd", "adam"):
        change = first_step_change(model, x, y, opt)
        assert math.isfinite(change) and change > 0
    assert not model.training  # the mode is restored
    for k, v in model.state_dict().items():  # parameters and batch-norm running statistics
        assert torch.equal(v, before[k]), k


def test_measurement_is_deterministic_with_dropout():
    torch.manual_seed(0)
    model = _Mobile()
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    assert first_step_change(model, x, y) == first_step_change(model, x, y)


def test_sgd_change_scales_with_the_gradient_and_adam_does_not():
    torch.manual_seed(0)
    model = _Mobile()
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    ce = F.cross_entropy
    s1 = first_step_change(model, x, y, "sgd", loss_fn=ce)
    s3 = first_step_change(model, x, y, "sgd", loss_fn=lambda o, t: 3 * ce(o, t))
    assert s3 == pytest.approx(3 * s1, rel=1e-3)
    a1 = first_step_change(model, x, y, "adam", loss_fn=ce)
    a3 = first_step_change(model, x, y, "adam", loss_fn=lambda o, t: 3 * ce(o, t))
    assert a3 == pytest.approx(a1, rel=1e-3)


def test_no_layer_before_the_readout_is_an_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 10))
    with pytest.raises(RuleError, match="no trainable layer before its readout"):
        first_step_change(model, torch.randn(4, 3, 2, 2), torch.randint(0, 10, (4,)))
    with pytest.raises(RuleError, match="unknown optimizer"):
        first_step_change(model, torch.randn(4, 3, 2, 2), torch.randint(0, 10, (4,)), "lion")


def test_measured_rate_formula():
    assert measured_rate(0.1, 2.0, 4.0) == pytest.approx(0.05)
    with pytest.raises(RuleError):
        measured_rate(0.1, 0.0, 1.0)


# ---- segments ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CELLS))
def test_segments_without_normalisation_are_eq8(name):
    """No normalisation: one segment, and the factor ratio between two DAGs is eq. 8's."""
    cell = CELLS[name]
    base = segment_rate_factor(paper_net(CELLS["chain1"], 8, 0))
    got = segment_rate_factor(paper_net(cell, 8, 0))
    assert got / base == pytest.approx(math.sqrt(depth_sum(CELLS["chain1"]) / depth_sum(cell)))
    assert len(segment_sums(paper_net(cell, 8, 0)).costs) == 1


def test_normalisation_closes_a_segment():
    conv_bn = [nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()]
    deep = nn.Sequential(*[m for _ in range(3) for m in
                           (nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    shallow = nn.Sequential(*conv_bn, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    # every conv is followed by batch norm: each segment holds one layer, so depth no longer shrinks the rate
    assert segment_rate_factor(deep) == pytest.approx(segment_rate_factor(shallow))
    assert [c for _, c in segment_sums(deep).costs][:3] == [1.0, 1.0, 1.0]
    plain = nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(4, 4, 3, padding=1), nn.ReLU())],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
    assert segment_rate_factor(plain) == pytest.approx(3 ** -1.5)  # eq. 8: one path, L = 3, kernel 3


def test_zero_op_carries_no_path():
    class WithZero(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            h = torch.relu(self.a(x))
            return self.head(torch.relu(self.b(h)) + h.mul(0.0) + h)

    # paths into the head: a->b (L = 2) and a (L = 1, the skip); the zero term adds none
    assert segment_sums(WithZero()).worst[1] == pytest.approx((8 + 1) / 9)


def test_submodule_modes_are_restored_one_by_one():
    torch.manual_seed(0)
    model = _Mobile().train()
    model.stem[1].eval()  # a frozen batch norm inside a training model
    first_step_change(model, torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,)))
    assert model.training and not model.stem[1].training and model.dw[1].training
