"""Verify an init rule symbolically: does it keep every node at the input's second moment?

Takes a small residual DAG, prints each node's E|z_v|^2 / E|z_0|^2 as an exact expression in the per-edge
gains (Var W = C / fan_in, paper eq. 1-2 at infinite width), substitutes the ``paper`` init's gains
(eq. 4: 2 / d_in(target)), and shows where the rule drifts, by what exact factor, and which gains would
restore equality - or why none can.

Run: ``python examples/symbolic_check.py``
"""

from nni_archscale.core.formats import from_paper_code
from symbolic import check_rule, restoring_gains, second_moments

# 0 -> 1 param; 2 <- param from 0 and 1; 3 <- skip from 0, param from 2 (a residual connection)
graph = from_paper_code("2_22_102")
print("graph:", graph)

print("\nE|z_v|^2 / E|z_0|^2 in the gains:")
for v, ratio in enumerate(second_moments(graph).ratios):
    print(f"  z_{v}: {ratio}")

check = check_rule(graph, "paper")
print("\npaper init (Var W = 2 / (d_in(target) fan_in)):")
for node in check.nodes:
    print(f"  z_{node.node}: {node.ratio}  ({node.status})")

restore = restoring_gains(graph)
print("\ngains keeping every node at the input's moment:",
      {f"{u}->{v}": str(g) for (u, v), g in restore.gains.items()})
for node in restore.nodes:
    if not node.feasible or node.status == "zero-variance":
        print(f"  z_{node.node}: {node.status}; the skips alone carry {node.skip_moment_ratio} x the input's moment")
