"""NNI glue: adapters, the hook in each evaluator style inside real sequential NNI experiments, failure outcomes.

Assertions are on what training saw (optimizer groups' rates and weight variances at the start of training),
recorded by a Lightning callback / inside the trial function while NNI runs the candidate.
"""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

warnings.filterwarnings("ignore")

import nni  # noqa: E402
from conftest_nni import contained, no_leaked_nnimanager, one_thread  # noqa: E402,F401
import pytorch_lightning as pl  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.evaluator.pytorch import Classification, DataLoader  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.hub.pytorch import NasBench201  # noqa: E402
from nni.nas.strategy import Random  # noqa: E402

from nni_archscale.core.formats import from_nb201  # noqa: E402
from nni_archscale.nni_glue import (ArchScaleCallback, ArchScaleEvaluator, current_sample,  # noqa: E402
                                    graph_from_nb201_sample, prepare_for_trial)
from nni_archscale.nni_glue.calibration import build_nb201  # noqa: E402
from nni_archscale.nni_glue.trial import run_candidate  # noqa: E402
from nni_archscale.rules.paper import learning_rate, readout_init  # noqa: E402
from nni_archscale.torch_layer.data import load_dataset  # noqa: E402

SEEN: list[dict] = []
HOOK = {"base_lr": 0.4, "init": "paper", "weight_decay": 0.0, "scheduler": "none", "rate_rule": "graph"}


pytestmark = pytest.mark.usefixtures("no_leaked_nnimanager", "one_thread")  # none that a test started may outlive it


