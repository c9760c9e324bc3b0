"""Reading and writing architecture graphs: NAS-Bench-201 strings, the paper's codes, text, JSON, networkx.

Every reader raises :class:`~nni_archscale.errors.ArchitectureParseError` naming the offending token and the
accepted forms; structural problems (cycles, duplicate edges) surface as
:class:`~nni_archscale.errors.GraphStructureError` from :class:`~nni_archscale.core.graph.ArchGraph`. Messages echo
the offending token, never the whole input, and cut any echo to about 60 characters
(:func:`~nni_archscale.errors.shorten`). Sizes are bounded (:data:`~nni_archscale.core.graph.MAX_NODES`,
:data:`~nni_archscale.core.graph.MAX_EDGES`, :data:`~nni_archscale.core.graph.MAX_KERNEL_SIZE`); a JSON graph file must be
a regular file (a named pipe or a device is refused unread: :func:`~nni_archscale.core.files.read_regular_file`) of
UTF-8 text and at most :data:`MAX_JSON_FILE_BYTES` bytes, of which at most one more is ever read.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import ArchitectureParseError, GraphStructureError, InputFileError, shorten
from .files import read_regular_file
from .graph import MAX_EDGES, MAX_KERNEL_SIZE, MAX_NODES, ArchGraph, Edge, EdgeKind, too_many_edges, too_many_nodes

#: The forms :func:`parse_architecture` reads, for error messages.
ACCEPTED_FORMS = (
    "a NAS-Bench-201 string (|nor_conv_3x3~0|+|...|), a paper code (2_02_002), "
    "a text graph (n=3; 0->1:param/1, 1->2:skip) or a path to a JSON graph"
)
#: Largest JSON graph file read (bytes): :data:`~nni_archscale.core.graph.MAX_EDGES` edges with labels fit well within.
MAX_JSON_FILE_BYTES = 256 * 2**20
#: How much of a file path messages echo (more than of other input: a path's end names the file).
_PATH_ECHO = 200
#: Integers in text forms longer than this many digits are refused before conversion (Python refuses past 4,300;
#: every size limit is far below).
_MAX_DIGITS = 60


def _integer(digits: str, what: str, where: str) -> int:
    """``int(digits)`` for a node number, node count or kernel size; absurdly many digits -> the limit's error
    (smaller values are checked against the limits by :class:`~nni_archscale.core.graph.ArchGraph` and ``Edge``)."""
    if len(digits) <= _MAX_DIGITS:
        return int(digits)
    if what == "node count":
        raise too_many_nodes(shorten(digits))
    if what == "kernel size":
        raise GraphStructureError(
            f"{where}: kernel_size {shorten(digits)} exceeds the maximum {MAX_KERNEL_SIZE:,} "
            "(nni_archscale.core.graph.MAX_KERNEL_SIZE); give the side q of the square kernel, e.g. 3 for 3x3"
        )
    raise GraphStructureError(
        f"{where}: node {shorten(digits)} is beyond any graph's nodes (at most {MAX_NODES:,}, "
        "nni_archscale.core.graph.MAX_NODES); fix the node number"
    )


# --------------------------------------------------------------------------- NAS-Bench-201
#: NAS-Bench-201 operation names -> (kind, kernel size). The convs are ReLU-Conv-BN, parameterised.
NB201_OPS: dict[str, tuple[EdgeKind, int]] = {
    "none": (EdgeKind.ZERO, 1),
    "skip_connect": (EdgeKind.SKIP, 1),
    "nor_conv_1x1": (EdgeKind.PARAM, 1),
    "nor_conv_3x3": (EdgeKind.PARAM, 3),
    "avg_pool_3x3": (EdgeKind.POOL, 3),
}
#: NAS-Bench-201 operation names -> NNI ``NasBench201``'s names for the same operations (NNI drops the convs'
#: ``nor_`` prefix). The one table of the two vocabularies: NNI's ops (nni_glue.adapters) and the samples the
#: experiments build are derived from it and :data:`NB201_OPS`.
NB201_TO_NNI_OPS: dict[str, str] = {
    "none": "none",
    "skip_connect": "skip_connect",
    "nor_conv_1x1": "conv_1x1",
    "nor_conv_3x3": "conv_3x3",
    "avg_pool_3x3": "avg_pool_3x3",
}


def nb201_cells() -> Iterator[str]:
    """All 5^6 = 15,625 NAS-Bench-201 cell strings, ops in :data:`NB201_OPS` order (not the benchmark's index
    order): the one enumeration the verifier, the benchmarks and the experiments share."""
    for a, b, c, d, e, f in itertools.product(NB201_OPS, repeat=6):
        yield f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def from_nb201(text: str) -> ArchGraph:
    """Parse a NAS-Bench-201 cell string such as ``|nor_conv_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|...|``.

    Group ``i`` (1-based, separated by ``+``) lists the operations on the edges into node ``i``, one
    ``op~j`` token for every earlier node ``j``. The standard space has 3 groups (4 nodes, 6 edges).
    """
    if not isinstance(text, str):
        raise ArchitectureParseError(f"a NAS-Bench-201 string must be text, got {type(text).__name__}")
    s = text.strip()
    if not s:
        raise ArchitectureParseError("empty NAS-Bench-201 string; expected e.g. |nor_conv_3x3~0|+|...|")
    groups = s.split("+")
    edges: list[Edge] = []
    for i, group in enumerate(groups, start=1):
        g = group.strip()
        if len(g) < 2 or not (g.startswith("|") and g.endswith("|")):
            raise ArchitectureParseError(
                f"NAS-Bench-201 group {i} {shorten(group)} must be enclosed in '|', e.g. |nor_conv_3x3~0|"
            )
        tokens = g[1:-1].split("|")
        if len(tokens) != i:
            raise ArchitectureParseError(
                f"NAS-Bench-201 group {i} {shorten(group)} has {len(tokens)} operation(s); node {i} needs exactly "
                f"{i}, one from each earlier node 0..{i - 1}"
            )
        sources: set[int] = set()
        for token in tokens:
            op, sep, src_text = token.partition("~")
            if not sep or not (src_text.isascii() and src_text.isdigit()):
                raise ArchitectureParseError(
                    f"NAS-Bench-201 token {shorten(token)} in group {i} is not of the form op~j "
                    "(e.g. skip_connect~0)"
                )
            if op not in NB201_OPS:
                raise ArchitectureParseError(
                    f"unknown NAS-Bench-201 operation {shorten(op)} in token {shorten(token)}; "
                    f"use one of {', '.join(NB201_OPS)}"
                )
            src = int(src_text) if len(src_text) <= 20 else i
            if src >= i:
                raise ArchitectureParseError(
                    f"NAS-Bench-201 token {shorten(token)} feeds node {i} from node "
                    f"{src_text if len(src_text) <= 20 else shorten(src_text)}; "
                    f"sources must be < {i}"
                )
            if src in sources:
                raise ArchitectureParseError(
                    f"NAS-Bench-201 group {i} names source node {src} twice (token {shorten(token)})"
                )
            sources.add(src)
            kind, q = NB201_OPS[op]
            edges.append(Edge(src, i, kind, q, op=op))
    return ArchGraph(len(groups) + 1, edges)


def to_nb201(graph: ArchGraph) -> str:
    """Write a graph as a NAS-Bench-201 string (every pair j < i listed; absent edges as ``none``)."""
    reverse = {v: k for k, v in NB201_OPS.items()}
    groups = []
    for i in range(1, graph.num_nodes):
        tokens = []
        for j in range(i):
            e = graph.edge(j, i)
            label = (EdgeKind.ZERO, 1) if e is None else (e.kind, 1 if e.kind is EdgeKind.ZERO else e.kernel_size)
            if label not in reverse:
                raise ArchitectureParseError(
                    f"edge {j}->{i} ({e.describe() if e else 'zero'}) has no NAS-Bench-201 operation; "
                    f"NAS-Bench-201 knows {', '.join(NB201_OPS)}"
                )
            tokens.append(f"{reverse[label]}~{j}")
        groups.append("|" + "|".join(tokens) + "|")
    return "+".join(groups)


# --------------------------------------------------------------------------- the paper's codes
_CODE_KINDS = {"0": EdgeKind.ZERO, "1": EdgeKind.SKIP, "2": EdgeKind.PARAM}


def from_paper_code(code: str, kernel_size: int = 1) -> ArchGraph:
    """Parse the authors' DAG code, e.g. ``2_02_002``.

    Group ``i`` (1-based, separated by ``_``) has ``i`` digits: the kinds of the edges into node ``i`` from
    nodes ``0 .. i-1``, with 0 = none, 1 = skip, 2 = parameterised (Linear, or Conv with ``kernel_size``).
    """
    if not isinstance(code, str):
        raise ArchitectureParseError(f"a paper code must be text, got {type(code).__name__}")
    s = code.strip()
    if not s:
        raise ArchitectureParseError("empty paper code; expected groups of digits 0/1/2 such as 2_02_002")
    groups = s.split("_")
    if len(groups) + 1 > MAX_NODES:
        raise too_many_nodes(f"{len(groups) + 1:,} (a paper code of {len(groups):,} groups)")
    edges: list[Edge] = []
    for i, group in enumerate(groups, start=1):
        if len(group) != i:
            raise ArchitectureParseError(
                f"paper code group {i} {shorten(group)} has {len(group):,} digit(s); node {i} needs {i} "
                f"(one per earlier node), e.g. 2_02_002"
            )
        for j, ch in enumerate(group):
            if ch not in _CODE_KINDS:
                raise ArchitectureParseError(
                    f"paper code: digit {ch!r} in group {i} {shorten(group)} is not 0 (none), 1 (skip) or 2 "
                    "(parameterised)"
                )
            kind = _CODE_KINDS[ch]
            edges.append(Edge(j, i, kind, kernel_size if kind is EdgeKind.PARAM else 1))
    return ArchGraph(len(groups) + 1, edges)


def to_paper_code(graph: ArchGraph) -> str:
    """Write a graph as the authors' code (needs only zero / skip / parameterised edges)."""
    digits = {EdgeKind.ZERO: "0", EdgeKind.SKIP: "1", EdgeKind.PARAM: "2"}
    groups = []
    for i in range(1, graph.num_nodes):
        group = ""
        for j in range(i):
            e = graph.edge(j, i)
            kind = EdgeKind.ZERO if e is None else e.kind
            if kind not in digits:
                raise ArchitectureParseError(
                    f"edge {j}->{i} is a {kind.value} edge, which the paper's code cannot express"
                )
            group += digits[kind]
        groups.append(group)
    return "_".join(groups)


