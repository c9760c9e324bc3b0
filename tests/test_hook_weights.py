"""The hook and the weights it must treat with care (issues 24 and 25).

* frozen parameters (``requires_grad=False``, a pretrained backbone) are neither re-initialised nor put in a param
  group, and the notes say so;
* a weight tied between two modules (the same ``nn.Parameter``) is initialised once, by its input-side use, and
  sits in exactly one param group;
* a model that is only a readout layer gets an error that says so and what to do;
* HookConfig refuses a bad weight decay or batch size when it is made;
* the param groups are built once (issue 24) and the refactor changed nothing: for every rule in the rate registry,
  on a DAG-cell MLP, two conv nets and a NAS-Bench-201 cell, the groups' rates and the parameters the hook
  produces equal the values recorded from the code before the refactor (``tests/data/hook_groups_before.json``,
  written by ``python tests/test_hook_weights.py --record`` in a ``git archive`` export of commit 3c2a566, the
  code before the refactor; never re-record it from the refactored code, which would compare the code with
  itself).
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))

from nni_archscale.rules import registry  # noqa: E402
from nni_archscale.errors import RuleError  # noqa: E402
from nni_archscale.core.formats import from_paper_code  # noqa: E402
from nni_archscale.nni_glue.adapters import prepare_candidate  # noqa: E402
from nni_archscale.torch_layer.dag_cell import DagCellMLP  # noqa: E402
from nni_archscale.torch_layer.hook import HookConfig  # noqa: E402
from nni_archscale.torch_layer.rate_choice import reference_of  # noqa: E402

warnings.filterwarnings("ignore")

FIXTURE = Path(__file__).parent / "data" / "hook_groups_before.json"

# ---------------------------------------------------------------------------------------------------------------
# frozen parameters (issue 25, item 1)


class Backboned(nn.Module):
    """A conv backbone (conv, BN, ReLU, conv), then a trainable residual conv on it and a readout: node
    ``z + head(relu(z))`` has in-degree 2, so ``head`` gets eq. 4's ``2 / (2 fan_in)`` whether or not the backbone
    feeding it is frozen."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 8, 3, padding=1))
        self.head = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        z = self.backbone(x)
        z = torch.relu(z + self.head(torch.relu(z)))
        return self.fc(z.mean((2, 3)))


def _prepare(model, **options):
    return prepare_candidate(model, HookConfig(base_lr=0.1, **options), adapter="fx",
                             generator=torch.Generator().manual_seed(0))


def test_a_frozen_backbone_is_left_alone_and_out_of_the_param_groups():
    torch.manual_seed(0)
    model = Backboned()
    for p in model.backbone.parameters():
        p.requires_grad_(False)
    with torch.no_grad():  # "pretrained": values no init would give, running statistics included
        model.backbone[1].running_mean.fill_(0.5)
        model.backbone[1].weight.fill_(3.0)
    pretrained = copy.deepcopy(model.backbone.state_dict())
    prepared = _prepare(model)
    for name, value in model.backbone.state_dict().items():
        assert torch.equal(value, pretrained[name]), name
    grouped = [n for g in prepared.groups for n in g["param_names"]]
    assert grouped and not any(n.startswith("backbone.") for n in grouped)
    assert sorted(grouped) == ["fc.bias", "fc.weight", "head.bias", "head.weight"]
    frozen_notes = [n for n in prepared.notes if n.startswith("frozen:")]
    assert len(frozen_notes) == 1
    note = frozen_notes[0]
    assert "left 6 tensor(s) with requires_grad=False alone" in note and "in no param group" in note
    assert "assume the rest of the network is as the rule initialises it" in note
    assert "backbone.0, backbone.3" in note and "in-degree" in note
    assert set(prepared.init.frozen) == {f"backbone.{k}" for k in ("0.weight", "0.bias", "1.weight", "1.bias",
                                                                   "3.weight", "3.bias")}
    prepared.make_optimizer()  # builds: no frozen tensor reaches the optimizer


