"""The first-step kernels behind the moment rules, against autograd on real finite-width networks, and the
batched trainer and maximal-rate search they are measured with."""

import math

import numpy as np
import pytest
import torch

from nni_archscale import from_paper_code
from nni_archscale.errors import RuleError
from nni_archscale.experiments.batched import BatchedCellNet, ReplicaOptimizer
from nni_archscale.core.networks import CellNetwork
from nni_archscale.experiments.maxlr import train_grid
from nni_archscale.experiments.rule_variants import multiplier
from nni_archscale.rules.first_step import cell_init, first_step_kernel
from nni_archscale.torch_layer.rate_grid import log2_grid

CELLS = ["0_00_000_2000", "2_02_002_0002", "2_12_112_1112", "2_22_222_2222", "1_21_011_2102"]


def measured_kernels(cell, convention, activation, init, width=512, replicas=8, inputs=4, seed=0):
    torch.manual_seed(seed)
    spec = CellNetwork(cell, 64, width, 10, convention=convention, activation=activation)
    model = BatchedCellNet(spec, replicas)
    model.initialise(cell_init(spec, init), list(range(replicas)))
    weights = [p for name, p in model.named_parameters() if "_w" in name]
    x = torch.randn(inputs, 64)
    t2 = t1 = 0.0
    for b in range(inputs):
        grads = torch.autograd.grad(model(x[b:b + 1])[:, 0, 0].sum(), weights)
        t2 += float(sum((g.reshape(replicas, -1) ** 2).sum(1) for g in grads).mean()) / inputs
        t1 += float(sum(g.reshape(replicas, -1).abs().sum(1) for g in grads).mean()) / inputs
    return t2, t1


FAST = {("2_12_112_1112", "linear-act", "paper"), ("2_22_222_2222", "eq1", "exact"),
        ("1_21_011_2102", "linear-act", "release"), ("0_00_000_2000", "eq1", "paper")}
MATRIX = [pytest.param(c, v, i, marks=() if (c, v, i) in FAST else pytest.mark.slow)
          for c in CELLS for v in ("linear-act", "eq1") for i in ("paper", "exact", "release")]


@pytest.mark.parametrize("code, convention, init", MATRIX)
def test_relu_kernels_match_autograd_at_width_512(code, convention, init):
    """Tolerance 30%: 8 inits x 4 inputs at width 512; the worst of these 30 cases was 25% off (the readout
    term n E[z_out^2] dominates and fluctuates with the one draw of the readout), the median about 5%."""
    cell = from_paper_code(code)
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 512, 10, convention=convention, activation="relu"), init))
    t2, t1 = measured_kernels(cell, convention, "relu", init)
    assert t2 == pytest.approx(k.theta2, rel=0.3)
    assert t1 == pytest.approx(k.theta1, rel=0.3)


@pytest.mark.parametrize("code, init", [("2_02_002_0002", "paper"), ("2_12_112_1112", "exact")])
def test_gelu_sgd_kernel_matches_autograd(code, init):
    cell = from_paper_code(code)
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 512, 10, convention="linear-act", activation="gelu"), init))
    t2, _ = measured_kernels(cell, "linear-act", "gelu", init)
    assert t2 == pytest.approx(k.theta2, rel=0.3)


def test_exact_init_makes_the_sgd_kernel_nearly_topology_free():
    thetas = [first_step_kernel(cell_init(CellNetwork(from_paper_code(c), 64, 128, 10), "exact")).theta2 for c in CELLS]
    paper = [first_step_kernel(cell_init(CellNetwork(from_paper_code(c), 64, 128, 10), "paper")).theta2 for c in CELLS]
    assert max(thetas) / min(thetas) < 1.2 < max(paper) / min(paper)


def test_multiplier_is_inverse_kernel_and_checks_its_rule():
    cell = from_paper_code("2_12_112_1112")
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 128, 10), "paper"))
    assert multiplier("moment-sgd", CellNetwork(cell, 64, 128, 10), "paper", "sgd") == pytest.approx(1 / k.theta2)
    assert multiplier("moment", CellNetwork(cell, 64, 128, 10), "paper", "adam") == pytest.approx(1 / k.theta1)
    with pytest.raises(RuleError, match="unknown rule"):
        multiplier("ntk", CellNetwork(cell, 64, 128, 10), "paper", "sgd")