# --------------------------------------------------------------------------- text
_TEXT_EDGE = re.compile(r"^\s*([0-9]+)\s*->\s*([0-9]+)\s*:\s*([a-z]+)\s*(?:/\s*([0-9]+))?\s*$")


def to_text(graph: ArchGraph) -> str:
    """Readable one-line form, e.g. ``n=4; 0->1:param/3, 0->2:skip, 1->3:pool/3`` (:meth:`ArchGraph.to_text
    <nni_archscale.core.graph.ArchGraph.to_text>`, the graph's own repr: zero edges are written, labels are not)."""
    return graph.to_text()


def from_text(text: str) -> ArchGraph:
    """Parse :func:`to_text` output."""
    if not isinstance(text, str):
        raise ArchitectureParseError(f"a text graph must be a string, got {type(text).__name__}")
    head, sep, body = text.partition(";")
    m = re.fullmatch(r"\s*n\s*=\s*([0-9]+)\s*", head)
    if m and not sep:  # 'n=1': the count, no edges (a graph of fewer than 2 nodes has no input and output)
        if len(m.group(1)) < 3 and int(m.group(1)) < 2:
            raise ArchitectureParseError(
                f"text graph {shorten(text.strip())} has {int(m.group(1))} node(s); a graph needs at least 2 nodes, "
                "an input and an output, e.g. 'n=2; 0->1:param'"
            )
        raise ArchitectureParseError(
            f"text graph {shorten(text.strip())} lists no edges; add them after a ';', e.g. "
            "'n=3; 0->1:param/3, 1->2:skip'"
        )
    if not sep or not m:
        raise ArchitectureParseError(
            f"text graph {shorten(head.strip() if sep else text.strip())} must start with the node count, "
            "e.g. 'n=4; 0->1:param/3, 1->3:skip'"
        )
    num_nodes = _integer(m.group(1), "node count", "text graph")
    if num_nodes > MAX_NODES:  # before reading the edges
        raise too_many_nodes(shorten(num_nodes) if num_nodes.bit_length() > 64 else f"{num_nodes:,}")
    edges = []
    for token in filter(None, (t.strip() for t in body.split(","))):
        if len(edges) >= MAX_EDGES:
            raise too_many_edges(sum(1 for t in body.split(",") if t.strip()))
        em = _TEXT_EDGE.match(token)
        if not em:
            raise ArchitectureParseError(
                f"text graph edge {shorten(token)} is not of the form SRC->DST:KIND[/KERNEL], e.g. 0->1:param/3"
            )
        src, dst, kind, q = em.groups()
        if kind not in {k.value for k in EdgeKind}:
            raise ArchitectureParseError(
                f"text graph edge {shorten(token)}: unknown kind {shorten(kind)}; use one of "
                f"{', '.join(k.value for k in EdgeKind)}"
            )
        where = f"text graph edge {shorten(token)}"
        edges.append(Edge(_integer(src, "node", where), _integer(dst, "node", where), EdgeKind(kind),
                          _integer(q, "kernel size", where) if q else 1))
    return ArchGraph(num_nodes, edges)