def test_a_frozen_layer_still_counts_in_its_successors_in_degree():
    """Freezing changes no edge: the trainable head after the frozen backbone gets the variance it gets when nothing
    is frozen, eq. 4 with the target node's in-degree (2: the skip and the head) counting the frozen edge."""
    torch.manual_seed(0)
    trainable, frozen = Backboned(), Backboned()
    for p in frozen.backbone.parameters():
        p.requires_grad_(False)
    a, b = _prepare(trainable), _prepare(frozen)
    assert a.graph == b.graph
    assert b.init.variance_of("head") == a.init.variance_of("head") == pytest.approx(2 / (2 * 8 * 9))
    assert a.learning_rate == b.learning_rate


def test_a_frozen_weight_with_a_trainable_bias():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    model[2].weight.requires_grad_(False)
    with torch.no_grad():
        model[2].bias.fill_(1.0)
    kept = model[2].weight.detach().clone()
    prepared = _prepare(model)
    assert torch.equal(model[2].weight, kept)
    assert torch.count_nonzero(model[2].bias) == 0  # the trainable bias is the rule's (zero)
    assert prepared.init.frozen == ("2.weight",)
    assert "2.bias" in [n for g in prepared.groups for n in g["param_names"]]


def test_nothing_frozen_nothing_noted():
    torch.manual_seed(0)
    prepared = _prepare(Backboned())
    assert prepared.init.frozen == () and not any(n.startswith(("frozen:", "tied")) for n in prepared.notes)


# ---------------------------------------------------------------------------------------------------------------
# tied weights (issue 25, item 2)


class TiedMLP(nn.Module):
    """input Linear(8, 8), a hidden Linear(8, 8), a readout Linear(8, 8) whose weight is the input layer's."""

    def __init__(self, tie: bool = True):
        super().__init__()
        self.inp, self.hidden, self.out = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8)
        if tie:
            self.out.weight = self.inp.weight

    def forward(self, x):
        return self.out(torch.relu(self.hidden(torch.relu(self.inp(x)))))


def test_a_tied_weight_is_initialised_once_by_its_input_side_use():
    torch.manual_seed(0)
    tied, untied = TiedMLP(), TiedMLP(tie=False)
    a, b = _prepare(tied), _prepare(untied)
    assert tied.out.weight is tied.inp.weight
    # the input layer's rule (eq. 4, in-degree 1: 2 / fan_in), the very draws the untied twin's input layer gets;
    # not the readout's mean-field 1 / fan_in^2 (eq. 2), which the old code applied last
    assert torch.equal(tied.inp.weight, untied.inp.weight)
    assert b.init.variance_of("inp") == pytest.approx(2 / 8) and b.init.variance_of("out") == pytest.approx(1 / 64)
    (t,) = a.init.tied
    assert (t.names, t.chosen, t.role, t.variance) == (("inp.weight", "out.weight"), "inp.weight", "graph", 2 / 8)
    assert "out" not in [x.module for x in a.init.layers]  # the readout did not redraw it
    note = next(n for n in a.notes if n.startswith("tied weight"))
    assert "inp.weight is the same tensor as out.weight" in note and "input-side use inp.weight" in note
    assert "2 / (d_in" in note and "one param group" in note


def test_a_tied_weight_is_in_exactly_one_param_group():
    torch.manual_seed(0)
    model = TiedMLP()
    prepared = _prepare(model, rate_rule="graph", per_edge=True)
    holding = [g for g in prepared.groups if any(p is model.inp.weight for p in g["params"])]
    assert len(holding) == 1 and sum(p is model.inp.weight for p in holding[0]["params"]) == 1
    assert "out.weight" not in [n for g in prepared.groups for n in g["param_names"]]
    # its rate is its input-side use's (the per-edge rate of inp)
    assert holding[0]["lr"] == pytest.approx(prepared.module_rates["inp"])
    prepared.make_optimizer()
    # what the single group spares us: torch refuses one tensor in two groups
    with pytest.raises(ValueError, match="more than one parameter group"):
        torch.optim.SGD([{"params": [model.inp.weight]}, {"params": [model.out.weight]}], lr=0.1)