def test_nb201_sample_adapter_matches_the_string_parser():
    sample = {"cell/0_1": "conv_3x3", "cell/0_2": "none", "cell/1_2": "avg_pool_3x3", "cell/0_3": "skip_connect",
              "cell/1_3": "conv_1x1", "cell/2_3": "conv_3x3"}
    g = graph_from_nb201_sample(sample)
    assert g.identical(g) and g == from_nb201(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    assert g.edge(1, 3).module == "layers.2.1"


class Recorder(pl.Callback):
    """Records, when training starts, the optimizer's rates and the weights' variances."""

    def on_train_start(self, trainer, pl_module):
        model = pl_module.model
        SEEN.append({
            "sample": current_sample(),
            "lrs": [g["lr"] for opt in trainer.optimizers for g in opt.param_groups],
            "opt": type(trainer.optimizers[0]).__name__,
            "classifier_var": float(model.classifier.weight.detach().var()),
            "classifier_fan": model.classifier.in_features,
        })


def _digits_loaders():
    data = load_dataset("digits", limit=256)
    tr = torch.utils.data.TensorDataset(*data.train.batch(torch.arange(len(data.train))))
    va = torch.utils.data.TensorDataset(*data.val.batch(torch.arange(200)))
    return DataLoader(tr, batch_size=64), DataLoader(va, batch_size=200)


def _run(evaluator, trials=2):
    space = NasBench201(stem_out_channels=16, num_modules_per_stack=1, num_labels=10)
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = trials
    with contained(config):
        exp = NasExperiment(space, evaluator, Random(seed=1, dedup=True), config)
        try:
            exp.run()
        finally:
            exp.stop()


def _check_seen(n):
    assert len(SEEN) == n
    for rec in SEEN:
        cell = graph_from_nb201_sample(rec["sample"])
        try:
            want = learning_rate(cell, HOOK["base_lr"], "paper", "nb201-cell").value
        except Exception:
            continue
        assert rec["lrs"] and all(lr == pytest.approx(want) for lr in rec["lrs"])
        ro = readout_init("paper", "nb201-cell")
        assert rec["classifier_var"] == pytest.approx(float(ro.scale) / rec["classifier_fan"] ** 2, rel=0.25)


@pytest.mark.nni
def test_wrapped_classification_trains_with_rule_rates_and_fresh_trainers():
    SEEN.clear()
    tr, va = _digits_loaders()
    inner = Classification(train_dataloaders=tr, val_dataloaders=va, num_classes=10, optimizer=torch.optim.SGD,
                           max_epochs=1, enable_progress_bar=False, enable_model_summary=False, logger=False,
                           enable_checkpointing=False, callbacks=[Recorder()])
    _run(ArchScaleEvaluator(inner, HOOK), trials=2)
    _check_seen(2)  # the second candidate really trained: NNI's shared Trainer would have skipped it
    assert all(r["opt"] == "SGD" for r in SEEN)


@pytest.mark.nni
def test_lightning_callback_swaps_in_the_rule_optimizer():
    SEEN.clear()
    tr, va = _digits_loaders()
    ev = Classification(train_dataloaders=tr, val_dataloaders=va, num_classes=10, max_epochs=1,
                        enable_progress_bar=False, enable_model_summary=False, logger=False,
                        enable_checkpointing=False, callbacks=[ArchScaleCallback(HOOK), Recorder()])
    # a plain Classification evaluator reuses its Trainer across candidates, so run one candidate
    _run(ev, trials=1)
    _check_seen(1)
    assert SEEN[0]["opt"] == "Adam"  # the user's optimizer class is kept, only the rates change


def functional_trial(model, epochs):
    data = load_dataset("digits", limit=256)
    steps = epochs * math.ceil(len(data.train) / 64)
    optimizer, scheduler, prepared = prepare_for_trial(model, HOOK, total_steps=steps)
    SEEN.append({"sample": current_sample(), "lrs": [g["lr"] for g in optimizer.param_groups],
                 "opt": type(optimizer).__name__, "classifier_var": float(model.classifier.weight.detach().var()),
                 "classifier_fan": model.classifier.in_features})
    from nni_archscale.torch_layer.train import train_classifier

    result = train_classifier(model, data.train, data.val, optimizer, epochs, 64, scheduler, num_classes=10)
    nni.report_final_result(result.accuracy)


@pytest.mark.nni
def test_functional_evaluator_helper():
    SEEN.clear()
    _run(FunctionalEvaluator(functional_trial, epochs=1), trials=3)
    _check_seen(3)


def test_failure_outcomes_are_records_not_crashes(tmp_path):
    cfg = {"out_dir": str(tmp_path), "epochs": 1, "limit": 256, "compare": "shared-rate", "shared_lr": 0.1,
           "hook": HOOK}
    none = {k: "none" for k in ("cell/0_1", "cell/0_2", "cell/1_2", "cell/0_3", "cell/1_3", "cell/2_3")}
    recs = run_candidate(build_nb201(4, 1, 10, none), none, cfg)
    assert recs[0]["status"] == "no-path" and recs[0]["accuracy"] == pytest.approx(0.1)
    assert "no input-to-output path" in recs[0]["message"]
    assert recs[1]["mode"] == "shared-rate"  # the baseline still trains the same candidate

    conv = dict(none, **{"cell/0_3": "conv_3x3"})
    hot = dict(cfg, compare=None, hook=dict(HOOK, base_lr=1e12))
    recs = run_candidate(build_nb201(4, 1, 10, conv), conv, hot)
    assert recs[0]["status"] == "diverged" and recs[0]["accuracy"] == pytest.approx(0.1)

    model = build_nb201(4, 1, 10, dict(conv, **{"cell/0_1": "skip_connect"}))

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 64 GiB")

    model.forward = oom
    recs = run_candidate(model, dict(conv, **{"cell/0_1": "skip_connect"}), dict(cfg, compare=None))
    assert recs[0]["status"] == "oom"
    lines = (tmp_path / "trials.jsonl").read_text().splitlines()
    results = [ln for ln in lines if json.loads(ln)["mode"] != "start"]  # each trained candidate first logs a start
    assert len(results) == 4 and len(lines) == 4 + 4  # every run, the baseline's too, first logs a start


def test_out_of_memory_while_moving_the_model_is_the_oom_outcome():
    from types import SimpleNamespace

    import torch

    from nni_archscale.nni_glue.trial import TrialContext, _train

    class Huge(torch.nn.Linear):
        def to(self, *args, **kwargs):
            raise RuntimeError("CUDA out of memory. Tried to allocate 80.00 GiB")

    data = SimpleNamespace(num_classes=10, train=None, val=None)
    budget = TrialContext(data, "cpu", 1, 8, 1, {}, "", 0.1)
    result = _train(Huge(2, 2), budget, lambda m: (None, None), 0)
    assert result.status == "oom" and result.accuracy == pytest.approx(0.1)
