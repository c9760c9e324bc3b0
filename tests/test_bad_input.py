"""Every class of malformed input gets a typed error whose message names the offending token or edge."""

import pytest

from nni_archscale import (
    ArchitectureParseError, GraphStructureError, from_json, from_nb201, from_paper_code, from_text,
    parse_architecture,
)
from nni_archscale.errors import ArchScaleError

BAD = [
    # NAS-Bench-201 strings
    (from_nb201, "", ArchitectureParseError, "empty NAS-Bench-201"),
    (from_nb201, "|nor_conv_3x3~0|+|skip_connect~0|", ArchitectureParseError, "group 2 .* 1 operation"),
    (from_nb201, "|conv~0|", ArchitectureParseError, "unknown NAS-Bench-201 operation 'conv'"),
    (from_nb201, "|nor_conv_3x3-0|", ArchitectureParseError, "not of the form op~j"),
    (from_nb201, "|nor_conv_3x3~x|", ArchitectureParseError, "not of the form op~j"),
    (from_nb201, "nor_conv_3x3~0", ArchitectureParseError, "enclosed in '|'"),
    (from_nb201, "|nor_conv_3x3~1|", ArchitectureParseError, "sources must be < 1"),
    (from_nb201, "|none~0|+|none~0|none~0|", ArchitectureParseError, "names source node 0 twice"),
    (from_nb201, "|none~0|+", ArchitectureParseError, "group 2"),
    (from_nb201, 42, ArchitectureParseError, "must be text"),
    # paper codes
    (from_paper_code, "", ArchitectureParseError, "empty paper code"),
    (from_paper_code, "2_2_002", ArchitectureParseError, "group 2 '2' has 1 digit"),
    (from_paper_code, "3_02", ArchitectureParseError, "digit '3'"),
    (from_paper_code, "2__02", ArchitectureParseError, "group 2 '' has 0 digit"),
    (from_paper_code, "2_02_", ArchitectureParseError, "group 3"),
    # text graphs
    (from_text, "0->1:param", ArchitectureParseError, "must start with the node count"),
    (from_text, "n=3; 0->1:conv/3", ArchitectureParseError, "unknown kind 'conv'"),
    (from_text, "n=3; 0-1:param", ArchitectureParseError, "SRC->DST:KIND"),
    (from_text, "n=3; 0->3:param", GraphStructureError, "outside 0..2"),
    (from_text, "n=3; 1->0:param", GraphStructureError, "topological"),
    (from_text, "n=3; 0->1:skip, 0->1:param", GraphStructureError, "appears twice"),
    (from_text, "n=1;", GraphStructureError, "at least 2 nodes"),
    # JSON graphs
    (from_json, "{not json", ArchitectureParseError, "not valid JSON"),
    (from_json, "[1, 2]", ArchitectureParseError, "must be an object"),
    (from_json, '{"edges": []}', ArchitectureParseError, "lacks 'num_nodes'"),
    (from_json, '{"num_nodes": 2, "edges": {}}', ArchitectureParseError, "must be a list"),
    (from_json, '{"num_nodes": 2, "edges": [1]}', ArchitectureParseError, "edge #0 must be an object"),
    (from_json, '{"num_nodes": 2, "edges": [{"src": 0}]}', ArchitectureParseError, "lacks dst, kind"),
    (from_json, '{"num_nodes": 2, "edges": [{"src": 0, "dst": 1, "kind": "param", "w": 1}]}',
     ArchitectureParseError, "unknown field"),
    (from_json, '{"num_nodes": 2, "edges": [{"src": 0, "dst": 1, "kind": "relu"}]}',
     GraphStructureError, "unknown edge kind 'relu'"),
    (from_json, '{"num_nodes": "2", "edges": []}', GraphStructureError, "num_nodes must be an integer"),
    (from_json, '{"format": "other@9", "num_nodes": 2, "edges": []}', ArchitectureParseError, "format 'other@9'"),
    (from_json, '{"num_nodes": 3, "edges": [{"src": 0, "dst": 1, "kind": "skip"}, {"src": 1, "dst": 2, '
                '"kind": "skip"}, {"src": 2, "dst": 1, "kind": "skip"}]}', GraphStructureError, "closes a cycle"),
    # anything
    (parse_architecture, "resnet50", ArchitectureParseError, "cannot read architecture 'resnet50'"),
    (parse_architecture, "missing.json", ArchitectureParseError, "does not exist"),
]


@pytest.mark.parametrize("reader, text, error, message", BAD, ids=[f"{r.__name__}:{t!r}"[:60] for r, t, *_ in BAD])
def test_malformed_input_is_named(reader, text, error, message):
    with pytest.raises(error, match=message) as info:
        reader(text)
    assert isinstance(info.value, ArchScaleError)
    assert "\n" not in str(info.value)
