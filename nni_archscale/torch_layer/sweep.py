"""The one engine of the rate-grid measurements (issue 24 item 5): candidates x settings x a rate grid x seeds,
every measurement one record, read off by an objective.

What an experiment plugs in:

* **the jobs**: ``(key, arguments)`` pairs. The key names what one measurement is: a candidate and a setting
  (init, optimizer, init seed) and, where a measurement is a single training, its rate and seed too
  (``archscale fairness``); elsewhere one measurement is a candidate's whole curve (``lr-prediction``,
  ``nb201-lr``, ``space-lr``);
* **the trainer**: ``measure(*arguments) -> record`` (a module-level function where it runs in worker processes);
* **the objective** that reads a rate off a curve: :class:`MaximalRate`, the paper's recipe (§4: the largest rate
  whose final training loss after one epoch is within a tolerance of the lowest), or :class:`BestAccuracy`, the
  fairness benchmark's (the rate of the highest mean accuracy at the search's budget);
* **the grid**: a fixed one (:func:`~nni_archscale.torch_layer.rate_grid.log_grid`,
  :func:`~nni_archscale.torch_layer.rate_grid.log2_grid`), the calibration's refinement
  (:func:`~nni_archscale.torch_layer.rate_grid.refine_rate`) or the fairness lattice widened until its best
  rate is interior (:func:`nni_archscale.fairness.engine.train_until_interior`);
* **the records file**: with a path, every record is appended as it finishes and a resumed run reads the file
  back and skips what it holds; without one the records stay in memory (experiments whose files are written at
  the end).
"""

from __future__ import annotations

import math
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Sequence

from .rate_grid import choose_rate

#: one job: its key and the trainer's arguments
Job = tuple[Hashable, tuple]


@dataclass(frozen=True)
class MaximalRate:
    """The paper's objective (§4 "practical recipe", App. D): "the maximal learning rate which achieves the
    smallest training loss at the end of one epoch", the largest rate whose final loss is within ``tolerance``
    (relative) of the lowest; ``tolerance=0``: exactly the lowest, ties to the larger rate. Diverged rates
    (infinite loss) never count."""

    tolerance: float = 0.02

    def rate(self, losses: dict[float, float]) -> float:
        """The chosen rate of ``{rate: final loss}``
        (:func:`~nni_archscale.torch_layer.rate_grid.choose_rate`: every rate diverged is a
        :class:`~nni_archscale.errors.CalibrationError`)."""
        return choose_rate(losses, self.tolerance)

    def index(self, losses: Sequence[float]) -> int:
        """The chosen index of final losses over an ascending grid; when every rate diverged, the largest (a
        curve that diverged everywhere has its maximal rate below the grid: the edge says so)."""
        if len(losses) and not any(math.isfinite(v) for v in losses):
            return len(losses) - 1
        return choose_rate(dict(enumerate(losses)), self.tolerance)


@dataclass(frozen=True)
class BestAccuracy:
    """The fairness benchmark's objective (issue 23): the rate of the highest (seed-mean) accuracy at the
    search's budget; ties go to the lowest rate among them (the most conservative)."""

    def index(self, accuracies: Sequence[float]) -> int:
        best = max(accuracies)
        return next(i for i, v in enumerate(accuracies) if v == best)


class Sweep:
    """Measures jobs and keeps their records, skipping every job already recorded (module docstring).

    ``key_of(record)`` gives a stored record's job key (needed with ``path``: a resumed run reads the records
    file back); ``read(path)`` / ``append(path, record)`` read and extend the file. ``workers > 1`` runs the
    trainer in that many processes (``initializer(*initargs)`` in each); ``bar`` (a description) shows a
    progress bar; ``on_record(record)`` sees every new record."""

    def __init__(self, path: Path | None = None, key_of: Callable[[Any], Hashable] | None = None,
                 read: Callable[[Path], list] | None = None, append: Callable[[Path, Any], None] | None = None,
                 workers: int = 1, initializer: Callable | None = None, initargs: tuple = (),
                 bar: str | None = None, unit: str = "run", on_record: Callable[[Any], None] | None = None):
        if path is not None and (key_of is None or read is None or append is None):
            raise ValueError("a Sweep with a records file needs key_of, read and append (how its records are "
                             "keyed, read back and written)")
        self.path, self.key_of, self._append, self.on_record = path, key_of, append, on_record
        self.done: dict[Hashable, Any] = {}
        if path is not None:
            for rec in read(path):
                self.done[key_of(rec)] = rec
        self.pool = ProcessPoolExecutor(workers, initializer=initializer, initargs=initargs) if workers > 1 else None
        self.bar = None
        if bar is not None:
            from tqdm import tqdm

            self.bar = tqdm(total=0, unit=unit, desc=bar, dynamic_ncols=True)
        self.trained = 0

    def run(self, measure: Callable[..., Any], jobs: Iterable[Job]) -> list:
        """Measure every job not yet recorded with ``measure(*arguments)``, each key once; returns the jobs'
        records, in the jobs' order (those recorded before included)."""
        jobs = list(jobs)
        todo, queued = [], set()
        for key, args in jobs:
            if key not in self.done and key not in queued:
                queued.add(key)
                todo.append((key, args))
        if self.bar is not None:
            self.bar.total += len(todo)
            self.bar.refresh()
        if self.pool is None:
            for key, args in todo:
                self.keep(key, measure(*args))
        else:
            futures = {self.pool.submit(measure, *args): key for key, args in todo}
            for f in as_completed(futures):
                self.keep(futures[f], f.result())
        return [self.done[k] for k, _ in jobs]

    def keep(self, key: Hashable, record: Any) -> None:
        """File one new record: the records file (when there is one), the done table, the progress."""
        if self.path is not None:
            self._append(self.path, record)
        self.done[key] = record
        self.trained += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.on_record is not None:
            self.on_record(record)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        if self.bar is not None:
            self.bar.close()
