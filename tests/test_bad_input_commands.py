"""Issue 25's second pass, the parts outside ``archscale search``: the version, ``python -m symbolic``, graphs
too small or too large, every option's help, experiments that never write over committed reports, examples that
check their arguments (each test names the behaviour it holds)."""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nni_archscale import __version__
from nni_archscale.cli.main import build_parser, main
from nni_archscale.errors import ArchitectureParseError, InputFileError, RateUnderflowError
from nni_archscale.core.files import output_directory
from nni_archscale.core.formats import parse_architecture
from nni_archscale.rules.paper import learning_rate

ROOT = Path(__file__).resolve().parents[1]


def ladder(n: int) -> str:
    """``n`` nodes, every node joined to the next two by parameterised edges: Fibonacci(n)-many paths."""
    edges = [f"{i}->{i + 1}:param" for i in range(n - 1)] + [f"{i}->{i + 2}:param" for i in range(n - 2)]
    return f"n={n}; " + ", ".join(edges)


def test_version_is_printed(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"archscale {__version__}"


def test_python_m_symbolic_is_the_verifier():
    shown = subprocess.run([sys.executable, "-m", "symbolic"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: archscale verify")
    checked = subprocess.run([sys.executable, "-m", "symbolic", "n=3; 0->1:param, 1->2:skip"], capture_output=True,
                             text=True, cwd=ROOT, timeout=120)
    assert checked.returncode == 0, checked.stderr
    assert "sum_p" in checked.stdout


@pytest.mark.parametrize("text, message", [
    ("n=1", r"^text graph 'n=1' has 1 node\(s\); a graph needs at least 2 nodes"),
    ("n=0", r"^text graph 'n=0' has 0 node\(s\); a graph needs at least 2 nodes"),
    ("n=2", r"^text graph 'n=2' lists no edges; add them after a ';'"),
])
def test_a_text_graph_without_edges_says_what_is_missing(text, message):
    with pytest.raises(ArchitectureParseError, match=message):
        parse_architecture(text)


def test_a_path_sum_past_float64_gives_its_tiny_rate_in_logs():
    graph, _ = parse_architecture(ladder(2000))  # about 10^418 paths: sum_p L_p^3 is 10^427
    rate = learning_rate(graph, 1.0)
    assert 0 < rate.value < 1e-200 and math.isfinite(rate.value)
    assert math.isclose(math.log(rate.value), -0.5 * math.log(rate.depth_power_sum), rel_tol=1e-12)
    assert "10^427" in rate.formula  # the path sum as a power of ten, not 428 digits


def test_a_rate_below_float64_is_refused_with_the_reason():
    graph, _ = parse_architecture(ladder(3000))
    with pytest.raises(RateUnderflowError, match=r"learning rate of 10\^-318.*below the smallest float64"):
        learning_rate(graph, 1.0)


def test_symbolic_check_of_a_huge_path_sum_does_not_overflow():
    from symbolic.maxupdate import max_update

    graph, _ = parse_architecture(ladder(2000))
    assert max_update(graph, "paper", "dag").matches


def test_verify_refuses_a_graph_it_cannot_derive_in_reasonable_time(capsys):
    assert main(["verify", ladder(2000)]) == 2
    assert "ARCH has 2,000 nodes; verify derives every moment symbolically" in capsys.readouterr().err


def _options_without_help(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                missing += _options_without_help(child, f"{prefix} {name}")
        elif not action.help and action.dest != "help" and action.option_strings:
            missing.append(f"{prefix} {action.option_strings[0]}")
    return missing


def test_every_option_of_every_command_has_help():
    assert _options_without_help(build_parser(), "archscale") == []


def test_help_states_the_defaults_the_commands_use():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    inspect_help = sub.choices["inspect"].format_help()
    assert "with --space 0.1" in " ".join(inspect_help.split())
    calibrate = sub.choices["calibrate"]
    assert "mnist" in next(a for a in calibrate._actions if a.dest == "dataset").choices
    assert "%%" not in calibrate.format_help() and "%%" not in sub.choices["search"].format_help()


@pytest.mark.parametrize("text, kwargs, message", [
    ("", {}, r"--out must name a folder of its own for the results, got an empty path"),
    (".", {}, r"--out must name a folder of its own .* the current directory itself"),
])
def test_output_directory_refuses_the_current_directory(text, kwargs, message):
    with pytest.raises(InputFileError, match=message):
        output_directory(text, **kwargs)


def test_output_directory_refuses_a_folder_holding_results_without_force(tmp_path):
    (tmp_path / "README.md").write_text("a committed report\n")
    with pytest.raises(InputFileError, match=r"already holds results \(README.md\); pass --force"):
        output_directory(tmp_path)
    assert output_directory(tmp_path, force=True) == tmp_path
    assert output_directory(tmp_path, resume=True) == tmp_path
    (tmp_path / "file").write_text("")
    with pytest.raises(InputFileError, match="exists and is not a folder"):
        output_directory(tmp_path / "file")
    assert output_directory(tmp_path / "new") == tmp_path / "new"


def test_experiments_write_under_out_by_default_and_never_over_a_report(tmp_path, capsys):
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    exp = next(a for a in sub.choices["experiment"]._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in exp.choices.items():
        out = next(a for a in parser._actions if a.dest == "out")
        assert out.default is None or out.default.startswith("out/experiments/"), (name, out.default)
        assert any(a.dest == "force" for a in parser._actions), name
    report = tmp_path / "report"
    report.mkdir()
    (report / "README.md").write_text("committed\n")
    assert main(["experiment", "lr-prediction", "--cells", "1", "--seeds", "1", "--out", str(report)]) == 2
    assert "already holds results (README.md); pass --force" in capsys.readouterr().err
    assert (report / "README.md").read_text() == "committed\n"


def test_coord_check_example_writes_outside_the_committed_figure():
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import coord_check
    finally:
        sys.path.remove(str(ROOT / "examples"))
    assert coord_check.OUTPUT == ROOT / "out" / "examples" / "coord_check.png"


@pytest.mark.parametrize("argv, message", [
    (["skip", "--strategy", "tpe"], "NNI's TPE samples LayerChoice only and refuses the skip space"),
    (["chain", "--trials", "0"], "argument --trials: expected a positive integer, got '0'"),
])
def test_custom_space_example_checks_its_arguments(argv, message):
    done = subprocess.run([sys.executable, "examples/custom_space.py", *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 2 and message in done.stderr


def test_inspect_space_names_a_rejected_sample_and_the_fix(capsys):
    assert main(["inspect", "--space", "nb101", "--seed", "3"]) == 2
    err = capsys.readouterr().err
    assert "NNI rejects the sample" in err and "try another --seed, e.g. --seed 4" in err


@pytest.mark.slow
def test_inspect_space_gives_the_same_rates_every_run(capsys):
    outputs = []
    for _ in range(2):
        assert main(["inspect", "--space", "nb201", "--seed", "0"]) == 0
        outputs.append(re.sub(r"hook [0-9.]+ ms", "hook (time) ms", capsys.readouterr().out))  # the hook's own time
    assert outputs[0] == outputs[1] and "measured" in outputs[0]