class TiedEmbedding(nn.Module):
    """An embedding whose table is the readout's weight (the usual language-model tie)."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.hidden = nn.Linear(8, 8)
        self.readout = nn.Linear(8, 10)
        self.readout.weight = self.embed.weight

    def forward(self, tokens):
        return self.readout(torch.relu(self.hidden(self.embed(tokens))))


def test_a_weight_tied_to_an_embedding_keeps_the_embeddings_values():
    """The input-side use is an nn.Embedding, which no rule of the plan sets: the table is left as built, not
    redrawn at the readout's 1 / fan_in^2."""
    torch.manual_seed(0)
    model = TiedEmbedding()
    table = model.embed.weight.detach().clone()
    prepared = _prepare(model, rate_rule="graph")
    assert torch.equal(model.embed.weight, table)
    (t,) = prepared.init.tied
    assert t.chosen == "embed.weight" and t.variance is None
    assert any("left as built" in n and "embed.weight" in n for n in prepared.notes)
    assert sum(p is model.embed.weight for g in prepared.groups for p in g["params"]) == 1


# ---------------------------------------------------------------------------------------------------------------
# a model that is only a readout (issue 25, item 3)


def test_a_lone_readout_is_refused_saying_so():
    from nni_archscale.nni_glue import prepare_for_trial
    from nni_archscale.errors import ExtractionError

    with pytest.raises(ExtractionError, match=r"Linear\(8, 3\) is only a readout layer: the rules need at least "
                                              r"one hidden layer .*nn\.Sequential\(nn\.Linear\(8, width\)"):
        prepare_for_trial(nn.Linear(8, 3))
    # the same layer inside a container: still no hidden layer (it used to be read as a one-layer network)
    with pytest.raises(ExtractionError, match=r"Sequential's only Linear/Conv layer, '0' \(Linear\(8, 3\)\), is its "
                                              r"readout: the rules need at least one hidden layer"):
        prepare_for_trial(nn.Sequential(nn.Linear(8, 3)))
    with pytest.raises(ExtractionError, match=r"is its readout"):
        prepare_for_trial(nn.Sequential(nn.Flatten(), nn.Linear(8, 3), nn.ReLU()))
    with pytest.raises(ExtractionError, match=r"Conv2d is a single layer with no readout"):
        prepare_for_trial(nn.Conv2d(3, 8, 3))

    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(3, 8))

        def forward(self, x):
            return torch.nn.functional.linear(x, self.w)

    with pytest.raises(ExtractionError, match=r"its own parameters \(w\) through functional calls.*submodule"):
        prepare_for_trial(Functional())


# ---------------------------------------------------------------------------------------------------------------
# HookConfig's numbers (issue 25)


@pytest.mark.parametrize("options, match", [
    ({"weight_decay": -1}, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": float("nan")}, "weight_decay must be a finite number >= 0"),
    ({"weight_decay": float("inf")}, "weight_decay must be a finite number >= 0"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"batch_size": -32}, "batch_size must be a positive integer"),
    ({"batch_size": 2.5}, "batch_size must be a positive integer"),
    ({"batch_size": True}, "batch_size must be a positive integer"),
])
def test_hook_config_refuses_bad_numbers_when_made(options, match):
    import dataclasses

    with pytest.raises(RuleError, match=match):
        HookConfig(**options)
    with pytest.raises(RuleError, match=match):
        HookConfig.from_dict(options)
    with pytest.raises(RuleError, match=match):
        dataclasses.replace(HookConfig(), **options)


@pytest.mark.parametrize("cfg, match", [({"batch_size": 0}, "batch_size must be a positive integer"),
                                        ({"hook": {"weight_decay": -1}}, "weight_decay must be")])
def test_a_trial_refuses_them_before_loading_data(cfg, match, tmp_path, monkeypatch):
    from nni_archscale.nni_glue import trial

    monkeypatch.setattr(trial, "load_dataset", lambda *a, **k: pytest.fail("data loaded before the check"))
    with pytest.raises(RuleError, match=match):
        trial.run_candidate(nn.Linear(2, 2), None, {"out_dir": str(tmp_path), **cfg})


def test_a_trial_gives_the_hook_its_training_batch_size(tmp_path, monkeypatch):
    from nni_archscale.nni_glue import trial

    seen = []

    class Stop(Exception):
        pass

    def load(*a, **k):
        raise Stop

    monkeypatch.setattr(trial, "load_dataset", load)
    real = trial.HookConfig.of
    monkeypatch.setattr(trial.HookConfig, "of", staticmethod(lambda h: seen.append(real(h)) or seen[-1]))
    for cfg, want in (({"batch_size": 64}, 64), ({"batch_size": 64, "hook": {"batch_size": 16}}, 16), ({}, 128)):
        with pytest.raises(Stop):
            trial.run_candidate(nn.Linear(2, 2), None, {"out_dir": str(tmp_path), **cfg})
        assert seen[-1].batch_size == want


