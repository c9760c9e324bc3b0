import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

# The tests train tiny models: on a small machine shared with other work, one intra-op thread is several times
# faster than two (two OpenMP threads spin against each other and against every other process). Set before torch is
# imported, so that this process and every subprocess a test starts (trials, scripts, benchmark workers) use one;
# an OMP_NUM_THREADS given by the caller is kept.
os.environ.setdefault("OMP_NUM_THREADS", "1")
try:
    SESSION_THREADS = max(1, int(os.environ["OMP_NUM_THREADS"]))
except ValueError:
    SESSION_THREADS = None  # not a number: torch's own default, left alone
if SESSION_THREADS and "torch" in sys.modules:  # a plugin imported torch before this file was read
    sys.modules["torch"].set_num_threads(SESSION_THREADS)


@pytest.fixture(autouse=True)
def _threads_as_the_session_set_them():
    """A test (or the code it runs: --threads, a benchmark) may change torch's intra-op threads; the next test gets
    the session's number back instead of inheriting it."""
    yield
    torch = sys.modules.get("torch")
    if SESSION_THREADS and torch is not None and torch.get_num_threads() != SESSION_THREADS:
        torch.set_num_threads(SESSION_THREADS)


@pytest.fixture
def reuse_seeded_nb201_builds(monkeypatch):
    """Builds NAS-Bench-201 networks (:func:`nni_archscale.nni_glue.calibration.build_nb201`: NNI's space, frozen by
    a deep copy of the whole space, most of a second each on a small machine) once per arguments *and* torch's RNG
    state, and hands out copies. The callers that build the same network again and again seed torch first (a
    calibration's every rate, an experiment's every recipe of one cell and seed), so a copy is exactly what a new
    build would be: the same parameters, and the RNG left in the state the build would have left it in."""
    import copy
    import hashlib

    import torch

    from nni_archscale.nni_glue import calibration

    real = calibration.build_nb201
    built: dict = {}

    def build_nb201(width, cells_per_stage, num_classes, sample):
        state = torch.random.get_rng_state()
        key = (width, cells_per_stage, num_classes, tuple(sorted(sample.items())),
               hashlib.sha1(state.numpy().tobytes()).hexdigest())
        if key not in built:
            if len(built) >= 64:
                built.pop(next(iter(built)))
            model = real(width, cells_per_stage, num_classes, sample)
            built[key] = (copy.deepcopy(model), torch.random.get_rng_state())
            return model
        model, after = built[key]
        torch.random.set_rng_state(after)
        return copy.deepcopy(model)

    monkeypatch.setattr(calibration, "build_nb201", build_nb201)
    return built


@pytest.fixture
def reuse_engine_builds(monkeypatch):
    """The fairness engine (:func:`nni_archscale.fairness.engine.train_job`: the calibration objectives, the fairness
    grid) builds every training's network anew, for NAS-Bench-201 by freezing NNI's space (most of a second each on
    a small machine). This builds each (options, candidate) once and hands out copies. The engine does not seed torch
    before a build, but the hook's init then draws every parameter of the network from the training's own seeded
    generator (and the benchmark mode resets them under a seeded RNG), so a copy trains exactly as a new build does:
    a calibration's rates and losses come out the same either way."""
    import copy
    import json

    from nni_archscale.fairness import engine

    real = engine.build_candidate
    built: dict = {}

    def build_candidate(opts, spec, num_classes, in_features):
        key = json.dumps([opts, spec, num_classes, in_features], sort_keys=True, default=str)
        if key not in built:
            model, sample = real(opts, spec, num_classes, in_features)
            built[key] = (copy.deepcopy(model), sample)
            return model, sample
        model, sample = built[key]
        return copy.deepcopy(model), copy.deepcopy(sample)

    monkeypatch.setattr(engine, "build_candidate", build_candidate)
    return built


@pytest.fixture(scope="session")
def nb201_graphs():
    """Every NAS-Bench-201 cell string (the 5^6 choices of NB201_OPS on the six edges) -> ``from_nb201`` of it, parsed
    once per session: the whole-space tests (test_nb201_space, test_symbolic_cli) read the same 15,625 graphs, and
    a graph keeps its canonical form once it has been computed (hashing it the first time is most of the cost)."""
    import itertools

    from nni_archscale import from_nb201
    from nni_archscale.core.formats import NB201_OPS

    out = {}
    for a, b, c, d, e, f in itertools.product(NB201_OPS, repeat=6):
        text = f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"
        out[text] = from_nb201(text)
    return out


settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile("dev", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: The published NAS-Bench-201 table lives beside the repository, never inside the package.
NB201_CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "nb201_accuracies.csv"


@pytest.fixture(scope="session", autouse=True)
def no_nni_registry_entries_left(tmp_path_factory):
    """NNI 3.0 records every experiment in ``~/nni-experiments/.experiment`` and never removes one: after the
    session, the entries of the experiments the tests ran (their folders under this session's temporary base)
    are removed by ``archscale search``'s own cleanup (``forget_nni_experiments``)."""
    yield
    registry = Path.home() / "nni-experiments" / ".experiment"
    base = tmp_path_factory.getbasetemp()
    try:
        text = registry.read_text(encoding="utf-8")
        if str(base) not in text and os.path.realpath(base) not in text:  # no test experiment: nothing to import
            return
    except OSError:
        return
    from nni_archscale.nni_glue.search import forget_nni_experiments

    forget_nni_experiments(Path(base), report=lambda message: None, inside=True)
