"""What a graph is inside: the :class:`Context` a cell is read in (a bare DAG, one NAS-Bench-201 cell, the cell
of the paper's MLP or CNN), with the base network's kernel each context fixes. Part of the core because a
network (:mod:`.networks`) carries its cell's context; the rules (:mod:`nni_archscale.rules.presets`) key their
conventions by it. Pure data: no torch, no NNI.
"""

from __future__ import annotations

import enum

from ..errors import RuleError


class Named(str, enum.Enum):
    """A name that prints, formats and serialises as its value (``str(Context.DAG) == "dag"``)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @classmethod
    def of(cls, name):
        """The member ``name`` names (a member is returned as is); a :class:`RuleError` listing the names
        otherwise (``unknown context ...``, ``unknown init ...``: the class's name)."""
        try:
            return cls(name)
        except ValueError:
            raise RuleError(f"unknown {cls.__name__.lower()} {name!r}; use one of "
                            f"{', '.join(m.value for m in cls)}") from None


class Context(Named):
    """What a graph is inside: the paper's bare DAG (eq. 1), one NAS-Bench-201 cell (§4.3), the cell of the paper's
    MLP (§4.1) or CNN (§4.2). The rules' table by context: :mod:`nni_archscale.rules.paper`."""

    DAG = "dag"
    NB201_CELL = "nb201-cell"
    MLP_CELL = "mlp-cell"
    CNN_CELL = "cnn-cell"

    @classmethod
    def of_cell_network(cls, kind: str) -> "Context":
        """The context of the paper's DAG-cell network of ``kind`` ``mlp`` or ``cnn``."""
        return cls.CNN_CELL if kind == "cnn" else cls.MLP_CELL

    @property
    def base_kernel_size(self) -> int | None:
        """The base network's kernel (eq. 9's ``q_base``): 1 for the MLP, 3 for the paper's base CNN (§4.2) and
        NAS-Bench-201; None for a bare DAG (read off the graph: 3 if it has convolutions)."""
        return {Context.NB201_CELL: 3, Context.CNN_CELL: 3, Context.MLP_CELL: 1}.get(self)

    @property
    def stem_kernel_size(self) -> int | None:
        """The stem's kernel where it bounds eq. 9's ``q``: NAS-Bench-201's 3x3 stem; a CNN cell's default 3x3
        stem (counted only when the cell has no convolution); none for MLPs and bare DAGs."""
        return {Context.NB201_CELL: 3, Context.CNN_CELL: 3}.get(self)


def effective_kernel_size(graph, context: "Context | str") -> int:
    """q of eq. 9 for ``graph`` (an :class:`~nni_archscale.core.graph.ArchGraph`) read in ``context``: the largest
    kernel over the network's parameterised layers (NB201's stem is 3x3)."""
    context = Context.of(context)
    qs = list(graph.kernel_sizes)
    stem = context.stem_kernel_size
    if stem is not None and (context is Context.NB201_CELL or not qs):
        qs.append(stem)  # NB201's 3x3 stem; a CNN cell without convs still has its (default 3x3) stem
    return max(qs, default=1)


def default_base_kernel_size(graph, context: "Context | str") -> int:
    """The base network's kernel (eq. 9's ``q_base``): 1 for MLPs, 3 for CNNs (the paper's base CNN, §4.2) and
    NAS-Bench-201; for a bare DAG, 3 if ``graph`` has convolutions."""
    q0 = Context.of(context).base_kernel_size
    if q0 is not None:
        return q0
    return 3 if any(q > 1 for q in graph.kernel_sizes) else 1