# --------------------------------------------------------------------------- JSON
JSON_FORMAT = "nni-archscale/graph@1"


def to_json_dict(graph: ArchGraph) -> dict[str, Any]:
    edges = []
    for e in graph.edges:
        d: dict[str, Any] = {"src": e.src, "dst": e.dst, "kind": e.kind.value, "kernel_size": e.kernel_size}
        if e.op is not None:
            d["op"] = e.op
        if e.module is not None:
            d["module"] = e.module
        edges.append(d)
    return {"format": JSON_FORMAT, "num_nodes": graph.num_nodes, "edges": edges}


def to_json(graph: ArchGraph, **kwargs: Any) -> str:
    return json.dumps(to_json_dict(graph), **kwargs)


def from_json_dict(data: Any) -> ArchGraph:
    """Build a graph from ``{"num_nodes": N, "edges": [{"src", "dst", "kind", "kernel_size"?, ...}]}``."""
    if not isinstance(data, Mapping):
        raise ArchitectureParseError(
            f"a JSON graph must be an object with 'num_nodes' and 'edges', got {type(data).__name__}"
        )
    fmt = data.get("format", JSON_FORMAT)
    if fmt != JSON_FORMAT:
        raise ArchitectureParseError(f"JSON graph has format {shorten(fmt)}; this version reads {JSON_FORMAT!r}")
    missing = [k for k in ("num_nodes", "edges") if k not in data]
    if missing:
        raise ArchitectureParseError(f"JSON graph lacks {', '.join(map(repr, missing))}")
    if not isinstance(data["edges"], list):
        raise ArchitectureParseError("JSON graph 'edges' must be a list of edge objects")
    if len(data["edges"]) > MAX_EDGES:
        raise too_many_edges(len(data["edges"]))
    num_nodes = data["num_nodes"]
    if isinstance(num_nodes, int) and not isinstance(num_nodes, bool) and num_nodes > MAX_NODES:
        raise too_many_nodes(shorten(num_nodes) if num_nodes.bit_length() > 64 else f"{num_nodes:,}")
    edges = []
    for i, item in enumerate(data["edges"]):
        if not isinstance(item, Mapping):
            raise ArchitectureParseError(f"JSON graph edge #{i} must be an object, got {shorten(item)}")
        lacking = [k for k in ("src", "dst", "kind") if k not in item]
        if lacking:
            raise ArchitectureParseError(f"JSON graph edge #{i} {shorten(dict(item))} lacks {', '.join(lacking)}")
        unknown = set(item) - {"src", "dst", "kind", "kernel_size", "op", "module"}
        if unknown:
            raise ArchitectureParseError(
                f"JSON graph edge #{i} has unknown field(s) {shorten(sorted(map(str, unknown)))}; "
                "allowed: src, dst, kind, kernel_size, op, module"
            )
        edges.append(
            Edge(item["src"], item["dst"], item["kind"], item.get("kernel_size", 1), item.get("op"), item.get("module"))
        )
    return ArchGraph(num_nodes, edges)


