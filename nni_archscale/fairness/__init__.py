"""``archscale fairness``: each candidate's own best rate at the search's budget (its oracle), the headroom one
shared rate leaves, and each rate rule's share of it (issue 23; docs/design.md, "Fairness, measured" and "Layers").

* :mod:`.candidates` - which candidates (a seeded, stratified sample of a space), rebuildable from JSON;
* :mod:`.engine` - the grid: candidates x half-octave rates x seeds, trained as ``archscale search`` trains;
* :mod:`.curves` - reading rates off accuracy-vs-rate curves: the oracle, arms, fitted constants (pure numpy);
* :mod:`.score` - regret, headroom share, rate distance, taus, bootstrap intervals, the Holm decisions;
* :mod:`.benchmark` - the run: base rates, rule rates, training, analysis; :mod:`.report` - its files.
"""
