"""An NNI NAS search (NAS-Bench-201 space, RegularizedEvolution, sequential engine) in which every candidate
trains with its own principled init and learning rate, and also with one shared learning rate tuned on the base
network (the alternative a NAS user has), same seeds and budget.
Offline: the data is scikit-learn's digits. About a minute on 2 CPU cores.

    python examples/nni_search_with_hook.py [OUT_DIR]
"""

import json
import sys
import tempfile

from nni_archscale.nni_glue.search import SearchOptions, run_search

out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="archscale-example-")
# threads=1: the candidates are tiny; on a busy 2-core machine one torch thread trains them several times faster
summary = run_search(SearchOptions(trials=4, epochs=1, width=4, compare="shared-rate", out=out,
                                   cache_path=f"{out}/calibration.json", threads=1))
print(json.dumps({k: summary[k] for k in ("candidates", "best", "best_accuracy", "shared_lr", "mean_gain", "gain_ci95",
                                          "kendall_tau")}, indent=2))
print(f"against one shared rate: {summary['verdict']}")
print(f"results in {out}/results.csv, {out}/summary.json, {out}/accuracy.png")
