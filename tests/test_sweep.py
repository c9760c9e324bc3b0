"""The engine of the rate-grid measurements (torch_layer/sweep.py): its objectives and its records with resume."""

import json
import math

import pytest

from nni_archscale.errors import CalibrationError
from nni_archscale.results import append_record, read_records
from nni_archscale.torch_layer.sweep import BestAccuracy, MaximalRate, Sweep

INF = math.inf


def test_maximal_rate_takes_the_largest_rate_within_its_tolerance_of_the_lowest_loss():
    losses = [2.0, 1.0, 1.01, 1.5, INF]
    assert MaximalRate(0.0).index(losses) == 1
    assert MaximalRate(0.02).index(losses) == 2  # 1.01 is within 2% of 1.0: the larger rate wins
    assert MaximalRate(0.0).index([1.0, 1.0, 3.0]) == 1  # a tie goes to the larger rate
    assert MaximalRate(0.02).rate({0.1: 1.0, 0.2: 1.01, 0.4: INF}) == 0.2


def test_maximal_rate_when_every_rate_diverged():
    assert MaximalRate(0.0).index([INF, INF, INF]) == 2  # the grid's edge: the rate lies below the grid
    with pytest.raises(CalibrationError, match="every rate of the calibration grid diverged"):
        MaximalRate(0.02).rate({0.1: INF, 0.2: INF})


def test_best_accuracy_breaks_ties_towards_the_lower_rate():
    assert BestAccuracy().index([0.5, 0.9, 0.9, 0.1]) == 1
    assert BestAccuracy().index([0.7]) == 0


def _train(cell: str, rate: float, calls: list) -> dict:
    calls.append((cell, rate))
    return {"arch": cell, "mode": "grid", "status": "ok", "rate": rate, "loss": rate * len(cell)}


def _key(record: dict) -> tuple:
    return record["arch"], record["rate"]


def test_records_are_appended_and_a_resumed_sweep_skips_them(tmp_path):
    path = tmp_path / "records.jsonl"
    calls: list = []
    seen: list = []
    sweep = Sweep(path, key_of=_key, read=read_records, append=append_record, on_record=seen.append)
    jobs = [((c, r), (c, r, calls)) for c in ("a", "bb") for r in (0.5, 1.0)]
    first = sweep.run(_train, jobs[:3])
    assert [r["loss"] for r in first] == [0.5, 1.0, 1.0] and len(calls) == 3 and seen == first
    assert [json.loads(line)["rate"] for line in path.read_text().splitlines()] == [0.5, 1.0, 0.5]

    resumed = Sweep(path, key_of=_key, read=read_records, append=append_record)
    records = resumed.run(_train, jobs)
    assert calls[3:] == [("bb", 1.0)]  # only the job the file did not hold
    assert [(r["arch"], r["rate"]) for r in records] == [("a", 0.5), ("a", 1.0), ("bb", 0.5), ("bb", 1.0)]
    assert resumed.trained == 1 and len(path.read_text().splitlines()) == 4


def test_an_in_memory_sweep_measures_each_job_once():
    calls: list = []
    sweep = Sweep()
    jobs = [(("a", 0.5), ("a", 0.5, calls)), (("a", 0.5), ("a", 0.5, calls))]
    assert sweep.run(_train, jobs) == [_train("a", 0.5, [])] * 2
    assert calls == [("a", 0.5)]


def test_a_records_file_needs_to_say_how_its_records_are_keyed(tmp_path):
    with pytest.raises(ValueError, match="needs key_of, read and append"):
        Sweep(tmp_path / "records.jsonl")
