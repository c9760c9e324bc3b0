"""Inits, path counts and the two published conventions that bundle them. Pure data: no torch, no NNI, no
if-chains on names. See docs/design.md, "Rules, and conventions".

Two choices are independent everywhere (the hook's config, every command, the experiments):

* the **init** (:class:`Init`: ``paper``, ``exact``, ``release``, ``standard``): how every weight is drawn;
* the **rate rule** (:mod:`nni_archscale.rules.registry`): how every parameter group's learning rate is set.
  One rate for every candidate is the rate rule ``shared``; it is not an init.

An init is an :class:`InitRule` (Chen, Wu, Wang & Hanin, ICLR 2024; paper-notes §2 for the release): the hidden
edges' variance ``Var W_e = gain / (d * fan)`` (eq. 4 / App. A eq. 12: which node's in-degree ``d`` divides He's
gain 2, a :class:`Degree`, and which :class:`Fan`), the readout's ``scale / fan ** power`` (eq. 2: mean-field
``1 / n^2``), and NAS-Bench-201's reduction blocks. ``exact`` is the paper's rule plus fixed node-sum scalars that
keep every node's second moment at the input's (:mod:`nni_archscale.rules.forward_moments`); ``standard`` is
He/Kaiming's (gain 2 over fan-in, readout ``1 / fan_in``).

The graph rule (eq. 8/9) counts paths by a :class:`PathCount`: the layers outside the graph every path crosses
(``L_p = k_p + offset``), the base network's ``sum_p L_p^3``, eq. 9's :class:`KernelFactor`, and the release's
fallback when no path has a parameterised edge.

A **preset** (:class:`Preset`) is a published convention bundling an init rule with a path count, and nothing
else: ``paper`` (the paper's text, the default) and ``release`` (the authors' released code). The graph rule
counts paths by the preset of the init in use (:attr:`Init.preset`: ``release`` for the release's init, ``paper``
for the other three; He's init has no count of its own). An old spelling is refused by :func:`preset_of` with
the new one named: ``standard`` is an init, and one shared rate is the rate rule ``shared`` (what an earlier
version stored reads through :func:`nni_archscale.rules.registry.stored_options`).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping

from ..core.context import Context, Named, default_base_kernel_size, effective_kernel_size
from ..core.graph import ArchGraph, Edge
from ..errors import RuleError


def _per_context(**values) -> Mapping[Context, object]:
    table = {Context.of(k.replace("_", "-")): v for k, v in values.items()}
    if set(table) != set(Context):
        raise AssertionError(f"a per-context table must name every context, got {sorted(table)}")
    return MappingProxyType(table)


def _everywhere(value) -> Mapping[Context, object]:
    return _per_context(**{c.value.replace("-", "_"): value for c in Context})


class Fan(Named):
    """Which fan a variance divides by."""

    FAN_IN = "fan_in"
    FAN_OUT = "fan_out"


class Degree(Named):
    """Whose in-degree divides a hidden edge's He gain 2: the edge's target (eq. 4 / App. A eq. 12), its source
    (the authors' release, at least 1), or nobody (He/Kaiming)."""

    TARGET = "target"
    SOURCE = "source"
    NONE = "none"

    def divisor(self, graph: ArchGraph, edge: Edge) -> tuple[int | None, int | None]:
        """(node, in-degree) dividing ``edge``'s gain; (None, None) for He's init."""
        if self is Degree.NONE:
            return None, None
        node = edge.dst if self is Degree.TARGET else edge.src
        return node, max(graph.in_degree[node], 1)

    def formula(self, degree: int | None, node: int | None, fan: Fan) -> str:
        """The one line ``inspect`` prints for an edge's variance."""
        if self is Degree.TARGET:
            return f"2 / (d_in({node}) * {fan}) = 2/({degree}*{fan})"
        if self is Degree.SOURCE:
            return f"2 / (max(d_in({node}), 1) * {fan}) = 2/({degree}*{fan})  [release: source in-degree]"
        return f"2 / {fan}  [He/Kaiming]"


def _release_cnn(graph: ArchGraph, context: Context, q: int | None, q0: int | None) -> tuple[Fraction, str]:
    q = q or effective_kernel_size(graph, context)
    return Fraction(3, q), f"3/q = 3/{q}  [release CNN]"


class KernelFactor(Named):
    """Eq. 9's kernel factor, as a small callable ``factor(graph, context, q, q_base) -> (Fraction, text)``
    (``q``/``q_base`` None: the network's own, :func:`~nni_archscale.core.context.effective_kernel_size`, and the
    base network's): ``q_base / q`` in the paper, ``3 / q`` in the released CNN code (a bare DAG of convolutions
    is read as that code), none for the released MLP and NAS-Bench-201 code."""

    PAPER = "paper"
    RELEASE_CNN = "release-cnn"
    RELEASE_CNN_IF_CONV = "release-cnn-if-conv"
    RELEASE_MLP = "release-mlp"
    RELEASE_NB201 = "release-nb201"

    def __call__(self, graph: ArchGraph, context: Context, q: int | None = None,
                 q0: int | None = None) -> tuple[Fraction, str]:
        if self is KernelFactor.PAPER:
            q = q or effective_kernel_size(graph, context)
            q0 = q0 or default_base_kernel_size(graph, context)
            return Fraction(q0, q), f"q_base/q = {q0}/{q}"
        if self is KernelFactor.RELEASE_CNN or (self is KernelFactor.RELEASE_CNN_IF_CONV
                                                and (q or any(k > 1 for k in graph.kernel_sizes))):
            return _release_cnn(graph, context, q, q0)
        if self is KernelFactor.RELEASE_NB201:
            return Fraction(1), "1  [release: no kernel factor for NAS-Bench-201]"
        return Fraction(1), "1  [release MLP: no kernel factor]"


@dataclass(frozen=True)
class InitRule:
    """How the weights of a network are drawn (module docstring). Read by :mod:`nni_archscale.rules.paper`
    (:func:`~nni_archscale.rules.paper.edge_init`, :func:`~nni_archscale.rules.paper.readout_init`) and
    :mod:`nni_archscale.rules.planner`."""

    name: str
    degree: Degree
    #: the fan of hidden edges and readout, per context
    fan: Mapping[Context, Fan]
    readout_scale: Fraction
    readout_power: int
    readout_formula: Mapping[Context, str]
    #: NAS-Bench-201 reduction blocks: None (eq. 4 on :func:`networks.resnet_reduction_block` with this rule's
    #: degree) or a fixed table ``((module, gain, formula), ...)``
    reduction: tuple[tuple[str, Fraction, str], ...] | None = None

    def edge_formula(self, degree: int | None, node: int | None, fan: Fan) -> str:
        return self.degree.formula(degree, node, fan)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class PathCount:
    """How eq. 8 counts a path's layers and what eq. 9 multiplies, per context (module docstring). Read by
    :func:`nni_archscale.rules.paper.learning_rate`."""

    #: L_p = k_p + depth_offset (eq. 8)
    depth_offset: Mapping[Context, int]
    #: sum_p L_p^3 of the base network ``c`` is calibrated on
    base_depth_power_sum: Mapping[Context, int]
    kernel_factor: Mapping[Context, KernelFactor]
    #: the release's fallback when no path has a parameterised edge (base depth [3], i.e. the base rate)
    base_depth_fallback: Mapping[Context, bool]


@dataclass(frozen=True)
class Preset:
    """A published convention: an init rule and the path count its authors' rate rule uses."""

    name: str
    #: which publication: the text or the code the convention reproduces
    source: str
    init: InitRule
    count: PathCount

    def __str__(self) -> str:
        return self.name


_FAN_IN = _everywhere(Fan.FAN_IN)
_NO_FALLBACK = _everywhere(False)

PAPER_INIT = InitRule("paper", Degree.TARGET, _FAN_IN, Fraction(1), 2,
                      _everywhere("1 / fan_in^2  [mean-field readout, eq. 2]"))

RELEASE_INIT = InitRule(
    "release", Degree.SOURCE,
    _per_context(dag=Fan.FAN_OUT, nb201_cell=Fan.FAN_IN, mlp_cell=Fan.FAN_OUT, cnn_cell=Fan.FAN_OUT),
    Fraction(4), 2,
    _per_context(dag="(2 / fan_out)^2  [release: squared std]", nb201_cell="(2 / fan_in)^2  [release: squared std]",
                 mlp_cell="(2 / fan_out)^2  [release: squared std]",
                 cnn_cell="(2 / fan_out)^2  [release: squared std]"),
    (
        ("conv_a", Fraction(1), "2 / (2 * fan_in)  [release: reduction conv_a, degree 2]"),
        ("conv_b", Fraction(2), "2 / (1 * fan_in)  [release: reduction conv_b, degree 1]"),
        ("downsample", Fraction(1), "2 / (2 * fan_in)  [release: reduction shortcut, degree 2]"),
    ),
)

#: He/Kaiming: gain 2 over fan-in for hidden edges, ``1 / fan_in`` for the readout (gain 1)
HE_INIT = InitRule("standard", Degree.NONE, _FAN_IN, Fraction(1), 1, _everywhere("1 / fan_in  [Kaiming, gain 1]"))

PAPER_COUNT = PathCount(
    # the paper counts ReLUs (§3.3): the stem's and the cell's; the base cell 0_00_000_2000 has one layer + stem
    _per_context(dag=0, nb201_cell=1, mlp_cell=1, cnn_cell=1),
    _per_context(dag=1, nb201_cell=1, mlp_cell=8, cnn_cell=8),
    _everywhere(KernelFactor.PAPER),
    _NO_FALLBACK,
)

RELEASE_COUNT = PathCount(
    # the released MLP/CNN code adds 3 layers to every path; its base depth [3] is the all-skip cell (3^3 = 27)
    # for a bare DAG and the base cell 0_00_000_2000 (4^3) for the MLP/CNN cells
    _per_context(dag=3, nb201_cell=1, mlp_cell=3, cnn_cell=3),
    _per_context(dag=27, nb201_cell=1, mlp_cell=64, cnn_cell=64),
    _per_context(dag=KernelFactor.RELEASE_CNN_IF_CONV, nb201_cell=KernelFactor.RELEASE_NB201,
                 mlp_cell=KernelFactor.RELEASE_MLP, cnn_cell=KernelFactor.RELEASE_CNN),
    _per_context(dag=True, nb201_cell=False, mlp_cell=True, cnn_cell=True),
)

PAPER = Preset("paper", "Chen, Wu, Wang & Hanin, ICLR 2024: eq. 2, 4, 8, 9 as the text states them",
               PAPER_INIT, PAPER_COUNT)
RELEASE = Preset("release", "the authors' released code (paper-notes §2): source in-degree, (2/fan)^2 readout, "
                 "L_p = k_p + 3, 3/q", RELEASE_INIT, RELEASE_COUNT)

#: the published conventions by name (``paper`` is the default everywhere)
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (PAPER, RELEASE)})

