"""Markdown reports of the experiments, with the paper's own figures beside ours."""

from __future__ import annotations

from pathlib import Path

from ..results import atomic_write_text

#: Pearson r of log predicted vs log measured maximal rates, as published (paper §4, App. D, App. E.2).
PAPER_R = {
    ("mlp-topology", "relu"): 0.838,
    ("cnn-kernel", "relu"): 0.856,
    ("mlp-depth", "relu"): 0.962,
    ("mlp-topology", "gelu"): 0.680,
    ("cnn-kernel", "gelu"): 0.949,
    ("mlp-depth", "gelu"): 0.920,
}

RULE_TEXT = {
    "paper": "eq. 8/9: base x sqrt(S_base / sum_p L_p^3) x q_base/q, L_p = 1 + k_p (ReLUs on the path)",
    "release": "the released code: L_p = k_p + 3, 3/q for CNNs",
    "standard": "one rate for every network (the base network's)",
    "moment-sgd": "1 / Theta, Theta = sum (df/dtheta)^2 from exact moments (SGD first step)",
    "moment-adam": "1 / Theta_1, Theta_1 = sum |df/dtheta| from exact moments (Adam first step)",
    "moment": "moment-sgd for SGD, moment-adam for Adam",
    "centered-sgd": "1 / Theta with centred layer inputs (SGD first step, balanced batches)",
    "centered-adam": "1 / Theta_1 with centred layer inputs (Adam first step)",
    "depth-centered-sgd": "centered-sgd x (mean over paths of (k_p + 3)^3)^(-1/2)",
    "path-mean-depth": "(mean over paths of (k_p + 3)^3)^(-1/2): eq. 8's depth term, averaged over paths, no kernel",
    "feature-sgd": "sqrt(E[z_out^2]) / Theta_h: the hidden (stem and cell) centred SGD kernel, features moved Theta(1)",
    "feature-adam": "sqrt(E[z_out^2]) / Theta_1,h: the same with the hidden centred Adam kernel",
    "second-step-sgd": "(Theta_h x mean over paths of (k_p + 3))^(-1/2): the second-step condition",
    "readout-capped-sgd": "second-step-sgd capped by the readout's ratio Var_base(z_out) / Var(z_out)",
    "readout-limited-sgd": "min(second-step-sgd's rate, an absolute readout limit eta n Var(z_out) / B <= 2^6.5 / 32) "
                           "(SGD default)",
    "mup": "muP (the mup package, App. E.3's setup): every network trained the muP way at the base network's rate",
}


def _fmt(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def write_lr_report(out_dir: Path, summary: dict) -> str:
    cfg = summary["config"]
    lines = [
        f"# Maximal learning-rate prediction: {cfg['family']} ({cfg['activation']}, {cfg['convention']} edges)",
        "",
        "Protocol (paper §4): for every network, train one epoch at every rate of a quarter-octave grid and take,"
        " per seed, the rate with the lowest final training loss (its maximal learning rate); predict every network's"
        " rate from the base network's measured rate (cell `0_00_000_2000`, one Linear/Conv edge) times each rule's"
        " multiplier. The only fitted number is the base network's rate. Metrics: Pearson r of log predicted vs log"
        " measured, and the mean absolute error in octaves (log2).",
        "",
        f"Setup: data `{cfg['data']}`, width {cfg['width']}, {len(summary['pairs'][next(iter(summary['pairs']))]['measured'])}"
        f" networks plus the base, {cfg['seeds']} seeds, batch {cfg['batch_size']}, {cfg['epochs']} epoch, SGD grid"
        f" {cfg['sgd_grid'][0]:.3g}..{cfg['sgd_grid'][1]:.3g}, Adam grid {cfg['adam_grid'][0]:.3g}..{cfg['adam_grid'][1]:.3g},"
        f" cross-entropy, no momentum or weight decay; {summary.get('seconds', 0):.0f} s on this machine.",
        "",
    ]
    paper_r = PAPER_R.get((cfg["family"], cfg["activation"]))
    if paper_r is not None:
        lines += [f"The paper reports r = {paper_r} for this family (CIFAR-10, its `paper` rule and init).", ""]
    for pair, data in summary["pairs"].items():
        lines += [
            f"## init {pair.split('/')[0]}, optimizer {pair.split('/')[1]}",
            "",
            f"Base network's maximal rate: {data['base_max_lr']:.4g}. Seed-to-seed r (noise floor): "
            f"{_fmt(data.get('seed_to_seed_r'))}, seed-to-seed mean difference "
            f"{_fmt(data.get('seed_to_seed_mean_abs_octaves'))} octaves. Networks whose best rate hit the grid's edge: "
            f"{data['grid_edge_hits']}. The best constant (fitted on the targets, for reference only) would err by "
            f"{data['oracle_constant_mean_abs_octaves']:.2f} octaves.",
            "",
            "| rule | r (log-log) | mean abs error (octaves) | mean signed error (octaves) | what it is |",
            "|---|---|---|---|---|",
        ]
        for rule, st in data["rules"].items():
            lines.append(f"| `{rule}` | {_fmt(st['pearson_r_log'])} | {st['mean_abs_octaves']:.2f} | "
                         f"{st['mean_signed_octaves']:+.2f} | {RULE_TEXT.get(rule, '')} |")
        lines.append("")
    lines += ["![predicted vs measured](scatter.png)", "",
              "Files: `runs.csv` (every rate, seed and final loss), `predictions.csv`, `summary.json`.", ""]
    text = "\n".join(lines)
    atomic_write_text(out_dir / "README.md", text)
    return text
