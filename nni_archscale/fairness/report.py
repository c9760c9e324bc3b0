"""A fairness run's files: ``summary.json``, ``runs.csv`` (every training), ``README.md`` (the report) and plots:
``curves.png`` (each candidate's accuracy-vs-rate curve with its oracle and the product-level arms' rates
marked), ``regret.png`` (regret per arm with 95% intervals) and ``tau.png`` (Kendall tau with the oracle, beside
the seed-vs-seed noise floor)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..results import atomic_write_text


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def _ci(m: dict, spec=".3f", scale=1.0) -> str:
    v, ci = m.get("value"), m.get("ci95")
    if v is None:
        return "n/a"
    s = _fmt(v * scale, spec)
    return s + (f" [{_fmt(ci[0] * scale, spec)}, {_fmt(ci[1] * scale, spec)}]" if ci else "")


def write_runs_csv(path: Path, done: dict) -> None:
    cols = ["key", "mode", "rate", "replica", "seed", "status", "accuracy", "train_loss", "seconds"]
    rows = sorted(done.values(), key=lambda r: (r["key"], r["mode"], r["rate"], r["replica"]))
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def table(summary: dict) -> list[str]:
    """The arms' table (accuracy in points: percent)."""
    lines = ["| arm | regret (points) | share of headroom | rate distance, median / mean (octaves) | tau with oracle "
             "| tau, top quarter | best in oracle top 3 | off-grid |",
             "|---|---|---|---|---|---|---|---|"]
    for name, m in summary["arms"].items():
        share = m.get("share_of_headroom", {"value": None})
        lines.append(f"| {name} | {_ci(m['regret'], '.2f', 100)} | {_ci(share, '.2f')} | "
                     f"{_fmt(m['rate_distance_median']['value'], '.2f')} / {_fmt(m['rate_distance_mean']['value'], '.2f')} | "
                     f"{_ci(m['tau_oracle'], '.2f')} | {_ci(m['tau_oracle_top_quarter'], '.2f')} | "
                     f"{'yes' if m['best_in_oracle_top3'] else 'no'} | {m['off_grid']} |")
    return lines