#: spellings of earlier versions, refused with the one that replaced them
_RENAMED = {"standard": "'standard' is an init, not a preset: use init 'standard' (He/Kaiming), and the rate rule "
                        "'shared' for one rate for every candidate"}


class Init(Named):
    """The init a user chooses (module docstring)."""

    PAPER = "paper"
    EXACT = "exact"
    RELEASE = "release"
    STANDARD = "standard"

    @property
    def rule(self) -> InitRule:
        """The per-edge and readout variances (``exact``: the paper's, plus node scalars)."""
        return {Init.RELEASE: RELEASE_INIT, Init.STANDARD: HE_INIT}.get(self, PAPER_INIT)

    @property
    def preset(self) -> Preset:
        """The published convention whose path count the graph rule uses with this init: the release's for its
        init, the paper's for the other three."""
        return RELEASE if self is Init.RELEASE else PAPER

    @property
    def node_scales(self) -> bool:
        """Whether fixed node-sum scalars are added (:func:`nni_archscale.rules.forward_moments.exact_node_scales`)."""
        return self is Init.EXACT


#: the init names, in the order the command line lists them
INITS = tuple(i.value for i in Init)


def preset_of(preset: "str | Preset | Init") -> Preset:
    """The :class:`Preset` named ``preset`` (a Preset as is; an :class:`Init`'s own, :attr:`Init.preset`)."""
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, Init):
        return preset.preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    if preset in _RENAMED:
        raise RuleError(_RENAMED[preset])
    raise RuleError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)} (an init is one of "
                    f"{', '.join(INITS)})")


def init_rule_of(init: "str | Init | InitRule | Preset") -> InitRule:
    """The :class:`InitRule` of an init (a name of :data:`INITS` or an :class:`Init`), of a preset, or as is."""
    if isinstance(init, InitRule):
        return init
    if isinstance(init, Preset):
        return init.init
    return Init.of(init).rule
