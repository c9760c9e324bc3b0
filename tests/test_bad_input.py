"""Every class of malformed input gets a typed error whose message names the offending token or edge."""

import os
import re

import pytest
from named_pipes import make_fifo, unblocked

from nni_archscale import (
    ArchGraph, ArchitectureParseError, Edge, GraphStructureError, RuleError, from_json, from_nb201, from_paper_code,
    from_text, learning_rate, parse_architecture, scale,
)
from nni_archscale.errors import ArchScaleError, InputFileError, shorten
from nni_archscale.core.files import read_regular_file

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
    # issue 18: sizes past the documented limits (MemoryError or a rate of 1e-21 before)
    (from_text, "n=99999999999999; 0->1:param", GraphStructureError,
     r"^a graph may have at most 100,000 nodes \(nni_archscale.core.graph.MAX_NODES\), got 99,999,999,999,999; check "
     r"the node count, or describe one cell: stacked cells compose in series \(nni_archscale.core.paths\)$"),
    (from_text, "n=" + "9" * 5000 + "; 0->1:param", GraphStructureError,
     r"at most 100,000 nodes .* got '9{60}'\.\.\. \(5,000 characters\)"),
    (from_json, '{"num_nodes": 1000000000000, "edges": []}', GraphStructureError,
     r"at most 100,000 nodes \(nni_archscale.core.graph.MAX_NODES\), got 1,000,000,000,000"),
    (from_json, '{"num_nodes": 2, "edges": [' + ", ".join(["{}"] * 500_001) + "]}", GraphStructureError,
     r"^a graph may have at most 500,000 edges \(nni_archscale.core.graph.MAX_EDGES\), got 500,001; describe one cell"),
    (from_text, "n=3; 0->1:param/999999999999999999999, 1->2:param", GraphStructureError,
     r"^edge 0->1: kernel_size 999999999999999999999 exceeds the maximum 1,024 "
     r"\(nni_archscale.core.graph.MAX_KERNEL_SIZE\); give the side q of the square kernel or pooling window, "
     r"e.g. 3 for 3x3$"),
    (from_json, '{"num_nodes": 2, "edges": [{"src": 0, "dst": 1, "kind": "pool", "kernel_size": 1025}]}',
     GraphStructureError, r"edge 0->1: kernel_size 1025 exceeds the maximum 1,024"),
    (from_text, "n=3; 0->" + "9" * 100 + ":param", GraphStructureError,
     r"node '9{60}'\.\.\. \(100 characters\) is beyond any graph's nodes \(at most 100,000"),
    # issue 18: JSON that the json module refuses in other ways than JSONDecodeError
    (from_json, "[" * 100_000, ArchitectureParseError, r"^the JSON graph is nested too deeply to read; a graph is one"),
    (from_json, '{"num_nodes": 1' + "0" * 5000 + ', "edges": []}', ArchitectureParseError,
     r"^the JSON graph holds a number too long to read \('Exceeds the limit \(4300 digits\).*; check its numbers: "
     r"a graph has at most 100,000 nodes$"),
    (from_json, b'{"num_nodes": 2, "edges": []\xff}', ArchitectureParseError, r"^the JSON graph is not UTF-8 text"),
    (from_nb201, "|nor_conv_3x3~\u00b2|", ArchitectureParseError, "not of the form op~j"),  # '²'.isdigit()
    # issue 18: an empty architecture says so, and what is accepted
    (parse_architecture, "", ArchitectureParseError,
     r"^the architecture is empty; give a NAS-Bench-201 string \(\|nor_conv_3x3~0\|\+\|\.\.\.\|\), a paper code "
     r"\(2_02_002\), a text graph \(n=3; 0->1:param/1, 1->2:skip\) or a path to a JSON graph$"),
    (parse_architecture, "  \t ", ArchitectureParseError, "^the architecture is empty"),
    (parse_architecture, None, ArchitectureParseError, "^an architecture must be given as text, got NoneType; give"),
    # issue 18: a long input is echoed as its offending token, cut to 60 characters and its length
    (parse_architecture, "x" * 80_000, ArchitectureParseError, r"^cannot read architecture 'x{60}'\.\.\. "
     r"\(80,000 characters\): give a NAS-Bench-201 string"),
    (parse_architecture, "/" + "d" * 5000 + ".json", ArchitectureParseError,
     r"JSON graph file '/d{199}'\.\.\. \(5,006 characters\)"),
    (from_text, "n=3; " + "x" * 80_000, ArchitectureParseError,
     r"^text graph edge 'x{60}'\.\.\. \(80,000 characters\) is not of the form SRC->DST:KIND"),
    (from_text, "n=3; 0->1:" + "q" * 80_000, ArchitectureParseError,
     r"unknown kind 'q{60}'\.\.\. \(80,000 characters\)"),
    (from_text, "N" * 80_000 + "; 0->1:param", ArchitectureParseError,
     r"^text graph 'N{60}'\.\.\. \(80,000 characters\) must start with the node count"),
    (from_paper_code, "2" * 80_000, ArchitectureParseError,
     r"^paper code group 1 '2{60}'\.\.\. \(80,000 characters\) has 80,000 digit\(s\)"),
    (from_paper_code, "2_0" + "7" * 80_000, ArchitectureParseError, r"^paper code group 2 '07{59}'\.\.\. \(80,001"),
    (from_nb201, "|" + "a" * 80_000 + "~0|", ArchitectureParseError,
     r"^unknown NAS-Bench-201 operation 'a{60}'\.\.\. \(80,000 characters\) in token 'a{60}'\.\.\. \(80,002"),
    (from_nb201, "|none~0|" * 20_000, ArchitectureParseError, r"^NAS-Bench-201 group 1 '\|none~0\|"),
    (from_json, '{"num_nodes": 2, "edges": [{"src": 0, "dst": 1, "kind": "' + "z" * 80_000 + '"}]}',
     GraphStructureError, r"^edge 0->1: unknown edge kind 'z{60}'\.\.\. \(80,000 characters\); use one of"),
    (from_json, '{"num_nodes": 2, "edges": [{"src": "' + "s" * 80_000 + '", "dst": 1, "kind": "skip"}]}',
     GraphStructureError, r"^edge 's{60}'\.\.\. \(80,000 characters\)->1: src must be an integer, got 's{60}'"),
    (from_json, '{"num_nodes": 2, "edges": [[' + "1, " * 30_000 + "1]]}", ArchitectureParseError,
     r"^JSON graph edge #0 must be an object, got \[1, 1, .*\.\.\. \(90,\d{3} characters\)$"),
    (from_json, '{"format": "' + "f" * 80_000 + '", "num_nodes": 2, "edges": []}', ArchitectureParseError,
     r"^JSON graph has format 'f{60}'\.\.\. \(80,000 characters\); this version reads"),
]