def from_json(text: str) -> ArchGraph:
    """Parse a JSON graph (:func:`to_json` output)."""
    if not isinstance(text, (str, bytes, bytearray)):
        raise ArchitectureParseError(f"a JSON graph must be given as text, got {type(text).__name__}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArchitectureParseError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise ArchitectureParseError(
            f"the JSON graph is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from None
    except RecursionError:
        raise ArchitectureParseError(
            "the JSON graph is nested too deeply to read; a graph is one object with 'num_nodes' and a flat "
            "'edges' list"
        ) from None
    except ValueError as exc:  # an integer of more than 4,300 digits (sys.get_int_max_str_digits())
        raise ArchitectureParseError(
            f"the JSON graph holds a number too long to read ({shorten(str(exc), 40)}); check its numbers: "
            f"a graph has at most {MAX_NODES:,} nodes"
        ) from None
    return from_json_dict(data)


# --------------------------------------------------------------------------- networkx
def to_networkx(graph: ArchGraph):
    """A ``networkx.DiGraph`` with edge attributes kind, kernel_size, op, module (zero edges included)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_nodes_from(range(graph.num_nodes))
    for e in graph.edges:
        g.add_edge(e.src, e.dst, kind=e.kind.value, kernel_size=e.kernel_size, op=e.op, module=e.module)
    g.graph["input"] = graph.input_node
    g.graph["output"] = graph.output_node
    return g


def from_networkx(g, input=None, output=None) -> ArchGraph:
    """Build from a ``networkx.DiGraph`` whose edges carry ``kind`` (and optionally ``kernel_size``, ``op``,
    ``module``). Nodes may have any labels; they are renumbered topologically with ``input`` first and
    ``output`` last (defaults: the unique node without predecessors / successors)."""
    import networkx as nx

    if not isinstance(g, nx.DiGraph) or isinstance(g, nx.MultiDiGraph):
        raise ArchitectureParseError(f"expected a networkx DiGraph, got {type(g).__name__}")
    if g.number_of_nodes() == 0:
        raise GraphStructureError("the networkx graph has no nodes; it needs at least an input and an output")
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        u, v = cycle[-1][:2]
        raise GraphStructureError(
            f"edge {u}->{v} closes a cycle ({' -> '.join(str(c[0]) for c in cycle)} -> {cycle[0][0]}); "
            "an architecture graph must be acyclic"
        )
    input = g.graph.get("input") if input is None else input
    output = g.graph.get("output") if output is None else output
    if input is None:
        sources = [n for n in g.nodes if g.in_degree(n) == 0]
        if len(sources) != 1:
            raise GraphStructureError(
                f"cannot tell the input node: {len(sources)} nodes have no predecessor ({sources[:5]}); "
                "pass input=..."
            )
        input = sources[0]
    if output is None:
        sinks = [n for n in g.nodes if g.out_degree(n) == 0]
        if len(sinks) != 1:
            raise GraphStructureError(
                f"cannot tell the output node: {len(sinks)} nodes have no successor ({sinks[:5]}); pass output=..."
            )
        output = sinks[0]
    for role, node in (("input", input), ("output", output)):
        if node not in g:
            raise GraphStructureError(f"{role} node {node!r} is not in the graph")
    if g.in_degree(input):
        raise GraphStructureError(f"input node {input!r} has incoming edges; the input must be a source")
    if g.out_degree(output):
        raise GraphStructureError(f"output node {output!r} has outgoing edges; the output must be a sink")
    insertion = {n: i for i, n in enumerate(g.nodes)}  # keep the given order where it is already topological
    inner = [n for n in nx.lexicographical_topological_sort(g, key=insertion.get) if n != input and n != output]
    order = [input, *inner, output]
    index = {n: i for i, n in enumerate(order)}
    edges = []
    for u, v, data in g.edges(data=True):
        if "kind" not in data:
            raise ArchitectureParseError(f"networkx edge {u}->{v} has no 'kind' attribute (zero/skip/pool/param)")
        edges.append(
            Edge(index[u], index[v], data["kind"], data.get("kernel_size", 1), data.get("op"), data.get("module"))
        )
    return ArchGraph(len(order), edges)


def from_edges(edges: Iterable[tuple], num_nodes: int | None = None) -> ArchGraph:
    """Build from ``(src, dst, kind[, kernel_size])`` tuples with topologically numbered integer nodes."""
    parsed = []
    for t in edges:
        if isinstance(t, Edge):
            parsed.append(t)
            continue
        if not isinstance(t, (tuple, list)) or len(t) not in (3, 4):
            raise ArchitectureParseError(
                f"edge {shorten(t)} must be (src, dst, kind) or (src, dst, kind, kernel_size)"
            )
        parsed.append(Edge(*t))
    if num_nodes is None:
        num_nodes = 1 + max((max(e.src, e.dst) for e in parsed), default=1)
    return ArchGraph(num_nodes, parsed)


# --------------------------------------------------------------------------- any form
def parse_architecture(arch: str, kernel_size: int = 1) -> tuple[ArchGraph, str]:
    """Read ``arch`` in any accepted form and say which: returns ``(graph, form)`` with form one of
    ``"nb201"``, ``"paper-code"``, ``"text"``, ``"json"`` (a JSON file path or inline JSON)."""
    if not isinstance(arch, str):
        raise ArchitectureParseError(
            f"an architecture must be given as text, got {type(arch).__name__}; give {ACCEPTED_FORMS}"
        )
    s = arch.strip()
    if not s:
        raise ArchitectureParseError(f"the architecture is empty; give {ACCEPTED_FORMS}")
    if s.startswith("|"):
        return from_nb201(s), "nb201"
    if re.fullmatch(r"[0-9_]+", s):
        return from_paper_code(s, kernel_size=kernel_size), "paper-code"
    if s.startswith("{"):
        return from_json(s), "json"
    if s.startswith("n="):
        return from_text(s), "text"
    path = Path(s)
    try:
        is_file = path.suffix.lower() == ".json" or path.exists()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL: not a path
        is_file = False
    if is_file:
        try:
            raw = read_regular_file(path, MAX_JSON_FILE_BYTES, "JSON graph file")
        except InputFileError as exc:
            if exc.kind is not None:
                raise ArchitectureParseError(str(exc)) from None  # a pipe or a device: named, never read
            held = (f"{exc.size:,} bytes, more than the {MAX_JSON_FILE_BYTES:,}" if exc.size is not None else
                    f"more than the {MAX_JSON_FILE_BYTES:,} bytes")  # unknown: st_size understated it (/proc)
            raise ArchitectureParseError(
                f"JSON graph file {shorten(s, _PATH_ECHO)} has {held} read "
                f"(nni_archscale.core.formats.MAX_JSON_FILE_BYTES); is it a graph? a graph of {MAX_EDGES:,} edges fits "
                f"well within"
            ) from None
        except FileNotFoundError:
            raise ArchitectureParseError(f"JSON graph file {shorten(s, _PATH_ECHO)} does not exist") from None
        except OSError as exc:
            raise ArchitectureParseError(
                f"cannot read JSON graph file {shorten(s, _PATH_ECHO)}: {exc.strerror}"
            ) from None
        try:
            content = raw.decode("utf-8-sig")  # UTF-8, with or without a byte-order mark
        except UnicodeDecodeError as exc:
            raise ArchitectureParseError(
                f"JSON graph file {shorten(s, _PATH_ECHO)} is not UTF-8 text ({exc.reason}: byte "
                f"0x{raw[exc.start]:02x} at offset {exc.start:,}); save it as UTF-8"
            ) from None
        try:
            return from_json(content), "json"
        except ArchitectureParseError as exc:
            raise ArchitectureParseError(f"JSON graph file {shorten(s, _PATH_ECHO)}: {exc}") from None
    raise ArchitectureParseError(f"cannot read architecture {shorten(s)}: give {ACCEPTED_FORMS}")


def nb201_unique_string(cell: str) -> str:
    """NAS-Bench-201's ``UniqueString`` of a cell string (its API's ``to_unique_str(consider_zero=True)``).

    Node ``i`` is the '+'-joined, sorted list of its terms: ``#`` for ``none`` or a source that is ``#``, the
    source's own string for ``skip_connect``, ``(source)@op`` otherwise. Equal to the published table's
    ``UniqueString`` column on all 15,625 cells (checked on ../shared/data/nb201_accuracies.csv).
    """
    nodes = ["0"]
    for group in cell.split("+"):
        terms = []
        for token in group.strip("|").split("|"):
            op, _, src = token.partition("~")
            x = nodes[int(src)]
            terms.append("#" if op == "none" or x == "#" else x if op == "skip_connect" else f"({x})@{op}")
        nodes.append("+".join(sorted(terms)))
    return nodes[-1]