# ---------------------------------------------------------------------------------------------------------------
# the networks and rules of the before/after comparison (issue 24)

NB201_SAMPLE = {"cell/0_1": "conv_3x3", "cell/0_2": "conv_1x1", "cell/1_2": "conv_3x3", "cell/0_3": "skip_connect",
                "cell/1_3": "conv_3x3", "cell/2_3": "avg_pool_3x3"}


def _conv_net(depth: int, norm: bool) -> nn.Module:
    layers = [nn.Conv2d(3, 8, 3, padding=1)]
    for _ in range(depth):
        layers += ([nn.BatchNorm2d(8)] if norm else []) + [nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1)]
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10)]
    return nn.Sequential(*layers)


def _batch(shape, classes):
    g = torch.Generator().manual_seed(11)
    return torch.randn(*shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)


def _network(name: str):
    """``(model, base_model, batch, sample, adapter)``: the candidate, the base network its reference is measured
    on, a training batch, and how prepare_candidate reads it."""
    torch.manual_seed(0)
    if name == "dag-mlp":
        model = DagCellMLP(from_paper_code("2_12_112_1112"), 16, 8, 4)
        base = DagCellMLP(from_paper_code("0_00_000_2000"), 16, 8, 4)
        return model, base, _batch((8, 16), 4), None, "fx"
    if name == "conv":
        model, base = _conv_net(2, norm=True), _conv_net(1, norm=True)
        return model, base, _batch((8, 3, 8, 8), 10), None, "fx"
    if name == "conv-deep":  # 21 convs, no normalisation: the graph rule's rate is clamped (4 octaves)
        model, base = _conv_net(20, norm=False), _conv_net(1, norm=False)
        return model, base, _batch((8, 3, 8, 8), 10), None, "fx"
    if name == "nb201":
        from nni_archscale.nni_glue.calibration import base_network, build_nb201

        model = build_nb201(4, 1, 10, NB201_SAMPLE)
        _, base = base_network("nb201", 10, 4, 1)
        return model, base, _batch((8, 3, 16, 16), 10), dict(NB201_SAMPLE), "nb201-sample"
    raise KeyError(name)


NETWORKS = ("dag-mlp", "conv", "conv-deep", "nb201")
#: (label, HookConfig options beyond base_lr, whether the reference and batch are passed)
EXTRA_CONFIGS = (("graph-per-edge", {"rate_rule": "graph", "per_edge": True}, True),
                 ("auto-no-reference", {"rate_rule": "auto"}, False),
                 ("auto", {"rate_rule": "auto"}, True),
                 ("readout-limited-sgd-b16", {"rate_rule": "readout-limited-sgd", "batch_size": 16}, True),
                 ("feature-adam-opt", {"rate_rule": "feature", "optimizer": "adam"}, True))


def configs() -> list[tuple[str, dict, bool]]:
    """Every rule of the rate registry (with the base network's reference and a batch), and a few variants."""
    return [(rule, {"rate_rule": rule}, True) for rule in registry.rule_names()] + list(EXTRA_CONFIGS)


