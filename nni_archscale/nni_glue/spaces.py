"""NNI 3.0's own model spaces (``nni.nas.hub.pytorch``) at sizes that train on two CPU cores, with seeded sampling.

Every entry of :data:`SPACES` is one of NNI's hub classes with constructor arguments (:attr:`SpaceSpec.defaults`)
chosen so that a batch of 64 digits images (3x8x8) trains in tens of milliseconds a step on one CPU thread;
the search dimensions themselves (operators, cell wiring, depths, kernel sizes, expand ratios) are NNI's own.

* :func:`build_space` - the NNI ``ModelSpace`` (defaults, then ``overrides``), its head sized to ``num_classes``;
* :func:`check_space_options` - refuses an override NNI's class does not take, or of another type than it declares
  (an integer must be a positive one up to :data:`MAX_SPACE_INT`), before anything is built;
* :func:`sample_model` - ``(sample dict, frozen nn.Module)`` for a seed: ``space.random(memo, RandomState(seed))``,
  the weights drawn from a torch generator seeded with ``seed`` too (the global torch RNG is left untouched);
* :class:`SampleRejected` - NNI refused the seed's sample (NasBench101's cell constraints), with NNI's reason.

``nni`` and ``torch`` are imported inside the functions, never when this module is imported (CLI start-up).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchScaleError, shorten

__all__ = ["SPACE_NAMES", "SPACES", "SpaceSpec", "SampleRejected", "build_space", "check_space_options",
           "sample_model"]

from ..rules.names import SPACE_NAMES  # noqa: E402  (one list, also read by the CLI without importing torch)


@dataclass(frozen=True)
class SpaceSpec:
    """One registry entry: NNI's class (``nni_class``, a name in ``nni.nas.hub.pytorch``) and the constructor
    arguments used at CPU size (``defaults``; ``build_space``'s overrides replace them). ``min_image_size``: the
    smallest image side the defaults run on; ``image_multiple``: the side must also be a multiple of this."""

    name: str
    nni_class: str
    description: str
    defaults: dict = field(hash=False)
    min_image_size: int = 1
    image_multiple: int = 1


class SpaceError(ArchScaleError, ValueError):
    """A model space asked for by a name, argument or image size it cannot take; the message names the fix."""


class SampleRejected(ArchScaleError):
    """NNI rejected the sample drawn for this seed (``space.random`` / ``freeze`` raised NNI's
    ``SampleValidationError``, e.g. a NasBench101 cell with more than 9 edges or no input-output path). Skip the
    seed; ``reason`` is NNI's message."""

    def __init__(self, space: str, seed: int, reason: str):
        super().__init__(f"{space} seed {seed}: NNI rejects the sample: {reason}")
        self.space, self.seed, self.reason = space, seed, reason


# The NDS spaces (DARTS family) share one recipe: NNI's CIFAR stem (no stride, so an 8x8 image keeps its size up
# to the two reduction cells), 8 channels, 5 cells (normal | reduce, normal | reduce, normal).
_NDS = {"width": 8, "num_cells": 5, "dataset": "cifar"}
_NDS_NOTE = ("NNI's NDS macro network (nasnet.py), CIFAR stem, width 8, 5 cells (N | R N | R N); NNI fixes the "
             "head at 10 classes for dataset='cifar', so other class counts get a re-sized final Linear")

SPACES: dict[str, SpaceSpec] = {s.name: s for s in (
    SpaceSpec("nb201", "NasBench201",
              "NAS-Bench-201 (Dong & Yang, ICLR 2020): a 4-node cell, 5 ops on each of its 6 edges, stacked in "
              "3 stages with ResNet reduction blocks (nasbench201.py); stem width 8, 1 cell per stage. Sample keys "
              "'cell/<j>_<i>'. The reduction block adds a stride-2 conv to a 2x2 average pool, so the side must be "
              "a multiple of 4 (8 and 32 run; 5, 7, 9, 10 do not)",
              {"stem_out_channels": 8, "num_modules_per_stack": 1}, min_image_size=4, image_multiple=4),
    SpaceSpec("nb101", "NasBench101",
              "NAS-Bench-101 (Ying et al., ICML 2019): a cell of up to 7 vertices and 9 edges over conv3x3 / "
              "conv1x1 / maxpool (nasbench101.py); stem width 8, 1 stack of 1 cell. NNI rejects some samples "
              "(too many edges, no input-output path): SampleRejected. Each further stack halves the side "
              "(needs side >= 2**(num_stacks-1))",
              {"stem_out_channels": 8, "num_stacks": 1, "num_modules_per_stack": 1}),
    SpaceSpec("darts", "DARTS",
              "DARTS (Liu et al., ICLR 2019): 4 nodes a cell, 7 ops, output = all nodes. " + _NDS_NOTE, dict(_NDS)),
    SpaceSpec("enas", "ENAS",
              "ENAS (Pham et al., ICML 2018): 5 nodes a cell, 5 ops, output = loose ends. " + _NDS_NOTE,
              dict(_NDS)),
    SpaceSpec("nasnet", "NASNet",
              "NASNet (Zoph et al., CVPR 2018): 5 nodes a cell, 13 ops, output = loose ends. " + _NDS_NOTE,
              dict(_NDS)),
    SpaceSpec("amoebanet", "AmoebaNet",
              "AmoebaNet (Real et al., AAAI 2019): 5 nodes a cell, 8 ops, output = loose ends. " + _NDS_NOTE,
              dict(_NDS)),
    SpaceSpec("pnas", "PNAS",
              "PNAS (Liu et al., ECCV 2018): 5 nodes a cell, 8 ops, output = all nodes. " + _NDS_NOTE, dict(_NDS)),
    # ImageNet-sized in NNI (1.5-2.8M parameters). base_widths is the only size knob (depths 1-4 a stage and
    # expand ratios 3/6 are fixed): NNI's (32, 16, 32, 40, 80, 96, 192, 320, 1280) -> about 0.1M parameters.
    SpaceSpec("proxylessnas", "ProxylessNAS",
              "ProxylessNAS (Cai et al., ICLR 2019): MobileNetV2 inverted-residual stages, kernel 3/5/7 x expand "
              "3/6 per block, depth 1-4 per stage (proxylessnas.py); stage widths (8, 8, 8, 16, 16, 24, 32, 48, "
              "128) instead of NNI's ImageNet widths",
              {"base_widths": (8, 8, 8, 16, 16, 24, 32, 48, 128)}),
    # NNI's base widths / 4; NNI still applies its width multipliers (0.5-2x) and rounds every width to a
    # multiple of 8 (at least 8). 1.0-3.1M parameters in NNI -> 0.08-0.23M.
    SpaceSpec("mobilenetv3", "MobileNetV3Space",
              "MobileNetV3 / TuNAS space (Bender et al., CVPR 2020): width multipliers, expand ratios, kernel "
              "sizes, optional squeeze-excite, depth 1-4 per stage (mobilenetv3.py); NNI's base widths divided "
              "by 4",
              {"base_widths": (4, 4, 4, 8, 16, 32, 64, 128, 256)}),
    # NNI hard-codes ShuffleNetSpace's channels (16..1024) and depth (20 blocks): its constructor has no size
    # knob, so this entry keeps NNI's defaults (about 2.2-2.6M parameters, the slowest entry).
    SpaceSpec("shufflenet", "ShuffleNetSpace",
              "Single Path One-Shot's ShuffleNetV2 space (Guo et al., ECCV 2020): 20 choice blocks of 4 "
              "candidates (kernel 3/5/7, Xception) (shufflenet.py); NNI's sizes (no size argument)",
              {}),
)}

#: NNI's NDS class names: no ``num_labels`` argument (10 classes for dataset='cifar', else 1000).
_NDS_CLASSES = ("DARTS", "ENAS", "NASNet", "AmoebaNet", "PNAS")


@contextlib.contextmanager
def _quiet():
    """NNI's import warnings and NasBench101's INFO lines ('Prund number of nodes', printed to stdout)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = logging.getLogger("nni.nas.hub.pytorch.modules.nasbench101")
        level = log.level
        log.setLevel(logging.WARNING)
        try:
            yield
        finally:
            log.setLevel(level)


def _spec(name: str) -> SpaceSpec:
    if name not in SPACES:
        raise SpaceError(f"unknown NNI model space {name!r}; known spaces: {', '.join(SPACE_NAMES)}")
    return SPACES[name]


def _nni_class(name: str):
    with _quiet():
        from nni.nas.hub import pytorch as hub
    return getattr(hub, SPACES[name].nni_class)


def _parameters(cls) -> dict[str, Any]:
    """The constructor arguments of NNI's class ``cls`` (but ``num_labels``) with their annotations."""
    import inspect

    init = getattr(cls, "_init_wrapped", cls.__init__)  # NNI wraps ModelSpace.__init__
    return {name: p.annotation for name, p in inspect.signature(init).parameters.items()
            if name not in ("self", "num_labels")}


def _valid_kwargs(cls) -> list[str]:
    return list(_parameters(cls))


#: Largest integer a space's constructor argument may take (a width, a cell count, a depth, a stack count): NNI's
#: own spaces use at most 1,280; a larger value is a typo, or a network no machine could build.
MAX_SPACE_INT = 65_536


def _fits(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (read from JSON) is what NNI's ``annotation`` declares; an integer must be positive (a
    width, a count) and at most :data:`MAX_SPACE_INT`, a float finite, a bool a bool. Annotations this check does
    not know pass (NNI checks them)."""
    import math
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SPACE_INT
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is str:
        return isinstance(value, str)
    if origin is typing.Union:
        return any(_fits(value, a) for a in args)
    if origin is typing.Literal:
        return isinstance(value, str) and value in args
    if origin in (tuple, list):
        if not isinstance(value, (tuple, list)) or not value:
            return False
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis or origin is list:
            return all(_fits(v, args[0]) for v in value) if args else True
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    return True


def _describe(annotation: Any) -> str:
    """What :func:`_fits` accepts for ``annotation``, in words."""
    import typing

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    words = {bool: "true or false", int: f"a positive integer up to {MAX_SPACE_INT:,}", float: "a finite number",
             str: "text"}
    if annotation in words:
        return words[annotation]
    if origin is typing.Union:  # NNI's "X or a tuple of X" (a fixed value, or a choice for the search)
        scalars = [a for a in args if typing.get_origin(a) not in (tuple, list)]
        lists = [a for a in args if a not in scalars]
        if len(scalars) == 1 and all(typing.get_args(a)[:1] == (scalars[0],) for a in lists):
            return f"{_describe(scalars[0])}, or a non-empty list of such (the values to choose from)"
        return " or ".join(_describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis or origin is list and args:
        return f"a non-empty list of which each item is {_describe(args[0])}"
    if origin is tuple:
        return f"a list of {len(args)} items: " + ", ".join(_describe(a) for a in args)
    return str(annotation)


def check_space_options(name: str, options: dict) -> None:
    """Refuse, before anything is built or trained, a constructor argument of the ``name`` space that NNI's
    class does not take or whose value is not of the type it declares (:data:`MAX_SPACE_INT` bounds integers):
    a :class:`SpaceError` naming the argument, what it must be and the valid arguments."""
    spec = _spec(name)
    params = _parameters(_nni_class(name))
    if "num_labels" in options:
        raise SpaceError(f"pass num_classes= instead of num_labels= to build the {name} space")
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise SpaceError(f"unknown argument(s) {', '.join(unknown)} for NNI's {spec.nni_class} ({name}); valid "
                         f"arguments: {', '.join(params)} (--space-arg KEY=VALUE)")
    for key, value in options.items():
        if not _fits(value, params[key]):
            example = spec.defaults.get(key, None)
            hint = f"; e.g. {key}={json.dumps(example)}" if example is not None else ""
            raise SpaceError(f"argument {key}={shorten(value)} of NNI's {spec.nni_class} ({name}) must be "
                             f"{_describe(params[key])}{hint} (--space-arg {key}=VALUE)")


def _check_image_size(spec: SpaceSpec, kwargs: dict, image_size: int) -> None:
    low, multiple = spec.min_image_size, spec.image_multiple
    if spec.name == "nb101":
        low = max(low, 2 ** (int(kwargs.get("num_stacks", 1)) - 1))
    if image_size < low or image_size % multiple:
        need = f"a side of at least {low}" + (f" that is a multiple of {multiple}" if multiple > 1 else "")
        fit = -(-max(low, image_size) // multiple) * multiple
        raise SpaceError(f"NNI's {spec.nni_class} space ({spec.name}) with these arguments cannot take "
                         f"{image_size}x{image_size} images: it needs {need}. Fix: resize or pad the images "
                         f"(e.g. to {fit}x{fit}) or pick another space")


def build_space(name: str, num_classes: int = 10, *, image_size: int | None = None, **overrides: Any):
    """NNI's ``ModelSpace`` for ``name`` (one of :data:`SPACE_NAMES`): the class in ``nni.nas.hub.pytorch``
    named by ``SPACES[name].nni_class``, built with ``SPACES[name].defaults`` updated by ``overrides`` (any
    other constructor argument of that class), with a ``num_classes``-way head. ``image_size``, when given, is
    checked against what the space can take (a ``ValueError`` names the fix)."""
    spec = _spec(name)
    cls = _nni_class(name)
    check_space_options(name, overrides)
    kwargs = {**spec.defaults, **overrides}
    if image_size is not None:
        _check_image_size(spec, kwargs, int(image_size))
    try:
        return _construct(spec, cls, num_classes, kwargs)
    except (AssertionError, IndexError, RuntimeError, TypeError, ValueError) as exc:
        if not overrides:  # the registry's own defaults: a bug here, not the user's input
            raise
        given = ", ".join(f"{k}={shorten(v)}" for k, v in overrides.items())
        raise SpaceError(f"NNI's {spec.nni_class} ({name}) refuses {given} ({type(exc).__name__}"
                         f"{': ' + shorten(str(exc), 120) if str(exc) else ' in its constructor'}); fix them "
                         f"(--space-arg), or leave them out for the defaults") from exc


def _construct(spec: SpaceSpec, cls, num_classes: int, kwargs: dict):
    with _quiet():
        if spec.nni_class in _NDS_CLASSES:
            natural = 10 if kwargs.get("dataset", "cifar") == "cifar" else 1000
            if num_classes != natural:
                return _nds_with_labels(spec.nni_class)(num_labels=num_classes, **kwargs)
            return cls(**kwargs)
        return cls(num_labels=num_classes, **kwargs)


def sample_model(name: str, seed: int, num_classes: int = 10, *, image_size: int | None = None,
                 **overrides: Any) -> tuple[dict, Any]:
    """``(sample, model)``: the sample dict NNI draws for ``seed`` (``space.random(memo,
    numpy.random.RandomState(seed))``) and the frozen ``torch.nn.Module`` (``space.freeze(sample)``), both
    deterministic in ``seed``: the weights come from ``torch.manual_seed(seed)`` inside a forked RNG (the caller's
    torch RNG state is unchanged). Raises :class:`SampleRejected` when NNI refuses the sample."""
    import numpy as np
    import torch

    with torch.random.fork_rng(devices=[]):
        # seeded before the space is built: most spaces' freeze() copies the space's own weights (NDS rebuilds)
        torch.manual_seed(seed)
        space = build_space(name, num_classes, image_size=image_size, **overrides)
        with _quiet():
            from nni.mutable.exception import SampleValidationError

            memo: dict = {}
            try:
                model = space.random(memo, np.random.RandomState(seed))  # fills memo, then space.freeze(memo)
            except SampleValidationError as exc:
                raise SampleRejected(name, seed, str(exc)) from exc
    return memo, model


# --- NDS heads for class counts other than NNI's fixed 10 / 1000 ------------------------------------------------
# Created on first use (NNI is not imported with this module) and reachable as module attributes (PEP 562
# __getattr__), so NNI / pickle can find them again by name.

_NDS_WITH_LABELS: dict[str, type] = {}


def _nds_with_labels(base_name: str) -> type:
    if base_name in _NDS_WITH_LABELS:
        return _NDS_WITH_LABELS[base_name]
    import torch.nn as nn

    with _quiet():
        from nni.nas.hub import pytorch as hub
        from nni.nas.nn.pytorch import MutableLinear
    base = getattr(hub, base_name)

    def __init__(self, num_labels: int = 10, **kwargs):
        base.__init__(self, **kwargs)
        self.num_labels = num_labels
        self.classifier = MutableLinear(self.classifier.args["in_features"], num_labels)

    def freeze(self, sample):
        model = base.freeze(self, sample)  # NNI rebuilds a plain NDS with 10 (or 1000) outputs
        model.num_labels = self.num_labels
        model.classifier = nn.Linear(model.classifier.in_features, self.num_labels)
        return model  # (no auxiliary head to resize: NNI refuses auxiliary_loss=True when building a space)

    qualname = f"_{base_name}WithLabels"
    cls = type(qualname, (base,), {"__init__": __init__, "freeze": freeze, "__module__": __name__,
                                   "__qualname__": qualname,
                                   "__doc__": f"NNI's {base_name} with a ``num_labels``-way head."})
    _NDS_WITH_LABELS[base_name] = cls
    return cls


def __getattr__(attr: str):
    if attr.startswith("_") and attr.endswith("WithLabels") and attr[1:-len("WithLabels")] in _NDS_CLASSES:
        return _nds_with_labels(attr[1:-len("WithLabels")])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
