"""The rules: init variances and learning rates on the core's graphs (see docs/design.md, "Layers").

One module per rule family: ``presets`` (inits, path counts and the published presets, as data), ``paper``
(eq. 2/4/8/9), ``forward_moments`` (exact moments, the variance-exact init), ``first_step`` (the DAG-cell
first-step rules), ``shortest_path`` (the shortest-path rival); ``registry`` (every rate rule as one object),
``defaults`` (which rule each family gets, and why), ``planner`` (whole-network init plans), ``names`` (the
names the command line offers), ``explain`` (``archscale inspect``'s report). Pure Python: no torch, no NNI.
"""