def _digest(parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else str(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def _state(model: nn.Module) -> dict:
    """The model's parameters and buffers after the hook: one digest of every tensor's name, shape and bytes, and
    each tensor's sum and sum of squares (float64), which survive a torch version that draws differently."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    wide = {k: v.to(torch.float64 if v.is_floating_point() else torch.int64) for k, v in tensors.items()}
    return {"sha256": _digest(x for k, v in tensors.items() for x in (k, tuple(v.shape), v.numpy().tobytes())),
            "moments": {k: [float(f"{float(v.sum()):.12g}"), float(f"{float((v * v).sum()):.12g}")]
                        for k, v in wide.items()}}


def run_case(network: str, options: dict, with_reference: bool) -> dict:
    """What the hook gives one network under one config: groups (names, rates, weight decay, parameter names),
    the rule applied, its rate, the notes, and every parameter and buffer afterwards; or the error it raised."""
    model, base, batch, sample, adapter = _network(network)
    reference = reference_of(base, batch, options.get("optimizer", "sgd")) if with_reference else None
    cfg = HookConfig(base_lr=0.1, **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        try:
            p = prepare_candidate(model, cfg, sample=sample, adapter=adapter,
                                  generator=torch.Generator().manual_seed(1),
                                  batch=batch if with_reference else None, reference=reference)
        except Exception as exc:  # the same error before and after is the same behaviour
            return {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "groups": [{"name": g["name"], "lr": g["lr"], "weight_decay": g["weight_decay"],
                    "param_names": list(g["param_names"])} for g in p.groups],
        "rate_rule": p.rate_rule, "rate": p.rate, "learning_rate": p.learning_rate, "notes": list(p.notes),
        "state": _state(model),
    }


def record_all() -> dict:
    """Every case; each tensor's moments are kept once per network (its ``graph`` case), the other cases keep the
    digest (a smaller file: the init does not depend on the rule)."""
    torch.set_num_threads(1)
    cases, moments = {}, {}
    for network in NETWORKS:
        for label, options, with_reference in configs():
            case = run_case(network, options, with_reference)
            if "state" in case:
                m = case["state"].pop("moments")
                moments.setdefault(network, {"case": label, "moments": m})
            cases[f"{network}/{label}"] = case
    return {"torch": torch.__version__, "rules": list(registry.rule_names()), "moments": moments,
            "cases": cases}


def _per_parameter(groups: list[dict]) -> dict[str, tuple[float, float]]:
    """``parameter name -> (lr, weight decay)``; a parameter in two groups fails (torch would refuse it)."""
    out: dict[str, tuple[float, float]] = {}
    for g in groups:
        for name in g["param_names"]:
            assert name not in out, f"{name} is in two param groups"
            out[name] = (g["lr"], g["weight_decay"])
    return out


@pytest.fixture(scope="module")
def before() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture()
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


CASE_IDS = [f"{n}/{label}" for n in NETWORKS for label, _, _ in configs()]


def test_the_fixture_covers_every_registered_rule(before):
    assert set(registry.rule_names()) <= set(before["rules"]), "a rule registered since: re-record on old code"
    assert set(CASE_IDS) == set(before["cases"])


@pytest.mark.parametrize("case", CASE_IDS)
def test_groups_and_init_are_unchanged_by_building_the_groups_once(case, before, one_thread):
    network, label = case.split("/", 1)
    options, with_reference = next((o, w) for lab, o, w in configs() if lab == label)
    got, want = run_case(network, options, with_reference), before["cases"][case]
    if "error" in want:
        assert got == want
        return
    assert "error" not in got, got["error"]
    # every trainable parameter in exactly one group, at the same rate and weight decay (rates to 1e-12: a change
    # elsewhere that moves eq. 8's float by an ulp may split a group in two, with the same rates)
    got_rates, want_rates = _per_parameter(got["groups"]), _per_parameter(want["groups"])
    assert sorted(got_rates) == sorted(want_rates)
    for name, (lr, wd) in want_rates.items():
        assert got_rates[name][0] == pytest.approx(lr, rel=1e-12), name
        assert got_rates[name][1] == wd, name
    assert (got["rate_rule"], got["notes"]) == (want["rate_rule"], want["notes"])
    assert got["learning_rate"] == pytest.approx(want["learning_rate"], rel=1e-12)
    assert (got["rate"] is None) == (want["rate"] is None)
    if torch.__version__ == before["torch"]:  # the same draws, bit for bit
        assert got["state"]["sha256"] == want["state"]["sha256"]
    if before["moments"][network]["case"] == label:  # each tensor's moments (another torch may draw differently)
        m = before["moments"][network]["moments"]
        assert list(got["state"]["moments"]) == list(m)
        for name, (total, squares) in m.items():
            assert got["state"]["moments"][name] == pytest.approx([total, squares], rel=1e-6, abs=1e-9), name


if __name__ == "__main__":
    if "--record" not in sys.argv:
        sys.exit("usage: python tests/test_hook_weights.py --record  (on the code before the refactor only)")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    data = record_all()
    FIXTURE.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
    errors = sum("error" in c for c in data["cases"].values())
    print(f"recorded {len(data['cases'])} cases ({errors} errors) to {FIXTURE}")