@pytest.mark.parametrize("reader, text, error, message", BAD, ids=[f"{r.__name__}:{t!r}"[:60] for r, t, *_ in BAD])
def test_malformed_input_is_named(reader, text, error, message):
    with pytest.raises(error, match=message) as info:
        reader(text)
    assert isinstance(info.value, ArchScaleError)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 400  # echoes are cut (issue 18: an 80,000-character input came back whole)


def test_shorten_cuts_long_echoes_and_names_the_length():
    assert shorten("abc") == "'abc'"
    assert shorten("x" * 80_000) == "'" + "x" * 60 + "'... (80,000 characters)"
    assert shorten(list(range(100)), 20) == "[0, 1, 2, 3, 4, 5, 6... (390 characters)"
    assert shorten(10**5000) == "an integer of about 5,000 digits"  # repr() would refuse past 4,300 digits


def test_json_graph_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('{"num_nodes": 2, "edges": [], "note": "caf\u00e9"}'.encode("latin-1"))
    with pytest.raises(ArchitectureParseError) as info:
        parse_architecture(str(path))
    assert str(info.value) == (f"JSON graph file {str(path)!r} is not UTF-8 text (invalid continuation byte: byte "
                               "0xe9 at offset 42); save it as UTF-8")


def test_json_graph_file_errors_name_the_file_and_a_bom_is_read(tmp_path):
    big = tmp_path / "big.json"
    big.write_text('{"num_nodes": 1000000000000, "edges": []}')
    with pytest.raises(GraphStructureError, match=r"at most 100,000 nodes .* got 1,000,000,000,000"):
        parse_architecture(str(big))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ArchitectureParseError, match=f"^JSON graph file {str(broken)!r}: not valid JSON"):
        parse_architecture(str(broken))
    bom = tmp_path / "bom.json"
    bom.write_bytes(b'\xef\xbb\xbf{"num_nodes": 2, "edges": [{"src": 0, "dst": 1, "kind": "param"}]}')
    assert parse_architecture(str(bom))[0] == from_text("n=2; 0->1:param/1")