def test_replicas_are_independent_and_share_init_per_seed():
    spec = CellNetwork(from_paper_code("2_12"), 8, 16, 3)
    model = BatchedCellNet(spec, 4)
    model.initialise(cell_init(spec, "paper"), [0, 0, 1, 1])
    assert torch.equal(model.edge_w[0][0], model.edge_w[0][1])
    assert not torch.equal(model.edge_w[0][0], model.edge_w[0][2])
    x, y = torch.randn(5, 8), torch.tensor([0, 1, 2, 0, 1])
    out = model(x)
    assert out.shape == (4, 5, 3) and torch.equal(out[0], out[1])
    opt = ReplicaOptimizer(model.parameters(), torch.tensor([0.0, 0.1, 0.0, 1e6]))
    torch.nn.functional.cross_entropy(out.reshape(-1, 3), y.repeat(4)).backward()
    before = model.edge_w[0].detach().clone()
    opt.step(torch.tensor([True, True, True, False]))
    after = model.edge_w[0].detach()
    assert torch.equal(after[0], before[0]) and torch.equal(after[2], before[2]) and torch.equal(after[3], before[3])
    assert not torch.equal(after[1], before[1])


def test_cnn_replicas_match_a_plain_convolution():
    spec = CellNetwork(from_paper_code("2_12", kernel_size=3), 1, 4, 3, kind="cnn", kernel_size=3)
    model = BatchedCellNet(spec, 2)
    model.initialise(cell_init(spec, "paper"), [0, 1])
    x = torch.randn(2, 1, 6, 6)
    out = model(x)
    # replica 1 by hand
    w = lambda p: p[4:8]  # noqa: E731
    h0 = torch.relu(torch.nn.functional.conv2d(x, w(model.stem_w), padding=1))
    h1 = torch.relu(torch.nn.functional.conv2d(h0, w(model.edge_w[0]), padding=1))
    h2 = h0 + torch.relu(torch.nn.functional.conv2d(h1, w(model.edge_w[1]), padding=1))
    logits = h2.mean((2, 3)) @ model.readout_w[1]
    assert torch.allclose(out[1], logits, atol=1e-5)


def test_grid_search_finds_a_finite_interior_rate_and_flags_divergence():
    torch.manual_seed(0)
    x = torch.randn(256, 16)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    spec = CellNetwork(from_paper_code("2_02"), 16, 32, 3)
    rates = log2_grid(2.0**-6, 2.0**12, per_octave=1)
    res = train_grid(cell_init(spec, "paper"), x, y, rates, [0, 1], batch_size=16)
    assert res.losses.shape == (2, len(rates))
    assert np.isinf(res.losses[:, -1]).all()  # 4096 diverges
    assert not res.at_grid_edge and all(math.isfinite(r) for r in res.best_rates)
    assert res.max_lr == pytest.approx(2 ** np.mean(np.log2(res.best_rates)))


def test_centred_kernels_drop_the_feature_means():
    cell = from_paper_code("2_22_222_2222")
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 128, 10), "paper"))
    assert 0 < k.centered2 < k.theta2 and 0 < k.centered1 < k.theta1
    # eq. 1 with a symmetric node 0 and ReLU: only the ReLU's own mean is removed, a fixed fraction 1 - 1/pi
    # of every hidden activation's second moment (v/2 - v/(2 pi)); the stem term keeps its full size
    k1 = first_step_kernel(cell_init(CellNetwork(from_paper_code("2"), 64, 128, 10, convention="eq1"), "paper"))
    hidden = k1.parts2["0->1"]
    readout_var = k1.parts2["readout"]  # node 1 is zero-mean in eq. 1: centring changes nothing there
    assert k1.centered2 == pytest.approx(hidden * (1 - 1 / math.pi) + k1.parts2["stem"] + readout_var)
    assert multiplier("centered", CellNetwork(cell, 64, 128, 10), "paper", "sgd") == pytest.approx(1 / k.centered2)
    assert multiplier("centered", CellNetwork(cell, 64, 128, 10), "paper", "adam") == pytest.approx(1 / k.centered1)


