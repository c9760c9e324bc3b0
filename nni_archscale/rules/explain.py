"""Explain a rule's result: the JSON record and the human report printed by ``archscale inspect``.

Every number comes with the formula that produced it, so that any learning rate or variance can be checked
by hand against the paper (eq. 2, 4, 8, 9).
"""

from __future__ import annotations

from typing import Any

from ..core.formats import to_text
from ..core.paths import depth_range, path_statistics
from .paper import Scaling


def fan_value(fan: str, edge_kernel: int, width: int) -> int:
    """fan_in (= fan_out for width -> width layers) of a q x q conv or Linear layer of ``width`` channels."""
    return width * edge_kernel * edge_kernel


def readout_fan(scaling: Scaling, width: int, num_classes: int) -> int:
    """The readout's fan: its input width (NAS-Bench-201: 4C after two reductions) or, for the release's
    MLP/CNN fan_out mode, the number of classes."""
    if scaling.readout.fan == "fan_out":
        return num_classes
    return 4 * width if scaling.context == "nb201-cell" else width


def to_record(scaling: Scaling, width: int = 16, num_classes: int = 10, form: str | None = None) -> dict[str, Any]:
    """A JSON-ready dict: the CLI contract of ``archscale inspect --json``."""
    g = scaling.graph
    rate = scaling.learning_rate
    rng = depth_range(g)
    init = []
    for item in scaling.init:
        e = item.edge
        fan = fan_value(item.fan, e.kernel_size, width)
        init.append(
            {
                "edge": e.name,
                "src": e.src,
                "dst": e.dst,
                "kind": e.kind.value,
                "kernel_size": e.kernel_size,
                "op": e.op,
                "module": e.module,
                "gain": str(item.gain),
                "fan": item.fan,
                "fan_value": fan,
                "variance": item.variance(fan),
                "formula": item.formula,
            }
        )
        if scaling.edge_learning_rates:
            init[-1]["learning_rate"] = scaling.edge_learning_rates[e]
    rfan = readout_fan(scaling, width, num_classes)
    record = {
        "graph": to_text(g),
        "canonical": to_text(g.canonical()),
        "form": form,
        "init": scaling.init_rule,
        "path_count": scaling.preset,
        "context": scaling.context,
        "num_nodes": g.num_nodes,
        "num_paths": scaling.num_paths,
        "path_moments": list(scaling.path_moments),
        "in_degree": list(g.in_degree),
        "paths_from_input": list(path_statistics(g).num_paths),
        "depth_range": list(rng) if rng else None,
        "depth_offset": rate.depth_offset,
        "depth_power_sum": rate.depth_power_sum,
        "base_depth_power_sum": rate.base_depth_power_sum,
        "kernel_factor": str(rate.kernel_factor),
        "base_lr": rate.base_lr,
        "learning_rate": rate.value,
        "learning_rate_formula": rate.formula,
        "width": width,
        "init_variance": init,
        "readout": {
            "fan": scaling.readout.fan,
            "fan_value": rfan,
            "variance": scaling.readout.variance(rfan),
            "formula": scaling.readout.formula,
        },
        "notes": list(rate.notes),
    }
    return record


def to_report(record: dict[str, Any]) -> str:
    """The human form of :func:`to_record`."""
    lines = [
        f"graph      {record['graph']}",
        f"canonical  {record['canonical']}",
        f"init       {record['init']}   paths counted as {record['path_count']}   context {record['context']}   "
        f"(read as {record['form']})",
        "",
        "node  in-degree  paths from input",
    ]
    for v, (d, p) in enumerate(zip(record["in_degree"], record["paths_from_input"])):
        role = " (input)" if v == 0 else " (output)" if v == record["num_nodes"] - 1 else ""
        lines.append(f"{v:>4}  {d:>9}  {p:>16}{role}")
    s0, s1, s2, s3 = record["path_moments"]
    rng = record["depth_range"]
    lines += [
        "",
        f"input-output paths P = {s0}",
        f"path moments (S0, S1, S2, S3) = ({s0}, {s1}, {s2}, {s3})   [S_j = sum_p k_p^j, k_p = parameterised edges]",
    ]
    if rng:
        mean = s1 / s0 if s0 else 0.0
        lines.append(f"parameterised edges per path: min {rng[0]}, mean {mean:.3g}, max {rng[1]}")
    lines.append(
        f"sum_p L_p^3 = {record['depth_power_sum']} with L_p = k_p + {record['depth_offset']}; "
        f"base network: {record['base_depth_power_sum']}"
    )
    lines += ["", f"init (width {record['width']}):"]
    if not record["init_variance"]:
        lines.append("  no parameterised edge")
    for item in record["init_variance"]:
        extra = f"   lr {item['learning_rate']:.6g}" if "learning_rate" in item else ""
        lines.append(
            f"  {item['edge']:>8} {item['kind']}(k={item['kernel_size']})  var = {item['variance']:.6g}   "
            f"{item['formula']}, {item['fan']} = {item['fan_value']}{extra}"
        )
    ro = record["readout"]
    lines.append(f"  readout  var = {ro['variance']:.6g}   {ro['formula']}, {ro['fan']} = {ro['fan_value']}")
    lines += ["", f"learning rate = {record['learning_rate']:.6g}", f"  {record['learning_rate_formula']}"]
    for note in record["notes"]:
        lines.append(f"  note: {note}")
    return "\n".join(lines)
