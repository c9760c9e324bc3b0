"""The research beside the product (docs/design.md, "Layers"): experiments that measure how well the rules predict
maximal learning rates (the paper's §4 protocols), the NAS-Bench-201 retraining, the rules that lost their tests
and the held-out check. Imports the product; the product never imports it (``archscale experiment`` is named once
in the CLI's subcommand table).
"""