def test_depth_factor_averages_over_paths():
    from nni_archscale.experiments.rule_variants import path_mean_depth_factor

    chain = from_paper_code("2_02_002_0002")  # one path, k = 4
    assert path_mean_depth_factor(chain) == pytest.approx(7 ** -1.5)
    wide = from_paper_code("2_21")  # two paths with k = 1: 0->2 (Linear) and 0->1 (Linear) ->2 (skip)
    assert path_mean_depth_factor(wide) == pytest.approx(4 ** -1.5)  # the mean of L^3 = 64, not the sum 128
    cell = from_paper_code("2_12_112_1112")
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 128, 10), "exact"))
    assert multiplier("depth-centered-sgd", CellNetwork(cell, 64, 128, 10), "exact", "sgd") == pytest.approx(
        path_mean_depth_factor(cell) / k.centered2)


def test_path_mean_depth_is_the_depth_factor_alone_relative_to_the_base_cell():
    from nni_archscale.experiments.rule_variants import rule_multiplier

    chain = from_paper_code("2_02_002_0002")  # one path through 4 Linear edges: L_p = 4 + 3
    assert rule_multiplier("path-mean-depth", CellNetwork(chain, 64, 128, 10)) == pytest.approx((7 / 4) ** -1.5)
    # it ignores the init, the optimizer and the width
    cell = from_paper_code("2_12_112_1112")
    values = {rule_multiplier("path-mean-depth", CellNetwork(cell, 64, w, 10), i, o)
              for i in ("paper", "exact") for o in ("sgd", "adam") for w in (64, 256)}
    assert len(values) == 1


def measured_hidden_kernel(cell, init, width=512, replicas=8, inputs=4, seed=0):
    """sum over the stem and cell weights (not the readout) of (df/dtheta)^2, by autograd."""
    torch.manual_seed(seed)
    spec = CellNetwork(cell, 64, width, 10)
    model = BatchedCellNet(spec, replicas)
    model.initialise(cell_init(spec, init), list(range(replicas)))
    weights = [p for name, p in model.named_parameters() if "_w" in name and "readout" not in name]
    x = torch.randn(inputs, 64)
    x = x / x.norm(dim=1, keepdim=True) * 8  # E[x^2] = 1 exactly: the hidden kernel scales with |x|^2
    total = 0.0
    for b in range(inputs):
        grads = torch.autograd.grad(model(x[b:b + 1])[:, 0, 0].sum(), weights)
        total += float(sum((g.reshape(replicas, -1) ** 2).sum(1) for g in grads).mean()) / inputs
    return total


@pytest.mark.parametrize("code, init", [("2_02_002_0002", "paper"), ("2_12_112_1112", "exact"),
                                        ("1_21_011_2102", "paper")])
def test_hidden_kernel_matches_autograd_without_the_readout(code, init):
    """The feature rules use only the stem and cell terms, which the total kernel's test hardly sees (the
    readout's term dominates it at mean-field scale); checked on their own here."""
    cell = from_paper_code(code)
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 512, 10), init))
    hidden = k.theta2 - k.parts2["readout"]
    assert hidden < 0.1 * k.theta2  # why the readout term hides it
    assert measured_hidden_kernel(cell, init) == pytest.approx(hidden, rel=0.12)


def test_feature_rules_drop_the_readout_term_and_scale_by_the_output_feature():
    cell = from_paper_code("2_12_112_1112")
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 128, 10), "paper"))
    assert k.readout_centered2 == pytest.approx(128 * (k.output_second_moment - (k.parts1["readout"] / 128) ** 2))
    assert k.hidden_centered2 == pytest.approx(k.centered2 - k.readout_centered2) and k.hidden_centered2 > 0
    assert multiplier("feature", CellNetwork(cell, 64, 128, 10), "paper", "sgd") == pytest.approx(
        math.sqrt(k.output_second_moment) / k.hidden_centered2)
    assert multiplier("feature", CellNetwork(cell, 64, 128, 10), "paper", "adam") == pytest.approx(
        math.sqrt(k.output_second_moment) / k.hidden_centered1)


def test_feature_rule_falls_along_a_chain_where_the_full_kernel_does_not():
    """App. D: the maximal rate falls with depth. The full kernel is flat along a chain (readout term); the
    hidden kernel grows with every layer, so the feature rule falls, for both optimizers."""
    from nni_archscale.experiments.rule_variants import rule_multiplier

    chains = [from_paper_code(c) for c in ("0_00_000_2000", "2_00_000_0200", "2_02_000_0020", "2_02_002_0002")]
    for optimizer in ("sgd", "adam"):
        feature = [rule_multiplier("feature", CellNetwork(c, 196, 128, 10), "paper", optimizer)
                   for c in chains]
        assert all(a > b for a, b in zip(feature, feature[1:]))
        assert feature[-1] < 0.6
    full = [rule_multiplier("centered-sgd", CellNetwork(c, 196, 128, 10), "paper", "sgd") for c in chains]
    assert max(full) / min(full) < 1.1


