"""The hook for FunctionalEvaluator users: one call, prepare_for_trial(), re-initialises the candidate by the rule
and returns an optimizer (and scheduler) carrying the rule's learning rate. Offline (digits), well under a minute.

    python examples/functional_evaluator.py

NNI's experiment folder (logs, trial records) goes to ``examples/output/functional_evaluator/nni-experiments/``,
not to NNI's default ``~/nni-experiments/``: the config's ``experiment_working_directory`` says so.
"""

import math
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import nni  # noqa: E402
from nni.nas.evaluator import FunctionalEvaluator  # noqa: E402
from nni.nas.experiment import NasExperiment, NasExperimentConfig  # noqa: E402
from nni.nas.hub.pytorch import NasBench201  # noqa: E402
from nni.nas.strategy import Random  # noqa: E402

from nni_archscale.nni_glue import prepare_for_trial  # noqa: E402
from nni_archscale.torch_layer.data import load_dataset  # noqa: E402
from nni_archscale.torch_layer.train import train_classifier  # noqa: E402

#: Where NNI writes this example's experiment folders (instead of ~/nni-experiments).
OUTPUT = Path(__file__).resolve().parent / "output" / "functional_evaluator" / "nni-experiments"


def train_candidate(model, epochs, base_lr):
    data = load_dataset("digits")
    steps = epochs * math.ceil(len(data.train) / 128)
    optimizer, scheduler, prepared = prepare_for_trial(model, {"base_lr": base_lr}, total_steps=steps)
    print(prepared.summary())
    result = train_classifier(model, data.train, data.val, optimizer, epochs, 128, scheduler, num_classes=10)
    nni.report_final_result(result.accuracy)


def experiment_config(trials: int = 3, working_dir: Path = OUTPUT) -> NasExperimentConfig:
    """Sequential engine, ``trials`` trials, experiment folders under ``working_dir``."""
    config = NasExperimentConfig("sequential", "simplified")
    config.max_trial_number = trials
    config.experiment_working_directory = str(working_dir)
    return config


if __name__ == "__main__":
    space = NasBench201(stem_out_channels=8, num_modules_per_stack=1, num_labels=10)
    config = experiment_config()
    exp = NasExperiment(space, FunctionalEvaluator(train_candidate, epochs=1, base_lr=1.0), Random(seed=0), config)
    try:
        exp.run()
    finally:
        exp.stop()
    for model in exp.export_top_models(top_k=3, formatter="dict"):
        print(model)
