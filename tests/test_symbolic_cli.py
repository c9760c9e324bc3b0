"""``archscale verify``: PASS/FAIL, exit status, JSON contract, the NAS-Bench-201 enumeration."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import NB201_CSV
from nni_archscale.cli.main import main
from nni_archscale.cli.verify_cmd import EQUIVALENCES, nb201_class_counts
from nni_archscale.core.formats import nb201_cells
from nni_archscale.core.formats import nb201_unique_string
from nni_archscale.core.formats import from_nb201


def run(capsys, *argv):
    status = main(["verify", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_json_contract_for_a_paper_code(capsys):
    status, out, _ = run(capsys, "2_12", "--json")
    record = json.loads(out)
    assert status == 0 and record["status"] == "PASS"
    assert [n["second_moment_ratio"] for n in record["nodes"]] == ["1", "1", "3/2"]
    assert record["num_paths"] == 2 and record["path_moments"] == [2, 2, 4, 8]
    assert set(record["checks"]) == {"path_statistics", "init_variance", "learning_rate"}
    # two paths, k = 0 and k = 2: N copies have 2^N paths and sum k = 2^N * N
    assert record["closed_forms"]["N stacked copies"][:2] == ["2**N", "2**N*N"]


def test_report_for_an_nb201_string(capsys):
    status, out, _ = run(capsys, "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|")
    assert status == 0
    assert "context nb201-cell" in out and "PASS  learning_rate" in out and "z_3:" in out
    assert "NAS-Bench-201 network, N cells per stage" in out


def test_mismatch_exits_one(capsys, monkeypatch):
    import symbolic.maxupdate as mu

    monkeypatch.setattr(mu, "learning_rate", lambda g, base, *a, **k: _Wrong(base))
    status, out, _ = run(capsys, "2_22")
    assert status == 1 and "FAIL  learning_rate" in out


class _Wrong:
    def __init__(self, base):
        self.value = base  # ignores the graph


def test_fail_on_drift(capsys):
    assert run(capsys, "2_12")[0] == 0
    assert run(capsys, "2_12", "--fail-on-drift")[0] == 1


def test_random_graphs_summary_json(capsys):
    status, out, err = run(capsys, "--random", "40", "--seed", "3", "--json", "--init", "release")
    data = json.loads(out)
    assert status == 0 and data["summary"]["graphs"] == 40 and data["summary"]["fail"] == 0
    assert all("second_moment_ratio" in n for g in data["graphs"] for n in g["nodes"])
    assert "verify" in err  # progress bar on stderr


def test_bad_arguments_are_one_line_errors(capsys):
    status, _, err = run(capsys, "2_3")
    assert status == 2 and "paper code" in err
    status, _, err = run(capsys, "--random", "3", "--max-nodes", "1")
    assert status == 2 and "--max-nodes" in err


def test_nb201_enumeration_is_the_whole_space(nb201_graphs):
    cells = list(nb201_cells())
    assert len(cells) == 5**6 == len(set(cells))
    # isomorphism classes (zero edges dropped); the graphs parsed once per session (conftest), from_nb201 otherwise
    assert len({nb201_graphs[c] if c in nb201_graphs else from_nb201(c) for c in cells}) == 14125


def test_nb201_class_counts_name_their_equivalence():
    """Issue 18: 14,125 vs the literature's 6,466 is a difference of equivalence; each count says which."""
    assert nb201_class_counts() == {"cells": 15_625, "canonical_classes": 14_125, "live_edge_classes": 8_765,
                                    "nb201_unique_strings": 6_466}
    assert set(EQUIVALENCES) == {"canonical_classes", "live_edge_classes", "nb201_unique_strings"}
    assert "every active edge's operation" in EQUIVALENCES["canonical_classes"]
    assert "no input-to-output path" in EQUIVALENCES["live_edge_classes"]
    assert "UniqueString" in EQUIVALENCES["nb201_unique_strings"]
    # a skip merges node 1 into the input: a conv from node 0 and one from node 1 read the same (not isomorphic)
    for cell in ("|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|",
                 "|skip_connect~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"):
        assert nb201_unique_string(cell) == "#+#+(0)@nor_conv_3x3"


@pytest.mark.skipif(not NB201_CSV.exists(), reason="published NAS-Bench-201 table not present")
def test_nb201_unique_string_is_the_benchmarks():
    with NB201_CSV.open() as fh:
        rows = list(csv.DictReader(fh))
    assert all(nb201_unique_string(r["ArchitectureString"]) == r["UniqueString"] for r in rows)
    assert len({r["UniqueString"] for r in rows}) == 6_466


def test_many_graph_summary_names_its_equivalence(capsys):
    status, out, _ = run(capsys, "--random", "5", "--json")
    assert status == 0
    assert json.loads(out)["summary"]["equivalences"] == {"canonical_classes": EQUIVALENCES["canonical_classes"]}
    status, out, _ = run(capsys, "--random", "5")
    assert "canonical classes: isomorphism keeping every edge's operation (zero edges dropped)" in out


@pytest.mark.slow
def test_nb201_all_passes(capsys):
    status, out, _ = run(capsys, "--nb201-all")
    assert status == 0 and "15625 graphs (14125 canonical classes)" in out and "0 FAIL" in out
    assert ("classes by equivalence: 14125 canonical classes (isomorphism keeping every edge's operation; zero edges "
            "dropped); 8765 when edges on no input-output path are also dropped; 6466 under NAS-Bench-201's own "
            "UniqueString") in out


def test_symbolic_pool_factor(capsys):
    status, out, _ = run(capsys, "|avg_pool_3x3~0|+|skip_connect~0|skip_connect~1|", "--pool", "symbolic", "--json")
    record = json.loads(out)
    # node 2 = x + P x, pool amplitude sqrt(rho_3): (1 + sqrt(rho_3))^2; the sign of 1 - rho_3 stays open
    assert status == 0 and record["nodes"][1]["second_moment_ratio"] == "rho_3"
    assert record["nodes"][1]["second_moment_ratio_float"] is None
    assert record["restorable"] is None and "rho_3" in record["restorability_undecided"]