def test_kernel_rules_refuse_a_cell_without_an_input_output_path():
    with pytest.raises(RuleError, match="no input-to-output path"):
        multiplier("feature-sgd", CellNetwork(from_paper_code("0_00_000_0000"), 64, 128, 10), "paper", "sgd")


def test_second_step_rule_is_the_root_of_the_hidden_kernel_times_the_mean_path_length():
    from nni_archscale.experiments.rule_variants import rule_multiplier
    from nni_archscale.rules.first_step import path_mean_length

    cell = from_paper_code("2_12_112_1112")  # 8 paths with k = 0, 0, 1, 1, 2, 2, 2, 4: mean 1.5
    assert path_mean_length(cell) == pytest.approx(1.5 + 3)
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 128, 10), "exact"))
    assert multiplier("second-step-sgd", CellNetwork(cell, 64, 128, 10), "exact", "sgd") == pytest.approx(
        (k.hidden_centered2 * 4.5) ** -0.5)
    # along a chain it falls about as 1/L, like the feature rule, not as L^(-1/2)
    chains = [from_paper_code(c) for c in ("0_00_000_2000", "2_02_002_0002")]
    second = [rule_multiplier("second-step-sgd", CellNetwork(c, 196, 128, 10), "paper", "sgd") for c in chains]
    feature = [rule_multiplier("feature-sgd", CellNetwork(c, 196, 128, 10), "paper", "sgd") for c in chains]
    assert second[1] == pytest.approx(feature[1], rel=0.1)


@pytest.mark.parametrize("code", CELLS + ["1_10_111_1111", "2_00_000_0200"])
@pytest.mark.parametrize("init", ["exact", "paper"])
def test_readout_capped_rule_is_the_tighter_of_the_second_step_and_readout_limits(code, init):
    from nni_archscale.experiments.rule_variants import rule_multiplier
    from nni_archscale.rules.first_step import base_cell

    cell, width = from_paper_code(code), 512
    capped = rule_multiplier("readout-capped-sgd", CellNetwork(cell, 196, width, 10), init, "sgd")
    second = rule_multiplier("second-step-sgd", CellNetwork(cell, 196, width, 10), init, "sgd")
    var = first_step_kernel(cell_init(CellNetwork(cell, 196, width, 10), init)).readout_centered2
    var_base = first_step_kernel(cell_init(CellNetwork(base_cell(), 196, width, 10), init)).readout_centered2
    assert capped == pytest.approx(min(second, var_base / var))
    if code in ("0_00_000_2000", "2_02_002_0002", "2_00_000_0200"):  # chains: Var(z_out) is the base cell's
        assert var == pytest.approx(var_base) and capped == pytest.approx(second)


def test_readout_cap_binds_where_the_output_carries_less_mean():
    """Exact init: every node has the input's second moment; a node summing skips of post-ReLU features keeps
    more of it as variance than a single ReLU edge does, so the cap lowers its rate."""
    from nni_archscale.experiments.rule_variants import rule_multiplier

    cell = from_paper_code("1_10_111_1111")
    capped = rule_multiplier("readout-capped-sgd", CellNetwork(cell, 196, 512, 10), "exact", "sgd")
    second = rule_multiplier("second-step-sgd", CellNetwork(cell, 196, 512, 10), "exact", "sgd")
    assert capped < second


