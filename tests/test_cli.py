"""The `archscale inspect` contract: JSON fields, human report, one-line errors with exit status 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nni_archscale.core.networks import CellNetwork
from nni_archscale.cli import main
from nni_archscale.rules import registry

ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def run_json(capsys, *argv):
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_contract(capsys):
    rec = run_json(capsys, ALL_CONV3, "--init", "release", "--base-lr", "0.46")
    assert rec["num_paths"] == 4 and isinstance(rec["num_paths"], int)
    assert rec["path_moments"] == [4, 8, 18, 44]
    assert rec["in_degree"] == [0, 1, 2, 3]
    assert round(rec["learning_rate"], 4) == 0.0410
    assert len(rec["init_variance"]) == 6
    first = rec["init_variance"][0]
    assert first["edge"] == "0->1" and first["variance"] == pytest.approx(2 / (16 * 9))  # source in-degree 1


def test_json_paper_code_and_kernel(capsys):
    rec = run_json(capsys, "2_02_002", "--kernel-size", "5")
    assert rec["path_moments"] == [1, 3, 9, 27]
    assert rec["learning_rate"] == pytest.approx(27 ** -0.5 * 3 / 5)
    assert all(item["kernel_size"] == 5 for item in rec["init_variance"])


def test_json_graph_file(tmp_path, capsys):
    path = tmp_path / "cell.json"
    path.write_text(json.dumps({"num_nodes": 3, "edges": [
        {"src": 0, "dst": 1, "kind": "param"}, {"src": 1, "dst": 2, "kind": "param"},
        {"src": 0, "dst": 2, "kind": "skip"}]}))
    rec = run_json(capsys, str(path), "--base-lr", "0.2")
    assert rec["num_paths"] == 2 and rec["path_moments"] == [2, 2, 4, 8]
    assert rec["learning_rate"] == pytest.approx(0.2 / 8**0.5)
    assert [i["variance"] for i in rec["init_variance"]] == pytest.approx([2 / 16, 2 / (2 * 16)])


def test_per_edge_rates(capsys):
    # paths 0->2 (k=1) and 0->1->2 (k=2): global rate (1 + 8)^-1/2
    rec = run_json(capsys, "2_22", "--per-edge")
    rates = {i["edge"]: i["learning_rate"] for i in rec["init_variance"]}
    assert rec["learning_rate"] == pytest.approx(1 / 3)
    assert rates["0->2"] == pytest.approx(1.0)
    assert rates["0->1"] == rates["1->2"] == pytest.approx(8 ** -0.5)


def test_human_report_shows_formulas(capsys):
    assert main(["inspect", ALL_CONV3]) == 0
    out = capsys.readouterr().out
    assert "input-output paths P = 4" in out
    assert "2 / (d_in(3) * fan_in) = 2/(3*fan_in)" in out
    assert "sqrt(1 / 126)" in out and "learning rate = 0.0409801" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "|conv~0|"], "unknown NAS-Bench-201 operation 'conv'"),
        (["inspect", "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|"], "no input-to-output path"),
        (["inspect", "2_02", "--base-lr", "-3"], "expected a positive finite number"),
        (["inspect", "2_02", "--kernel-size", "x"], "expected a positive integer"),
        (["inspect", "2_02", "--init", "nope"], "invalid choice: 'nope'"),
        (["inspect"], "inspect needs ARCH"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        # issue 18
        (["inspect", "n=99999999999999; 0->1:param"],
         "archscale: error: a graph may have at most 100,000 nodes (nni_archscale.core.graph.MAX_NODES), got "
         "99,999,999,999,999; check the node count, or describe one cell: stacked cells compose in series "
         "(nni_archscale.core.paths)\n"),
        (["inspect", ""], "archscale: error: the architecture is empty; give a NAS-Bench-201 string "
         "(|nor_conv_3x3~0|+|...|), a paper code (2_02_002), a text graph (n=3; 0->1:param/1, 1->2:skip) or a path "
         "to a JSON graph\n"),
        (["inspect", "n=3; 0->1:param/999999999999999999999, 1->2:param"],
         "archscale: error: edge 0->1: kernel_size 999999999999999999999 exceeds the maximum 1,024 "
         "(nni_archscale.core.graph.MAX_KERNEL_SIZE); give the side q of the square kernel or pooling window, e.g. 3 for "
         "3x3\n"),
        (["inspect", "x" * 80_000], "cannot read architecture '" + "x" * 60 + "'... (80,000 characters): give"),
        (["inspect", "2_02", "--base-lr", "-inf"], "argument --base-lr: expected a positive finite number, got '-inf'"),
        (["inspect", "2_02", "--base-lr", "-1e-3"], "--base-lr: expected a positive finite number, got '-1e-3'"),
        (["inspect", "2_02", "--base-lr", "-nan"], "--base-lr: expected a positive finite number, got '-nan'"),
        (["inspect", "2_02", "--base-lr", "-Infinity"], "--base-lr: expected a positive finite number, got '-Inf"),
        (["inspect", "2_02", "--width", "-3"], "--width: expected a positive integer, got '-3'"),
        (["inspect", "2_02", "--base-lr", "y" * 80_000], "expected a positive number, got '" + "y" * 60 + "'... (80,0"),
    ],
)
def test_errors_are_one_line_with_status_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert len(err) < 400


def test_bad_json_graph_files_are_one_line_errors(tmp_path, capsys):
    """Issue 18: a JSON graph file that is not UTF-8 gave a UnicodeDecodeError traceback, 'num_nodes': 10**12 a
    MemoryError."""
    latin1 = tmp_path / "latin1.json"
    latin1.write_bytes(b'{"num_nodes": 2, "edges": [], "note": "caf\xe9"}')
    big = tmp_path / "big.json"
    big.write_text('{"num_nodes": 1000000000000, "edges": [{"src": 0, "dst": 1, "kind": "param"}]}')
    for path, message in [
        (latin1, f"archscale: error: JSON graph file {str(latin1)!r} is not UTF-8 text (invalid continuation byte: "
                 "byte 0xe9 at offset 42); save it as UTF-8\n"),
        (big, "archscale: error: a graph may have at most 100,000 nodes (nni_archscale.core.graph.MAX_NODES), got "
              "1,000,000,000,000; "),
    ]:
        assert main(["inspect", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1


def test_negative_looking_values_still_reach_options_that_take_them(capsys):
    """The option parser reads '-1e-3' or '-inf' after an option as its value (issue 18), and nothing else changes:
    a positive value, the --opt=VALUE form, and an unknown option keep their meaning."""
    from nni_archscale.cli.main import NUMBER_LIKE

    assert all(NUMBER_LIKE.match(v) for v in ("-inf", "-INF", "-infinity", "-nan", "-1", "-1e-3", "-.5", "-0"))
    assert not any(NUMBER_LIKE.match(v) for v in ("--base-lr", "-x", "-information", "-nano", "--1"))
    assert run_json(capsys, "2_02", "--base-lr", "0.5")["learning_rate"] == pytest.approx(0.5 / 8**0.5)
    assert main(["inspect", "2_02", "--base-lr=-inf"]) == 2
    assert "got '-inf'" in capsys.readouterr().err
    assert main(["inspect", "2_02", "-x"]) == 2
    assert "unrecognized arguments: -x" in capsys.readouterr().err


def test_console_script_and_debug_traceback():
    script = Path(sys.executable).with_name("archscale")  # the venv's console script, activated or not
    ok = subprocess.run([str(script), "inspect", "2_02_002", "--json"], capture_output=True, text=True)
    assert ok.returncode == 0 and json.loads(ok.stdout)["num_paths"] == 1
    bad = subprocess.run([sys.executable, "-m", "nni_archscale", "--debug", "inspect", "|x~0|"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" in bad.stderr and "ArchitectureParseError" in bad.stderr


def test_network_mode_uses_the_evidence_default_and_exact_scalars(capsys):
    from nni_archscale.rules.defaults import DEFAULT_RULES
    from nni_archscale.rules.first_step import rule_multiplier

    rec = run_json(capsys, "2_12_112_1112", "--network", "mlp", "--init", "exact", "--optimizer", "adam",
                   "--base-lr", "0.01")
    assert rec["rate_rule"] == DEFAULT_RULES[("exact", "adam")]
    assert rec["learning_rate"] == pytest.approx(
        0.01 * rule_multiplier(rec["rate_rule"], CellNetwork(from_code("2_12_112_1112"), 196, 128, 10), "exact",
                               "adam"))
    assert rec["second_moment_ratio"] == pytest.approx([1.0] * 5)
    assert rec["node_scales"][2] < 1
    paper = run_json(capsys, "2_12_112_1112", "--network", "mlp", "--rate-rule", "graph", "--base-lr", "0.35")
    # paths of 2_12_112_1112 have k = 0, 0, 1, 1, 2, 2, 2, 4 parameterised edges; L = 1 + k; base L = 2
    assert paper["learning_rate"] == pytest.approx(0.35 * (8 / (1 + 1 + 8 + 8 + 27 + 27 + 27 + 125)) ** 0.5)


def from_code(code):
    from nni_archscale import from_paper_code

    return from_paper_code(code)


def test_training_flags_need_network(capsys):
    assert main(["inspect", "2_02", "--optimizer", "adam"]) == 2
    assert "--optimizer needs --network" in capsys.readouterr().err


@pytest.mark.parametrize("context", ["mlp-cell", "cnn-cell"])
def test_verify_has_a_default_base_rate_for_every_context(capsys, context):
    assert main(["verify", "2_02_002", "--context", context]) == 0
    assert "PASS" in capsys.readouterr().out


def test_cnn_cells_default_to_one_shared_rate(capsys):
    rec = run_json(capsys, "2_12_112_1112", "--network", "cnn", "--kernel-size", "5", "--init", "exact")
    assert rec["rate_rule"] == registry.SHARED.name and rec["learning_rate"] == pytest.approx(1.0)


def test_network_mode_shows_the_kernel_rules_factors(capsys):
    rec = run_json(capsys, "2_12_112_1112", "--network", "mlp", "--init", "paper", "--optimizer", "sgd",
                   "--rate-rule", "feature", "--base-lr", "0.3")
    t = rec["rule_terms"]
    assert t["output_second_moment"] > 5 * t["base_output_second_moment"]  # the paper's init lets it grow
    factor = (t["output_second_moment"] / t["base_output_second_moment"]) ** 0.5 * t["base_hidden_kernel"] / t[
        "hidden_kernel"]
    assert rec["learning_rate"] == pytest.approx(0.3 * factor)
    assert "rule_terms" not in run_json(capsys, "2_12_112_1112", "--network", "mlp", "--rate-rule", "shared")


@pytest.mark.parametrize("variant", ["second-step-sgd", "readout-capped-sgd", "centered-sgd", "path-mean-depth"])
def test_research_variants_are_not_offered_by_inspect(variant, capsys):
    """The rules that lost their tests live in the experiments package (scored by lr-prediction), not in the
    product's surface."""
    assert main(["inspect", "2_12_112_1112", "--network", "mlp", "--rate-rule", variant, "--base-lr", "0.3"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_network_mode_init_and_rate_rule_are_two_choices(capsys):
    """The release's init with auto: eq. 8/9 (no measured default), counted as the released code counts; the
    same as naming the rule; the default for the paper's init is the measured one."""
    from nni_archscale.rules.defaults import DEFAULT_RULES
    from nni_archscale.rules.first_step import rule_multiplier

    rec = run_json(capsys, "2_12_112_1112", "--network", "mlp", "--init", "release", "--base-lr", "0.1")
    assert rec["rate_rule"] == registry.GRAPH.name and rec["init"] == "release"
    release = rule_multiplier("release", CellNetwork(from_code("2_12_112_1112"), 196, 128, 10))
    assert rec["learning_rate"] == pytest.approx(0.1 * release)
    named = run_json(capsys, "2_12_112_1112", "--network", "mlp", "--init", "release", "--rate-rule", "graph",
                     "--base-lr", "0.1")
    assert named["learning_rate"] == pytest.approx(rec["learning_rate"])
    default = run_json(capsys, "2_12_112_1112", "--network", "mlp", "--base-lr", "0.1")
    assert default["rate_rule"] == DEFAULT_RULES[("paper", "sgd")]
    assert default["learning_rate"] != pytest.approx(rec["learning_rate"])


def test_rules_beyond_the_paper_need_network(capsys):
    assert main(["inspect", "2_12", "--rate-rule", "feature-sgd"]) == 2
    assert "add --network mlp|cnn" in capsys.readouterr().err
    assert main(["inspect", "2_12", "--init", "exact"]) == 2
    assert "add --network" in capsys.readouterr().err
    shared = run_json(capsys, "2_12_112_1112", "--rate-rule", "shared", "--base-lr", "0.2")
    assert shared["learning_rate"] == 0.2 and shared["rate_rule"] == registry.SHARED.name


def test_network_mode_gives_the_readout_limited_rate_with_its_two_limits(capsys):
    from nni_archscale.rules.first_step import readout_limited_rate

    heavy = "1_12_112_1211"  # skip-heavy: under the paper's init its output's variance is large
    rec = run_json(capsys, heavy, "--network", "mlp", "--rate-rule", "readout-limited-sgd", "--width", "256",
                   "--base-lr", "0.3")
    t = rec["rule_terms"]
    assert rec["learning_rate"] == pytest.approx(min(t["second_step_rate"], t["readout_cap"]))
    assert rec["learning_rate"] == pytest.approx(
        readout_limited_rate(0.3, CellNetwork(from_code(heavy), 196, 256, 10), "paper", 32))
    assert t["readout_cap"] < t["second_step_rate"] and t["batch_size"] == 32
    wider = run_json(capsys, heavy, "--network", "mlp", "--rate-rule", "readout-limited-sgd", "--width", "256",
                     "--base-lr", "0.3", "--batch-size", "128")
    assert wider["rule_terms"]["readout_cap"] == pytest.approx(4 * t["readout_cap"])
    assert main(["inspect", heavy, "--network", "mlp", "--rate-rule", "readout-limited-sgd", "--width", "256",
                 "--base-lr", "0.3"]) == 0
    assert "the readout cap binds" in capsys.readouterr().out
    # an absolute rate needs the calibrated base rate, and is an SGD rule for MLP cells
    assert main(["inspect", heavy, "--network", "mlp", "--rate-rule", "readout-limited-sgd"]) == 2
    assert "pass --base-lr" in capsys.readouterr().err
    # exact-init SGD's default is that rule; paper-init SGD's is one shared rate (reports/fairness/dagcell-e2)
    assert main(["inspect", heavy, "--network", "mlp", "--init", "exact"]) == 2
    assert "pass --base-lr" in capsys.readouterr().err
    for extra in (["--optimizer", "adam"], ["--network", "cnn"]):
        args = ["inspect", heavy, "--network", "mlp", "--rate-rule", "readout-limited-sgd", "--base-lr", "0.3", *extra]
        assert main(args) == 2
        assert "is an SGD rule for MLP cells" in capsys.readouterr().err
    assert main(["inspect", heavy, "--batch-size", "64"]) == 2
    assert "--batch-size needs --network" in capsys.readouterr().err