def published_table(summary: dict) -> list[str]:
    """Kendall tau of each product-level and trained arm's ranking with the published tables (NB201), beside the
    oracle's own and the seed-vs-seed noise floor."""
    arms = summary["arms"]
    names = sorted({k[len("tau_published_"):] for m in arms.values() for k in m if k.startswith("tau_published_")})
    if not names:
        return []
    rows = [a for a in arms if a.endswith("@product") or arms[a]["level"] == "fixed"]
    lines = ["## Rankings against the published table (tau with each column; 95% bootstrap intervals)", "",
             "| arm | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for a in rows:
        lines.append(f"| {a} | " + " | ".join(_ci(arms[a][f"tau_published_{n}"], ".2f") for n in names) + " |")
    oracle = summary.get("oracle_published_tau")
    if oracle:
        lines.append("| oracle | " + " | ".join(_fmt(oracle.get(n), ".2f") for n in names) + " |")
    lines += ["", f"Noise floor: two seeds of one arm agree with tau {_fmt(summary['noise_floor']['all'], '.2f')}.",
              ""]
    return lines


def render(summary: dict) -> str:
    o = summary["options"]
    floor = summary["noise_floor"]
    head = summary["headroom"] or {}
    lines = [f"# Fairness against the oracle: {summary['space']} ({summary['family']})", "",
             f"{len(summary['candidates'])} candidates ({summary['how_sampled']}), {o['seeds']} seeds, "
             f"{o['epochs']} epoch(s) of {o['dataset']} (limit {o['limit']}) at batch {o['batch_size']}, "
             f"optimizer {o['hook'].get('optimizer', 'sgd')}, init {o['hook'].get('init') or o['hook'].get('preset', 'paper')}. "
             f"Run from commit {summary['run'].get('commit')} (clean: {summary['run'].get('clean')}).", "",
             f"**Headroom** (one shared rate's mean regret against each candidate's own best rate, cross-fitted): "
             f"{_ci(head, '.2f', 100)} points of validation accuracy.", "",
             f"Noise floor (seed-vs-seed Kendall tau at the oracle rate): {_fmt(floor['all'], '.2f')} over all "
             f"candidates, {_fmt(floor['top_quarter'], '.2f')} in the oracle's top quarter. The oracle's winner's "
             f"curse (in-sample minus cross-fitted accuracy): {_fmt(summary['oracle']['winners_curse'] * 100, '.2f')} "
             f"points.", "",
             f"Base rates: the base network's one-epoch maximal rate {summary['constants']['maxlr']:.4g} (level "
             f"`maxlr`, the current calibration); its best rate at this budget {summary['constants']['product']:.4g} "
             f"(level `product`); He's init's one-epoch maximal rate {summary['constants']['he_maxlr']:.4g} (arm "
             f"`he`). The family's current default rule: `{summary['default_rule']}`.", "",
             "Levels: `product` = the rule with the base network's best rate at this budget; `maxlr` = with the "
             "one-epoch maximal rate; `population` = level fitted on random samples of "
             f"{o['population']} candidates, read on the others; `hindsight` = the best level for these candidates "
             "(the rule's shape alone), fitted the same way for every arm, cross-fitted over seeds. "
             "Intervals: 95% bootstrap over candidates.", "", *table(summary), "",
             *published_table(summary),
             "## Decisions (pre-registered rule: regret lower than shared@product by more than 2 paired SE, Holm "
             "across the decisions listed)", "",
             "| rule | shared minus rule regret (points) | SE | z | p (one-sided) | Holm threshold | adopt |",
             "|---|---|---|---|---|---|---|"]
    for d in summary["decisions"]:
        lines.append(f"| {d['name']} | {d['difference'] * 100:+.2f} | {d['se'] * 100:.2f} | {d['z']:.2f} | "
                     f"{d['p']:.3g} | {d['holm_threshold']:.3g} | {'yes' if d['adopt'] else 'no'} |")
    adopted = [d["name"] for d in summary["decisions"] if d["adopt"]]
    lines += ["", "**Verdict:** " + (f"adopt {', '.join(adopted)}." if adopted else
                                     "no rule beats one shared rate here: one shared rate is the default.")]
    if summary.get("objective_decisions"):
        lines += ["", "## The base rate's objective (one shared rate; current: the one-epoch maximal rate, `maxlr`)", "",
                  "| comparison | maxlr regret minus this regret (points) | SE | z | Holm threshold | adopt |",
                  "|---|---|---|---|---|---|"]
        for d in summary["objective_decisions"]:
            lines.append(f"| {d['name']} | {d['difference'] * 100:+.2f} | {d['se'] * 100:.2f} | {d['z']:.2f} | "
                         f"{d['holm_threshold']:.3g} | {'yes' if d['adopt'] else 'no'} |")
    if summary.get("rule_notes"):
        lines += ["", "Rules left out: " + "; ".join(f"{k}: {v}" for k, v in summary["rule_notes"].items())]
    c = summary.get("cost", {})
    lines += ["", f"Cost: {c.get('trainings')} trainings ({c.get('seconds_in_training')} s of training in the "
                  f"last session, wall {c.get('wall_seconds_this_session')} s).", "",
              "Files: `runs.csv` (every training), `summary.json`, `curves.png`, `regret.png`, `tau.png`, `run.json`."]
    return "\n".join(lines) + "\n"


def plots(out: Path, summary: dict, curves) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(curves)
    cols = min(8, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.9 * rows), squeeze=False)
    marks = [a for a in summary["rates"] if a in ("shared", "graph", "segmented", "measured", "shortest-path",
                                                   "readout-limited-sgd", "feature-sgd")]
    colours = dict(zip(marks, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for i, c in enumerate(curves):
        ax = axes[i // cols][i % cols]
        ax.plot(c.log_rates, c.mean() * 100, "k.-", lw=1)
        ax.axvline(summary["oracle"]["log2_rate"][i], color="k", ls=":", lw=1)
        for a in marks:
            ax.axvline(math.log2(summary["rates"][a]["product"][i]), color=colours[a], lw=1, alpha=0.8,
                       label=a if i == 0 else None)
        ax.set_title(c.key[:24], fontsize=6)
        ax.tick_params(labelsize=5)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.legend(loc="lower right", fontsize=6)
    fig.supxlabel("log2 learning rate (dotted: oracle)", fontsize=8)
    fig.supylabel("validation accuracy (%)", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=110)
    plt.close(fig)

    names = list(summary["arms"])
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1))
    for y, name in enumerate(names):
        m = summary["arms"][name]["regret"]
        ci = m["ci95"] or [m["value"], m["value"]]
        ax.errorbar(m["value"] * 100, y, xerr=[[100 * (m["value"] - ci[0])], [100 * (ci[1] - m["value"])]], fmt="o",
                    ms=3, color="C0" if "@product" in name else "C7")
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("regret against the oracle (points)")
    fig.tight_layout()
    fig.savefig(out / "regret.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 0.28 * len(names) + 1))
    for y, name in enumerate(names):
        m = summary["arms"][name]["tau_oracle"]
        if m["value"] is None:
            continue
        ci = m["ci95"] or [m["value"], m["value"]]
        ax.errorbar(m["value"], y, xerr=[[m["value"] - ci[0]], [ci[1] - m["value"]]], fmt="o", ms=3)
    if summary["noise_floor"]["all"] is not None:
        ax.axvline(summary["noise_floor"]["all"], color="r", ls="--", lw=1, label="seed-vs-seed tau (noise floor)")
        ax.legend(fontsize=6)
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xlabel("Kendall tau with the oracle ranking")
    fig.tight_layout()
    fig.savefig(out / "tau.png", dpi=110)
    plt.close(fig)


def write_report(out: Path, summary: dict, curves, done: dict) -> None:
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    write_runs_csv(out / "runs.csv", done)
    atomic_write_text(out / "README.md", render(summary))
    plots(out, summary, curves)
