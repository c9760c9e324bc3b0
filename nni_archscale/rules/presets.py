"""The conventions a rule is applied under: one frozen :class:`Preset` per convention and one :class:`Init` enum, each
keyed by the :class:`~nni_archscale.core.context.Context` a graph is read in. Pure data: no torch, no NNI, no
if-chains on names.

A *preset* fixes, for every network (Chen, Wu, Wang & Hanin, ICLR 2024; paper-notes §2 for the release):

* the hidden edges' init variance ``Var W_e = gain / (d * fan)`` (eq. 4 / App. A eq. 12): which node's in-degree
  ``d`` divides He's gain 2 (the target's in the paper, the source's in the authors' release, none for He/Kaiming),
  and which fan (``fan_in``, or the release's ``fan_out`` outside NAS-Bench-201);
* the readout's variance ``scale / fan ** power`` (eq. 2: mean-field ``1 / n^2``);
* the depth offset of eq. 8: layers outside the graph that every path crosses, ``L_p = k_p + offset``, and the
  base network's ``sum_p L_p^3`` the rate is calibrated on;
* the kernel factor of eq. 9 (``q_base / q`` in the paper, ``3 / q`` in the released CNN code, none elsewhere);
* NAS-Bench-201's reduction blocks (eq. 4 on their 3-node graph, or the release's fixed table);
* whether the rate transfers at all (``standard``: one rate for every candidate).

An *init* (:class:`Init`) is what a user asks for: a preset's own init, or ``exact`` (the paper's preset plus
fixed node-sum scalars that keep every node's second moment at the input's; :mod:`nni_archscale.rules.forward_moments`).
The same four names are accepted everywhere an init is chosen (``inspect --init``, ``search --init``, the
experiments' ``--inits``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType
from typing import Mapping

from ..core.context import Context, Named
from ..errors import RuleError


def _per_context(**values) -> Mapping[Context, object]:
    table = {Context.of(k.replace("_", "-")): v for k, v in values.items()}
    if set(table) != set(Context):
        raise AssertionError(f"a per-context table must name every context, got {sorted(table)}")
    return MappingProxyType(table)


@dataclass(frozen=True)
class Preset:
    """One convention for applying the rules (module docstring). Every field is data read by
    :mod:`nni_archscale.rules.paper` and :mod:`nni_archscale.rules.planner`."""

    name: str
    #: whose in-degree divides the hidden edges' gain 2: "target" (eq. 4), "source" (release, at least 1) or None
    degree: str | None
    #: the fan of hidden edges and readout, per context
    fan: Mapping[Context, str]
    readout_scale: Fraction
    readout_power: int
    readout_formula: Mapping[Context, str]
    #: L_p = k_p + depth_offset (eq. 8)
    depth_offset: Mapping[Context, int]
    #: sum_p L_p^3 of the base network ``c`` is calibrated on
    base_depth_power_sum: Mapping[Context, int]
    #: eq. 9's kernel factor: "paper" (q_base / q), "release-cnn" (3 / q) or "none"; per context
    kernel_factor: Mapping[Context, str]
    #: the release's fallback when no path has a parameterised edge (base depth [3], i.e. the base rate)
    base_depth_fallback: Mapping[Context, bool]
    #: NAS-Bench-201 reduction blocks: None (eq. 4 on :func:`networks.resnet_reduction_block` with this preset's
    #: degree) or a fixed table ``((module, gain, formula), ...)``
    reduction: tuple[tuple[str, Fraction, str], ...] | None
    #: False: one learning rate for every candidate (the rate does not transfer)
    transfers_rate: bool = True

    def edge_formula(self, degree: int | None, node: int | None, fan: str) -> str:
        if self.degree == "target":
            return f"2 / (d_in({node}) * {fan}) = 2/({degree}*{fan})"
        if self.degree == "source":
            return f"2 / (max(d_in({node}), 1) * {fan}) = 2/({degree}*{fan})  [release: source in-degree]"
        return f"2 / {fan}  [He/Kaiming]"

    def __str__(self) -> str:
        return self.name


_FAN_IN = _per_context(dag="fan_in", nb201_cell="fan_in", mlp_cell="fan_in", cnn_cell="fan_in")
_NO_FALLBACK = _per_context(dag=False, nb201_cell=False, mlp_cell=False, cnn_cell=False)

PAPER = Preset(
    "paper", "target", _FAN_IN, Fraction(1), 2,
    _per_context(**dict.fromkeys(("dag", "nb201_cell", "mlp_cell", "cnn_cell"),
                                 "1 / fan_in^2  [mean-field readout, eq. 2]")),
    # the paper counts ReLUs (§3.3): the stem's and the cell's; the base cell 0_00_000_2000 has one layer + stem
    _per_context(dag=0, nb201_cell=1, mlp_cell=1, cnn_cell=1),
    _per_context(dag=1, nb201_cell=1, mlp_cell=8, cnn_cell=8),
    _per_context(dag="paper", nb201_cell="paper", mlp_cell="paper", cnn_cell="paper"),
    _NO_FALLBACK,
    None,
)

RELEASE = Preset(
    "release", "source",
    _per_context(dag="fan_out", nb201_cell="fan_in", mlp_cell="fan_out", cnn_cell="fan_out"),
    Fraction(4), 2,
    _per_context(dag="(2 / fan_out)^2  [release: squared std]", nb201_cell="(2 / fan_in)^2  [release: squared std]",
                 mlp_cell="(2 / fan_out)^2  [release: squared std]",
                 cnn_cell="(2 / fan_out)^2  [release: squared std]"),
    # the released MLP/CNN code adds 3 layers to every path; its base depth [3] is the all-skip cell (3^3 = 27)
    # for a bare DAG and the base cell 0_00_000_2000 (4^3) for the MLP/CNN cells
    _per_context(dag=3, nb201_cell=1, mlp_cell=3, cnn_cell=3),
    _per_context(dag=27, nb201_cell=1, mlp_cell=64, cnn_cell=64),
    _per_context(dag="release-cnn-if-conv", nb201_cell="release-nb201", mlp_cell="release-mlp", cnn_cell="release-cnn"),
    _per_context(dag=True, nb201_cell=False, mlp_cell=True, cnn_cell=True),
    (
        ("conv_a", Fraction(1), "2 / (2 * fan_in)  [release: reduction conv_a, degree 2]"),
        ("conv_b", Fraction(2), "2 / (1 * fan_in)  [release: reduction conv_b, degree 1]"),
        ("downsample", Fraction(1), "2 / (2 * fan_in)  [release: reduction shortcut, degree 2]"),
    ),
)

STANDARD = Preset(
    "standard", None, _FAN_IN, Fraction(1), 1,
    _per_context(dag="1 / fan_in  [Kaiming, gain 1]", nb201_cell="1 / fan_in  [Kaiming, gain 1]",
                 mlp_cell="1 / fan_in  [Kaiming, gain 1]", cnn_cell="1 / fan_in  [Kaiming, gain 1]"),
    PAPER.depth_offset,  # not used for the rate (it does not transfer); what rules.depth_offset reports
    PAPER.base_depth_power_sum,
    _per_context(dag="none", nb201_cell="none", mlp_cell="none", cnn_cell="none"),
    _NO_FALLBACK,
    None,
    transfers_rate=False,
)

#: the presets by name (``paper`` is the default everywhere)
PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in (PAPER, RELEASE, STANDARD)})


def preset_of(preset: "str | Preset") -> Preset:
    """The :class:`Preset` named ``preset`` (a Preset is returned as is)."""
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset]
    raise RuleError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")


class Init(Named):
    """The init a user chooses: a preset's own, or ``exact`` (the paper's preset plus node-sum scalars that keep
    every node at the input's second moment)."""

    PAPER = "paper"
    EXACT = "exact"
    RELEASE = "release"
    STANDARD = "standard"

    @property
    def preset(self) -> Preset:
        """The preset whose per-edge variances this init starts from (``exact``: the paper's)."""
        return PAPER if self is Init.EXACT else PRESETS[self.value]

    @property
    def node_scales(self) -> bool:
        """Whether fixed node-sum scalars are added (:func:`nni_archscale.rules.forward_moments.exact_node_scales`)."""
        return self is Init.EXACT


#: the init names, in the order the command line lists them
INITS = tuple(i.value for i in Init)
