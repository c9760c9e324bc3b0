"""Calibration of the base rate ``c`` (paper §4): a log grid of rates, a short training of the base network at
each, and the largest rate reaching the lowest training loss. :func:`refine_rate` resolves that rate to a
quarter octave (a zoom around the coarse grid's best point) and widens the grid when the best rate sits at one
of its ends. Results are cached in a versioned JSON file.

The cache maps a key (space, dataset, optimizer, batch size, init) to the chosen rate, the recipe that produced it and
the per-rate losses. An entry whose recipe differs from the one asked for is *stale*; a file that is not valid
JSON or of another format version is *corrupt*; both are reported and recomputed, never trusted. Writes are
atomic (temporary file + rename), so an interrupted write cannot leave a torn cache, and made under a file lock
(``PATH.lock``, the ``filelock`` package) that re-reads the file first, so processes sharing one cache keep each
other's entries.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from ..errors import CacheError, CalibrationError, InputFileError
from ..core.files import file_kind, not_regular_message, read_regular_file
from ..results import atomic_write_text
from ..rules.registry import stored_options

CACHE_FORMAT = "nni-archscale/calibration@1"

#: how long a write waits for another process's write to the same cache (each holds the lock for milliseconds)
LOCK_TIMEOUT_S = 60
#: largest cache file read (an entry is about a kilobyte): anything larger is not a cache, and is reported corrupt
MAX_CACHE_BYTES = 64 * 2**20


def log_grid(low: float, high: float, points: int) -> list[float]:
    """``points`` rates spaced evenly in log scale from ``low`` to ``high`` (inclusive)."""
    if not (0 < low < high) or points < 2:
        raise CalibrationError(f"a log grid needs 0 < low < high and >= 2 points, got {low}, {high}, {points}; "
                               f"fix --low, --high or --points")
    r = math.log(high / low) / (points - 1)
    return [float(f"{low * math.exp(i * r):.6g}") for i in range(points)]


def log2_grid(lo: float, hi: float, per_octave: int = 4) -> list[float]:
    """Rates ``2^(k / per_octave)`` from ``lo`` to ``hi`` inclusive (quarter-octave by default): the fixed lattice
    of the maximal-rate measurements (:mod:`nni_archscale.experiments.maxlr`), unrounded, so that grids with
    different ends share their rates."""
    if not (0 < lo < hi):
        raise CalibrationError(f"a log2 grid needs 0 < lo < hi, got lo={lo:g}, hi={hi:g}; fix the grid's bounds "
                               f"(--sgd-grid / --adam-grid LO HI)")
    a, b = math.ceil(math.log2(lo) * per_octave - 1e-9), math.floor(math.log2(hi) * per_octave + 1e-9)
    return [2.0 ** (k / per_octave) for k in range(a, b + 1)]


@dataclass
class Calibration:
    key: str
    base_lr: float
    recipe: dict
    losses: dict          # str(rate) -> final training loss (inf when diverged)
    seconds: float
    created: float = field(default_factory=time.time)
    source: str = "computed"   # computed | cache
    #: log2-distance from the chosen rate to the nearest rate tried on either side (None: unrefined, old entry)
    resolution_octaves: float | None = None
    #: coarse steps the grid grew beyond its ends because the best rate sat at one (see :func:`refine_rate`)
    widened: int = 0

    def describe(self) -> str:
        """One line for the user: the rate, where it came from and how finely it is resolved."""
        how = "cached" if self.source == "cache" else "calibrated"
        if self.resolution_octaves is None:
            return f"{self.base_lr:g} ({how})"
        where = (f"the grid widened {self.widened} coarse step(s) past its end" if self.widened
                 else "inside the grid")
        return (f"{self.base_lr:g} ({how}; {len(self.losses)} rates tried, resolved to {self.resolution_octaves:g} "
                f"octave, {where})")


def choose_rate(losses: dict[float, float], tolerance: float = 0.02) -> float:
    """The largest rate whose loss is within ``tolerance`` (relative) of the lowest loss (the paper's "maximal
    learning rate which achieves the smallest training loss"; ``tolerance=0``: exactly the lowest). Non-finite
    losses (diverged) never count."""
    finite = {lr: v for lr, v in losses.items() if math.isfinite(v)}
    if not finite:
        raise CalibrationError(
            "every rate of the calibration grid diverged; lower the grid (--low/--high) or check the data"
        )
    best = min(finite.values())
    return max(lr for lr, v in finite.items() if v <= best + tolerance * abs(best))


def calibrate(train_one: Callable[[float], tuple[float, str]], grid: list[float], tolerance: float = 0.02,
              progress: Callable[[float, float, str], None] | None = None) -> tuple[float, dict[float, float]]:
    """Run ``train_one(rate) -> (final loss, status)`` on every grid point and choose the base rate."""
    losses = losses_on_grid(train_one, grid, progress)
    return choose_rate(losses, tolerance), losses


def losses_on_grid(train_one: Callable[[float], tuple[float, str]], grid: list[float],
                   progress: Callable[[float, float, str], None] | None = None) -> dict[float, float]:
    """``{rate: final loss}`` of ``train_one`` at every rate of a fixed grid (a status other than ``ok``:
    infinite loss), the curve an objective reads a rate off (:mod:`nni_archscale.torch_layer.sweep`)."""
    losses: dict[float, float] = {}
    _try_rates(train_one, grid, losses, progress)
    return losses


def _try_rates(train_one: Callable[[float], tuple[float, str]], rates: list[float], losses: dict[float, float],
               progress: Callable[[float, float, str], None] | None) -> None:
    """Train at every rate not yet in ``losses`` and file its final loss there (a status other than ``ok``
    counts as diverged: infinite loss)."""
    for lr in rates:
        if lr in losses:
            continue
        loss, status = train_one(lr)
        losses[lr] = loss if status == "ok" else math.inf
        if progress is not None:
            progress(lr, losses[lr], status)


#: the zoom's step: rates 2^(1/4) apart around the coarse grid's best point
ZOOM_OCTAVES = 0.25
#: how many coarse steps the grid may grow beyond either end while the chosen rate sits at that end
MAX_WIDEN = 4


@dataclass
class RateSearch:
    """What :func:`refine_rate` found: the chosen rate, every rate tried with its loss, and how well the rate is
    resolved: ``resolution_octaves`` is the larger log2-distance from the chosen rate to the nearest rate tried
    on either side (the zoom's step when the zoom ran), ``widened`` how many coarse steps were added beyond the
    grid's ends."""

    rate: float
    losses: dict[float, float]
    resolution_octaves: float
    widened: int


def _rounded(rate: float) -> float:
    return float(f"{rate:.6g}")


def refine_rate(train_one: Callable[[float], tuple[float, str]], grid: list[float], tolerance: float = 0.02,
                step_octaves: float = ZOOM_OCTAVES, max_widen: int = MAX_WIDEN,
                progress: Callable[[float, float, str], None] | None = None) -> RateSearch:
    """The paper's calibration (§4: the largest rate reaching the lowest loss, :func:`choose_rate`) resolved to
    ``step_octaves``: a coarse pass over ``grid``, then

    * if the chosen rate is the largest (smallest) rate tried, the grid grows by one coarse step beyond that end
      and the choice is made again (at most ``max_widen`` steps in all); a rate still at an end is refused with
      :class:`CalibrationError`, because the true rate may lie anywhere beyond it;
    * otherwise a zoom: rates ``best * 2^(k * step_octaves)`` strictly between the best rate's two neighbours
      are tried, the choice is made again, and the zoom repeats around a new best until both neighbours are
      within one step.

    ``train_one(rate) -> (final loss, status)``; a status other than ``ok`` counts as diverged (infinite loss).
    """
    if len(grid) < 2:
        raise CalibrationError(f"the calibration grid needs at least 2 rates, got {grid}; fix --points")
    losses: dict[float, float] = {}
    coarse = math.log(grid[1] / grid[0])
    step = math.log(2.0) * step_octaves
    _try_rates(train_one, grid, losses, progress)
    widened = 0
    for _ in range(max_widen + 64):  # each round widens once or zooms once; the zoom ends when resolved
        best = choose_rate(losses, tolerance)
        tried = sorted(losses)
        i = tried.index(best)
        if i in (0, len(tried) - 1):
            if widened >= max_widen:
                side = "largest" if i else "smallest"
                raise CalibrationError(
                    f"the calibration's best rate {best:g} is still the {side} rate tried after widening the grid "
                    f"by {max_widen} steps ({tried[0]:g}..{tried[-1]:g}); the true rate lies beyond it: move the "
                    f"grid (--low/--high) or check the data")
            _try_rates(train_one, [_rounded(best * math.exp(coarse if i else -coarse))], losses, progress)
            widened += 1
            continue
        lo, hi = tried[i - 1], tried[i + 1]
        k_lo = math.floor(math.log(lo / best) / step + 1e-9) + 1
        k_hi = math.ceil(math.log(hi / best) / step - 1e-9) - 1
        new = [_rounded(best * math.exp(k * step)) for k in range(k_lo, k_hi + 1) if k != 0]
        new = [lr for lr in new if lo < lr < hi and lr not in losses]
        if not new:
            break
        _try_rates(train_one, new, losses, progress)
    else:  # never seen; without it the rate would be reported with a resolution it does not have
        raise CalibrationError(f"the calibration did not settle after {max_widen + 64} rounds ({len(losses)} rates "
                               f"tried); check the data, or pass a smaller grid (--low/--high/--points)")
    resolution = max(math.log2(best / lo), math.log2(hi / best))
    return RateSearch(best, losses, round(resolution, 4), widened)


def final_loss(step_losses: list[float], fraction: float = 0.2) -> float:
    """Mean loss of the last ``fraction`` of the steps (the "training loss at the end" of a short run)."""
    if not step_losses:
        return math.inf
    k = max(1, int(len(step_losses) * fraction))
    tail = step_losses[-k:]
    return sum(tail) / len(tail)


class CalibrationCache:
    """The versioned JSON cache. ``problems`` lists what was found wrong while reading (for the user); with
    ``strict=True`` the first problem is raised as :class:`~nni_archscale.errors.CacheError` instead.

    A cache path that is a directory (or otherwise not a writable file) is always a :class:`CacheError`: a cache
    that can never be written would silently recalibrate on every run.
    """

    def __init__(self, path: str | Path, strict: bool = False):
        self.path = Path(path).expanduser()
        self.strict = strict
        self.problems: list[str] = []
        kind = file_kind(self.path)
        if kind == "a directory":
            raise CacheError(f"calibration cache {str(self.path)!r} is a directory; pass a file path such as "
                             f"{str(self.path / 'calibration.json')!r} (--cache / --calibration-cache)")
        if kind is not None:  # a named pipe would block the read forever; the next write would replace it
            raise CacheError(f"{not_regular_message('calibration cache', self.path, kind)} (--cache / "
                             f"--calibration-cache), or leave it out for the default cache")
        self._entries = self._read()

    def _problem(self, message: str) -> None:
        if self.strict:
            raise CacheError(message)
        self.problems.append(message)

    def _read(self, report: bool = True) -> dict:
        """The entries on disk; ``{}`` for a missing, corrupt or foreign file (reported when ``report``)."""
        problem = self._problem if report else (lambda message: None)
        if not self.path.exists():
            return {}
        try:
            data = json.loads(read_regular_file(self.path, MAX_CACHE_BYTES, "calibration cache").decode("utf-8"))
        except (OSError, InputFileError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problem(f"calibration cache {str(self.path)!r} is corrupt ({type(exc).__name__}); it is not "
                    f"trusted and will be rewritten (delete it, or pass --refresh)")
            return {}
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("entries"), dict):
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            problem(f"calibration cache {str(self.path)!r} has format {found!r}, expected "
                    f"{CACHE_FORMAT!r}; it is not trusted and will be rewritten (delete it, or pass --refresh)")
            return {}
        return data["entries"]

    @staticmethod
    def key(space: str, dataset: str, optimizer: str, batch_size: int, init: str | None = None) -> str:
        """The entry a calibration is filed under. The init is part of it: inits initialise the base network
        differently, so their rates are different entries, not stale versions of one another."""
        key = f"space={space}|dataset={dataset}|optimizer={optimizer}|batch={batch_size}"
        return key if init is None else f"{key}|init={init}"

    def get(self, key: str, recipe: dict) -> Calibration | None:
        entry = self._entries.get(key)
        if entry is None and "|init=" in key:  # an entry an earlier version filed (its word for the init: preset)
            return self._get_earlier(key, recipe)
        if entry is None:
            return None
        try:
            if not isinstance(entry, dict):
                raise CacheError(f"an entry must be an object, not {type(entry).__name__}")
            cal = Calibration(**{k: entry[k] for k in ("key", "base_lr", "recipe", "losses", "seconds", "created")},
                              resolution_octaves=entry.get("resolution_octaves"), widened=entry.get("widened", 0))
            if isinstance(cal.base_lr, bool) or not (isinstance(cal.base_lr, (int, float))
                                                     and math.isfinite(cal.base_lr) and cal.base_lr > 0):
                raise CacheError(f"base_lr {cal.base_lr!r} is not a positive number")
            if not isinstance(cal.recipe, dict):
                raise CacheError(f"recipe is {type(cal.recipe).__name__}, not an object")
            if cal.key != key:
                raise CacheError(f"it is filed under another key ({cal.key!r})")
        except KeyError as exc:
            self._problem(f"calibration cache entry {key!r} is malformed (missing field {exc}); not trusted, "
                          f"recomputing (or delete {str(self.path)!r})")
            return None
        except (TypeError, CacheError) as exc:
            self._problem(f"calibration cache entry {key!r} is malformed ({exc}); not trusted, recomputing "
                          f"(or delete {str(self.path)!r})")
            return None
        if cal.recipe != recipe:
            changed = sorted(k for k in set(cal.recipe) | set(recipe) if cal.recipe.get(k) != recipe.get(k))
            self._problem(f"calibration cache entry {key!r} is stale (recipe changed: {', '.join(changed)}); "
                          f"recomputing (pass the same options to reuse it)")
            return None
        cal.source = "cache"
        return cal

    def _get_earlier(self, key: str, recipe: dict) -> Calibration | None:
        """The entry an earlier version filed under ``|preset=`` (the init's name), its recipe's ``preset`` and
        hook options read in today's words (:func:`nni_archscale.rules.registry.stored_options`): the same
        calibration, so no cached result is lost to the renaming. Returned under today's key."""
        old_key = key.replace("|init=", "|preset=")
        entry = self._entries.get(old_key)
        if not isinstance(entry, dict) or not isinstance(entry.get("recipe"), dict):
            return None
        old_recipe = dict(entry["recipe"])
        if "preset" in old_recipe:
            old_recipe["init"] = old_recipe.pop("preset")
        if isinstance(old_recipe.get("hook"), dict):  # a budget calibration's hook options (no rate rule)
            old_recipe["hook"] = {k: v for k, v in stored_options(old_recipe["hook"]).items() if k != "rate_rule"}
        self._entries[key] = {**entry, "key": key, "recipe": old_recipe}
        return self.get(key, recipe)

    def put(self, cal: Calibration) -> None:
        d = asdict(cal)
        d.pop("source", None)
        d["losses"] = {str(k): (v if math.isfinite(v) else None) for k, v in cal.losses.items()}
        lock = FileLock(f"{self.path}.lock", timeout=LOCK_TIMEOUT_S)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # the lock file lives beside the cache
            # Several trials or experiments may share one cache: under the lock, re-read what the others
            # wrote since this cache was opened and add this entry to it, so no writer drops another's entries.
            with lock:
                entries = self._read(report=False)
                entries[cal.key] = d
                atomic_write_text(self.path, json.dumps({"format": CACHE_FORMAT, "entries": entries}, indent=2,
                                                        sort_keys=True) + "\n")
        except Timeout:
            raise CacheError(f"the calibration cache {str(self.path)!r} stayed locked for {LOCK_TIMEOUT_S} s; "
                             f"if no other archscale process is writing it, delete {lock.lock_file!r}") from None
        except OSError as exc:
            raise CacheError(f"cannot write the calibration cache {str(self.path)!r} ({exc.strerror or exc}); "
                             f"pass a writable file with --cache / --calibration-cache") from None
        self._entries = entries
