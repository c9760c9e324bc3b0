"""Start-up stays light: the graph-maths commands import no torch, NNI or sympy (issue 14, "Start-up").

Each check runs in a fresh interpreter, since this test process has long since imported everything. The speed
itself is measured by benchmarks/bench_startup.py, never asserted here.
"""

import json
import subprocess
import sys
import textwrap

import pytest

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
HEAVY = ("torch", "nni", "sympy")

_SCRIPT = textwrap.dedent(
    """
    import contextlib, importlib, io, json, sys

    import nni_archscale

    cli = importlib.import_module("nni_archscale.cli.main")
    results = {}
    for argv in json.loads(sys.argv[1]):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                code = cli.main(argv)
            except SystemExit as exc:  # --help exits through argparse
                code = exc.code
        results[" ".join(argv)] = [code, out.getvalue()]
    json.dump({"results": results, "heavy": [m for m in json.loads(sys.argv[2]) if m in sys.modules]}, sys.stdout)
    """
)


def _run_fresh(*argvs: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(argvs), json.dumps(HEAVY)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_import_and_inspect_of_an_nb201_string_load_no_heavy_library():
    report = _run_fresh(["inspect", NB201], ["inspect", NB201, "--json"])
    code, text = report["results"][f"inspect {NB201}"]
    assert code == 0 and "nb201" in text
    code, text = report["results"][f"inspect {NB201} --json"]
    assert code == 0 and json.loads(text)["num_paths"] == 4
    assert report["heavy"] == []


@pytest.mark.parametrize("argv", [["--help"], ["inspect", "--help"], ["search", "--help"], ["calibrate", "--help"],
                                  ["experiment", "--help"], ["experiment", "nb201", "--help"],
                                  ["experiment", "lr-prediction", "--help"], ["verify", "--help"]],
                         ids=lambda a: " ".join(a))
def test_help_loads_no_heavy_library(argv):
    report = _run_fresh(argv)
    code, text = report["results"][" ".join(argv)]
    assert code == 0 and text.startswith("usage: archscale")
    assert report["heavy"] == []