def test_readout_limited_rate_is_the_tighter_of_two_absolute_limits():
    from nni_archscale.experiments.rule_variants import rule_multiplier
    from nni_archscale.rules.first_step import READOUT_LIMIT, base_cell, readout_limited_rate, readout_rate_limit

    for code in CELLS + ["1_12_112_1211"]:
        net = CellNetwork(from_paper_code(code), 196, 256, 10)
        k = first_step_kernel(cell_init(net, "paper"))
        cap = readout_rate_limit(net, "paper", 32)
        assert cap == pytest.approx(READOUT_LIMIT * 32 / k.readout_centered2)
        assert readout_rate_limit(net, "paper", 64) == pytest.approx(2 * cap)  # linear in B
        hidden = 0.3 * rule_multiplier("second-step-sgd", net, "paper", "sgd")
        assert readout_limited_rate(0.3, net, "paper", 32) == pytest.approx(min(hidden, cap))
    # the base cell at its measured width-128 rate is far from the readout limit (eta n Var / B = 31 / 32) ...
    base = base_cell()
    assert readout_limited_rate(0.354, CellNetwork(base, 196, 128, 10), "paper", 32) == pytest.approx(0.354)
    # ... while a skip-heavy paper-init cell at width 256 (output second moment 23x the base's) is capped by it
    heavy = from_paper_code("1_12_112_1211")
    rate = readout_limited_rate(0.3, CellNetwork(heavy, 196, 256, 10), "paper", 32)
    assert rate == pytest.approx(readout_rate_limit(CellNetwork(heavy, 196, 256, 10), "paper", 32))
    assert rate < 0.3 * rule_multiplier("second-step-sgd", CellNetwork(heavy, 196, 256, 10), "paper", "sgd")
    with pytest.raises(RuleError, match="fitted on MLP cells only"):
        readout_rate_limit(CellNetwork(heavy, 1, 16, 10, "cnn"), "paper", 32)


def test_the_product_offers_only_its_rules_and_the_research_variants_give_the_same_numbers():
    """Research variants that lost their tests live in nni_archscale.experiments.rule_variants; the product's
    table refuses them by name (saying where they are), and the research table passes them as objects."""
    from nni_archscale.rules import first_step
    from nni_archscale.experiments import rule_variants

    cell = from_paper_code("2_12_112_1112")
    assert set(first_step.RULES) == {"feature-sgd", "feature-adam"}
    for name in rule_variants.VARIANTS:
        with pytest.raises(RuleError, match="research variants .* nni_archscale.experiments.rule_variants"):
            first_step.multiplier(name, CellNetwork(cell, 64, 128, 10), "paper", "sgd")
    k = first_step_kernel(cell_init(CellNetwork(cell, 64, 128, 10), "exact"))
    obj = rule_variants.VARIANTS["second-step-sgd"]
    assert first_step.multiplier(obj, CellNetwork(cell, 64, 128, 10), "exact", "sgd") == pytest.approx(
        first_step.second_step_multiplier(k, cell))
    assert rule_variants.multiplier("feature", CellNetwork(cell, 64, 128, 10), "exact", "adam") == pytest.approx(
        first_step.multiplier("feature", CellNetwork(cell, 64, 128, 10), "exact", "adam"))


def test_no_product_module_imports_the_research_package():
    import subprocess
    import sys

    code = ("import sys, nni_archscale, nni_archscale.rules.first_step, nni_archscale.rules.defaults, nni_archscale.rules.paper, "
            "nni_archscale.torch_layer.hook, nni_archscale.nni_glue.search, nni_archscale.nni_glue.trial; "
            "print(sorted(m for m in sys.modules if m.startswith('nni_archscale.experiments')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _research_references(root):
    """(file, module) for every import of ``nni_archscale.experiments`` (absolute or relative) and every string
    that names one of its modules (what ``importlib`` loads), in the product's files: every ``.py`` under
    ``nni_archscale/`` outside ``nni_archscale/experiments/``."""
    import ast
    import re

    module_path = re.compile(r"^nni_archscale\.experiments(\.\w+)*$")
    found = set()
    for path in sorted((root / "nni_archscale").rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[1] == "experiments":
            continue
        package = list(rel.parts[:-1])  # the package a relative import starts from
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] + [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and module_path.match(node.value):
                names = [node.value]
            found |= {(rel.as_posix(), n) for n in names if n == "nni_archscale.experiments"
                      or n.startswith("nni_archscale.experiments.")}
    return found


def test_the_products_one_reference_to_the_research_package_is_the_experiment_subcommand():
    """The research package imports the product, never the reverse: the product's only reference to it is the
    ``experiment`` entry of the command line's table of subcommands, loaded by name when the parser is built."""
    from pathlib import Path

    from nni_archscale.cli.main import SUBCOMMANDS

    root = Path(__file__).resolve().parents[1]
    assert _research_references(root) == {("nni_archscale/cli/main.py", "nni_archscale.experiments.experiment_cmd")}
    assert dict(SUBCOMMANDS)["experiment"] == "nni_archscale.experiments.experiment_cmd"
    assert [m for _, m in SUBCOMMANDS if m.startswith("nni_archscale.experiments")] == ["nni_archscale.experiments.experiment_cmd"]