def test_graph_size_limits_are_documented_constants():
    from nni_archscale.core import graph

    assert (graph.MAX_NODES, graph.MAX_EDGES, graph.MAX_KERNEL_SIZE) == (100_000, 500_000, 1024)
    for name in ("MAX_NODES", "MAX_EDGES", "MAX_KERNEL_SIZE"):
        assert name in graph.__doc__
    assert ArchGraph(graph.MAX_NODES, [Edge(0, graph.MAX_NODES - 1, "param", graph.MAX_KERNEL_SIZE)]).canonical()
    with pytest.raises(GraphStructureError, match="at most 100,000 nodes"):
        ArchGraph(graph.MAX_NODES + 1, [])
    with pytest.raises(GraphStructureError, match="at most 100,000 nodes .* got an integer of about 5,000 digits"):
        ArchGraph(10**5000, [])


def test_canonical_form_of_many_twin_nodes_does_not_recurse():
    """Issue 18: 'n=100000; 0->99999:param' recursed once per isolated node (RecursionError after minutes). Its
    speed is a benchmark's business (benchmarks/bench_paths.py), not a timed assertion: this checks the answer."""
    g = from_text("n=100000; 0->99999:param")
    assert g.canonical().identical(g) and g == from_text("n=100000; 0->99999:param")
    parallel = ArchGraph(3_002, [Edge(0, v, "param") for v in range(1, 3_001)] +
                         [Edge(v, 3_001, "skip") for v in range(1, 3_001)])
    assert parallel == parallel.canonical()


GRAPH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|"


def test_scale_reads_the_strings_inspect_reads():
    """Issue 18: scale("|...|", base_lr=0.46) raised AttributeError; it reads the string, context as inspect."""
    by_string = scale(GRAPH, base_lr=0.46)
    assert by_string.context == "nb201-cell"
    assert by_string.learning_rate.value == scale(from_nb201(GRAPH), 0.46, "paper", "nb201-cell").learning_rate.value
    assert scale("2_02", 1.0, kernel_size=3).graph == from_paper_code("2_02", kernel_size=3)
    assert scale("n=2; 0->1:param/1", 1.0).context == "dag"


ACCEPTED = (r"give a networks.Network, an ArchGraph or a NAS-Bench-201 string \(\|nor_conv_3x3~0\|\+\|\.\.\.\|\), a paper code "
            r"\(2_02_002\), a text graph \(n=3; 0->1:param/1, 1->2:skip\) or a path to a JSON graph$")
BASE_LR = "; pass the rate calibrated on the base network, e.g. base_lr=0.46$"


@pytest.mark.parametrize("graph, base_lr, error, message", [
    (None, 0.46, ArchitectureParseError,
     r"^scale\(\) needs a Network, an ArchGraph or an architecture string, got NoneType; " + ACCEPTED),
    (42, 0.46, ArchitectureParseError, r"^scale\(\) needs a Network, an ArchGraph or an architecture string, got int; "),
    ("|conv~0|", 0.46, ArchitectureParseError, "^unknown NAS-Bench-201 operation 'conv'"),
    ("", 0.46, ArchitectureParseError, "^the architecture is empty"),
    (GRAPH, True, RuleError, r"^base learning rate must be a positive finite number, got True \(bool\)" + BASE_LR),
    (GRAPH, "0.1", RuleError, r"^base learning rate must be a positive finite number, got '0.1' \(str\)" + BASE_LR),
    (GRAPH, float("inf"), RuleError, "^base learning rate must be a positive finite number, got inf" + BASE_LR),
    (GRAPH, float("nan"), RuleError, "^base learning rate must be a positive finite number, got nan" + BASE_LR),
    (GRAPH, -0.1, RuleError, "^base learning rate must be a positive finite number, got -0.1" + BASE_LR),
    (GRAPH, 0, RuleError, "^base learning rate must be a positive finite number, got 0" + BASE_LR),
], ids=["None", "int", "bad string", "empty", "bool", "str rate", "inf", "nan", "negative", "zero"])
def test_scale_refuses_what_it_cannot_read(graph, base_lr, error, message):
    with pytest.raises(error, match=message):
        scale(graph, base_lr=base_lr)
    if isinstance(graph, str) and graph == GRAPH:  # the same check guards a graph and learning_rate()
        with pytest.raises(error, match=message):
            learning_rate(from_nb201(GRAPH), base_lr)


# issue 25: kernel sizes are positive integers up to graph.MAX_KERNEL_SIZE (kernel_size=2.5 raised a TypeError from
# fractions, -3 gave a negative learning rate, 0 was silently the default, base_kernel_size=99999 a rate of 1807)
@pytest.mark.parametrize("name, value, shown", [
    ("kernel_size", 2.5, "2.5"), ("kernel_size", -3, "-3"), ("kernel_size", 0, "0"), ("kernel_size", True, "True"),
    ("kernel_size", "3", "'3'"), ("kernel_size", 1025, "1025"), ("base_kernel_size", 0, "0"),
    ("base_kernel_size", -1, "-1"), ("base_kernel_size", 99999, "99999"), ("base_kernel_size", 3.0, "3.0"),
])
def test_scale_refuses_kernel_sizes_that_are_not_kernels(name, value, shown):
    message = (rf"^{name} must be an integer in 1\.\.1,024 \(nni_archscale.core.graph.MAX_KERNEL_SIZE\), got "
               rf"{re.escape(shown)}; give the side q of the square kernel, e.g. 3 for 3x3, or None for the default$")
    for call in (lambda: scale(GRAPH, 0.46, **{name: value}),
                 lambda: scale("2_02", 1.0, **{name: value}),  # a paper code is read with kernel_size: checked first
                 lambda: learning_rate(from_nb201(GRAPH), 0.46, **{name: value})):
        with pytest.raises(RuleError, match=message):
            call()
    assert scale(GRAPH, 0.46, kernel_size=1024, base_kernel_size=1024).learning_rate.value > 0


# issue 25: a JSON graph path is read only when it is a regular file (a named pipe blocked `inspect` and `verify`
# forever, also through a symlink named x.json; /dev/zero took all memory), and never past the size limit
@pytest.mark.parametrize("name", ["fifo", "x.json"])
def test_a_json_graph_path_that_is_a_pipe_is_refused_unread(tmp_path, name):
    fifo = make_fifo(tmp_path / "fifo")
    (tmp_path / "x.json").symlink_to(fifo)
    path = str(tmp_path / name)
    with pytest.raises(ArchitectureParseError) as info:
        unblocked(lambda: parse_architecture(path), fifo)
    assert str(info.value) == (f"JSON graph file {path!r} is a named pipe (FIFO), not a regular file (reading it could "
                               f"block or never end); pass the path of a regular file")


def test_a_device_or_directory_is_refused_unread(tmp_path):
    if os.path.exists("/dev/zero"):
        with pytest.raises(ArchitectureParseError, match=r"^JSON graph file '/dev/zero' is a character device, not a "
                                                         r"regular file \(reading it could block or never end\); pass"):
            parse_architecture("/dev/zero")
    with pytest.raises(ArchitectureParseError, match=r"^JSON graph file '.*' is a directory, not a regular file; pass"):
        parse_architecture(str(tmp_path))


def test_a_json_graph_file_is_read_up_to_its_limit_only(tmp_path, monkeypatch):
    from nni_archscale.core import formats

    big = tmp_path / "big.json"
    big.write_text('{"num_nodes": 2, "edges": [{"src": 0, "dst": 1, "kind": "param"}]}')
    monkeypatch.setattr(formats, "MAX_JSON_FILE_BYTES", 40)
    with pytest.raises(ArchitectureParseError, match=r"^JSON graph file '.*big.json' has 66 bytes, more than the "
                                                     r"40 read \(nni_archscale.core.formats.MAX_JSON_FILE_BYTES\); is it"):
        parse_architecture(str(big))
    # a file whose size the file system understates (under /proc, st_size is 0): at most limit + 1 bytes are read
    status = "/proc/self/status"
    if not os.path.exists(status) or os.stat(status).st_size:
        return
    read = []
    real_read = os.read

    def counting_read(fd, n):
        chunk = real_read(fd, n)
        read.append(len(chunk))
        return chunk

    monkeypatch.setattr(os, "read", counting_read)
    with pytest.raises(InputFileError, match=r"^file '/proc/self/status' holds more than the 100 bytes read; is it "
                                             r"the right file\?$") as info:
        read_regular_file(status, 100)
    assert info.value.size is None and sum(read) <= 101
