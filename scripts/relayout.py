"""Move the package's modules into the layout of docs/design.md and rewrite every reference to them (issue 24).

One table (below) says where each module goes. The script moves the files (``git mv``), creates the new packages,
merges and deletes what the table says, and rewrites, in every tracked text file of the product, the research,
the tests, the examples, the benchmarks, the scripts and the docs (never ``reports/``: a report is a record of its
time):

* imports: ``from nni_archscale.old import x``, ``from .old import x``, ``from ..pkg.old import x``,
  ``from .. import old`` (the module bound under its new name where the old name is distinctive, else ``as old``),
  ``import nni_archscale.old as y``; a relative import is recomputed from the file's new place, so a moved file's
  imports of modules that stay put are rewritten too;
* dotted names anywhere (strings, comments, docstrings, Markdown): ``nni_archscale.old.attr`` (monkeypatch
  targets, ``python -m`` calls, the CLI's subcommand table, error messages), ``pkg.old`` inside the package
  (``torch_layer.calibrate``), and Sphinx references relative to the file (``:mod:`.old```);
* paths: ``nni_archscale/old.py``, ``pkg/old.py``, and a bare ``old.py`` where only one module had that name (while
  the move is pending: afterwards a bare name means the module where it is now);
* the old name of a module whose name is distinctive (``scaling_rules``, ``rate_registry``...) as a word.

It works on a tree that has changed since it was written: every rewrite is a regular expression over the names in
the table, none depends on a line number. It is idempotent: a second run changes nothing (a table entry is applied
while its old module exists, or while its old name names no module any more; ``nni_archscale.rules``, the old
module, is a package afterwards, so a second run leaves it alone).

    python scripts/relayout.py            # do it (then run the tests and commit)
    python scripts/relayout.py --dry-run  # list what would move and which files would change
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------------- the table
#: new packages: their ``__init__.py`` docstring (written only when the package has no ``__init__.py`` yet)
PACKAGES = {
    "nni_archscale.core": (
        '"""The core: architecture graphs and their exact path statistics (see docs/design.md, "Layers").\n\n'
        "``graph`` (the ``ArchGraph`` type), ``canonical`` (isomorphism), ``formats`` (every text form in and out),\n"
        "``paths`` (path moments by dynamic programming), ``networks`` (whole networks as chains of blocks),\n"
        "``files`` (reading a user's file safely). Pure Python: imports neither torch nor NNI, nor the rules.\n"
        '"""\n'),
    "nni_archscale.rules": (
        '"""The rules: init variances and learning rates on the core\'s graphs (see docs/design.md, "Layers").\n\n'
        "One module per rule family: ``presets`` (the conventions as data), ``paper`` (eq. 2/4/8/9 under a preset),\n"
        "``forward_moments`` (exact moments, the variance-exact init), ``first_step`` (the DAG-cell first-step rules),\n"
        "``shortest_path`` (the shortest-path rival); ``registry`` (every rate rule as one object), ``defaults``\n"
        "(which rule each family gets, and why), ``planner`` (whole-network init plans), ``names`` (the names the\n"
        "command line offers), ``explain`` (``archscale inspect``'s report). Pure Python: no torch, no NNI.\n"
        '"""\n'),
}

#: (old module, new module): the file moves, every reference follows
MOVES = [
    # the core: graphs and path statistics
    ("nni_archscale.graph", "nni_archscale.core.graph"),
    ("nni_archscale.canonical", "nni_archscale.core.canonical"),
    ("nni_archscale.formats", "nni_archscale.core.formats"),
    ("nni_archscale.paths", "nni_archscale.core.paths"),
    ("nni_archscale.networks", "nni_archscale.core.networks"),
    ("nni_archscale.files", "nni_archscale.core.files"),
    # the rules: one module per rule family, the registry, the defaults
    ("nni_archscale.presets", "nni_archscale.rules.presets"),
    ("nni_archscale.rules", "nni_archscale.rules.paper"),
    ("nni_archscale.moments", "nni_archscale.rules.forward_moments"),
    ("nni_archscale.scaling_rules", "nni_archscale.rules.first_step"),
    ("nni_archscale.shortest_path", "nni_archscale.rules.shortest_path"),
    ("nni_archscale.rate_registry", "nni_archscale.rules.registry"),
    ("nni_archscale.defaults", "nni_archscale.rules.defaults"),
    ("nni_archscale.planner", "nni_archscale.rules.planner"),
    ("nni_archscale.space_names", "nni_archscale.rules.names"),
    ("nni_archscale.explain", "nni_archscale.rules.explain"),
    # the fairness benchmark's NAS-Bench-201 data (the experiments read them there too)
    ("nni_archscale.nb201_sampling", "nni_archscale.fairness.nb201_sampling"),
    ("nni_archscale.published_table", "nni_archscale.fairness.published_table"),
    # the torch layer: names that no longer collide with nni_glue.calibration / the rules package
    ("nni_archscale.torch_layer.calibrate", "nni_archscale.torch_layer.rate_grid"),
    ("nni_archscale.torch_layer.rate_rules", "nni_archscale.torch_layer.rate_choice"),
    # the research package: names that no longer collide with the product's
    ("nni_archscale.experiments.cli", "nni_archscale.experiments.experiment_cmd"),
    ("nni_archscale.experiments.data", "nni_archscale.experiments.datasets"),
    ("nni_archscale.experiments.report", "nni_archscale.experiments.lr_report"),
    ("nni_archscale.experiments.names", "nni_archscale.experiments.choices"),
    # symbolic: verify (the graph verifier) and verification (one rule's drift) no longer look alike
    ("symbolic.verification", "symbolic.rule_check"),
]

#: (old module, module it joins): the old module's body is appended to the other's, the old file removed
MERGES = [
    ("nni_archscale.run_errors", "nni_archscale.errors"),
]

#: (re-exporting module, the module it re-exported): the shim is removed, its importers import the original
SHIMS = [
    ("nni_archscale.experiments.provenance", "nni_archscale.provenance"),
    ("nni_archscale.experiments.published_table", "nni_archscale.fairness.published_table"),
    ("nni_archscale.experiments.nb201_cells", "nni_archscale.fairness.nb201_sampling"),
]

#: (old path, new path) of files outside the packages (scripts, tests): moved, their full paths rewritten
FILES = [
    ("scripts/rule_variants.py", "scripts/score_variants.py"),
    ("tests/test_rule_variants.py", "tests/test_score_variants.py"),
]

#: old module names distinctive enough to rewrite as words (``rate_registry.get`` -> ``registry.get``); a module
#: imported by such a name is bound under its new name. Other renamed modules imported by name keep their old
#: binding (``from nni_archscale.torch_layer import rate_grid as calibrate``).
WORDS = ("nni_archscale.scaling_rules", "nni_archscale.rate_registry", "nni_archscale.torch_layer.rate_rules",
         "nni_archscale.space_names", "nni_archscale.run_errors")

#: exact text replacements for mentions no rule above can see (a bare file name whose folder the row names)
LITERALS = [
    ("README.md", "(`rule_variants.py`, `pooled_errors.py`", "(`score_variants.py`, `pooled_errors.py`"),
]

#: files whose slash paths name files at past commits and must stay as they are (provenance.RULE_PATHS is read
#: with ``git show COMMIT:PATH`` for the commit a run recorded)
KEEP_PATHS = {"nni_archscale/provenance.py", "nni_archscale/experiments/held_out.py"}

#: what is rewritten: tracked (or new, not ignored) text files under these, never reports/
SCOPE = ("nni_archscale/", "symbolic/", "tests/", "examples/", "benchmarks/", "scripts/", "docs/", "README.md",
         "pyproject.toml")
TEXT_SUFFIXES = (".py", ".md", ".sh", ".toml", ".txt", ".cfg", ".ini", ".rst", ".yml", ".yaml")
SELF = "scripts/relayout.py"
TOPS = ("nni_archscale", "symbolic")


# --------------------------------------------------------------------------------------------------- helpers
def mod_path(module: str, root: Path = ROOT) -> Path | None:
    """The file of ``module`` in the tree (``a/b.py`` or ``a/b/__init__.py``), or None."""
    base = root.joinpath(*module.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def module_of(path: str) -> str | None:
    """The dotted module of a repository path under a top package (``nni_archscale/x/__init__.py`` -> ``...x``)."""
    if not path.endswith(".py") or not path.startswith(tuple(t + "/" for t in TOPS)):
        return None
    parts = path[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(module: str, path: str) -> str:
    return module if path.endswith("/__init__.py") else module.rpartition(".")[0]


def rel_path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def git(*args: str, check: bool = True) -> str:
    res = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed: {res.stderr.strip()}")
    return res.stdout


def tracked(path: str) -> bool:
    return bool(git("ls-files", "--", path).strip())


def scope_files() -> list[str]:
    out = git("ls-files", "-z", "--cached", "--others", "--exclude-standard")
    files = sorted({f for f in out.split("\0") if f})
    keep = []
    for f in files:
        if f == SELF or not (ROOT / f).is_file():
            continue
        if not any(f == s or (s.endswith("/") and f.startswith(s)) for s in SCOPE):
            continue
        if f.endswith(TEXT_SUFFIXES):
            keep.append(f)
    return keep


# --------------------------------------------------------------------------------------------------- the plan
class Plan:
    """Which table entries apply in this tree, and the name of every module before and after."""

    def __init__(self) -> None:
        self.entries: dict[str, str] = {}  # old module -> new module, the entries that apply now
        self.pending_moves: list[tuple[str, str]] = []
        self.pending_merges: list[tuple[str, str]] = []
        self.pending_shims: list[str] = []
        self.pending_files = [(a, b) for a, b in FILES if (ROOT / a).is_file() and not (ROOT / b).exists()]
        for old, new in MOVES + MERGES + SHIMS:
            if mod_path(old) is not None and not self._already_package(old, new):
                self.entries[old] = new
                if (old, new) in MOVES:
                    self.pending_moves.append((old, new))
                elif (old, new) in MERGES:
                    self.pending_merges.append((old, new))
                else:
                    self.pending_shims.append(old)
        #: the entries whose old module is still there: only these rewrite a bare ``name.py`` (once the module
        #: has moved, a bare name in text written since means the module under its new name)
        self.pending = set(self.entries)
        for old, new in MOVES + MERGES + SHIMS:
            if old not in self.entries and not self._resolves_after(old):
                self.entries[old] = new  # stale references to a module that is gone: still rewritten
        self.words = {old for old in WORDS if old in self.entries}

    @staticmethod
    def _already_package(old: str, new: str) -> bool:
        """``old`` is a package now that holds ``new`` (``nni_archscale.rules`` after the move): done."""
        p = mod_path(old)
        return p is not None and p.name == "__init__.py" and new.startswith(old + ".")

    def _resolves_after(self, old: str) -> bool:
        """Whether ``old`` names a module once the pending moves are done (a package made for the moves counts)."""
        if old in PACKAGES or any(new.startswith(old + ".") for _, new in self.pending_moves):
            return True
        p = mod_path(old)
        return p is not None and old not in {o for o, _ in self.pending_moves}

    def new_module(self, module: str) -> str:
        """Where ``module`` (or a name inside it) lives after the moves: the longest applying entry wins."""
        parts = module.split(".")
        for i in range(len(parts), 0, -1):
            head = ".".join(parts[:i])
            if head in self.entries:
                return ".".join([self.entries[head], *parts[i:]])
        return module

    def is_module_before(self, module: str) -> bool:
        return module in self.entries or mod_path(module) is not None

    def file_module_after(self, path: str) -> tuple[str | None, str]:
        """(module, path) a file has after the moves."""
        mod = module_of(path)
        for old, new in self.pending_files:
            if path == old:
                return None, new
        if mod is not None and mod in dict(self.pending_moves):
            new = dict(self.pending_moves)[mod]
            return new, rel_path(new)
        return mod, path


# --------------------------------------------------------------------------------------------------- rewriting
class Protected:
    """Replacement texts kept out of later passes: each rewritten span becomes a placeholder until the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def put(self, text: str) -> str:
        self.texts.append(text)
        return f"\0{len(self.texts) - 1}\0"

    def restore(self, text: str) -> str:
        while "\0" in text:
            text = re.sub(r"\0(\d+)\0", lambda m: self.texts[int(m.group(1))], text)
        return text


def relative_spec(target: str, package: str) -> str | None:
    """``from <spec> import`` for ``target`` seen from ``package`` (None when they lie in different tops)."""
    t, p = target.split("."), package.split(".")
    if t[0] != p[0]:
        return None
    common = 0
    while common < min(len(t), len(p)) and t[common] == p[common]:
        common += 1
    return "." * (len(p) - common + 1) + ".".join(t[common:])


def resolve_spec(spec: str, package: str) -> str | None:
    """The absolute module a ``from`` spec names in ``package`` (None when it is not relative and not ours)."""
    if not spec.startswith("."):
        return spec if spec.split(".")[0] in TOPS else None
    dots = len(spec) - len(spec.lstrip("."))
    base = package.split(".")
    if dots - 1 > len(base) - 1:
        return None
    base = base[: len(base) - (dots - 1)]
    rest = spec[dots:]
    return ".".join(base + ([rest] if rest else []))


IMPORT_FROM = re.compile(
    r"^(?P<indent>[ \t]*)from[ \t]+(?P<spec>\.+[\w.]*|[A-Za-z_][\w.]*)[ \t]+import[ \t]+"
    r"(?P<names>\([^)]*\)[^\n]*|[^\n]*)$", re.M)
IMPORT_PLAIN = re.compile(r"^(?P<indent>[ \t]*)import[ \t]+(?P<mod>(?:nni_archscale|symbolic)(?:\.\w+)*)\b", re.M)


def split_names(names: str) -> tuple[list[tuple[str, str | None]], str]:
    """The imported names with their aliases, and a trailing comment of a one-line import."""
    comment = ""
    if names.startswith("("):
        close = names.index(")")
        body = "\n".join(line.split("#")[0] for line in names[1:close].splitlines())
        after = names[close + 1:].strip()
        comment = ("  " + after) if after else ""
    else:
        body, _, comment = names.partition("#")
        comment = ("  #" + comment) if _ else ""
        body = body.strip()
    out = []
    for item in body.replace("\n", " ").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, alias = item.partition(" as ")
        out.append((name.strip(), alias.strip() or None))
    return out, comment


def realign(old: str, new: str, delta: int) -> str:
    """Continuation lines of a parenthesised import that were aligned after its ``(`` move with it."""
    lines = new.split("\n")
    if delta == 0 or len(lines) == 1 or "(" not in lines[0]:
        return new
    column = old.split("\n")[0].index("(") + 1
    for i in range(1, len(lines)):
        indent = len(lines[i]) - len(lines[i].lstrip(" "))
        if indent == column and lines[i].strip():
            lines[i] = " " * max(column + delta, 0) + lines[i].lstrip(" ")
    return "\n".join(lines)


class Rewriter:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.text_rules = self._text_rules()

    # .......................................................................... imports (Python files)
    def imports(self, text: str, old_mod: str | None, new_mod: str | None, old_path: str, new_path: str,
                prot: Protected) -> str:
        old_pkg = package_of(old_mod, old_path) if old_mod else None
        new_pkg = package_of(new_mod, new_path) if new_mod else None
        moved = old_pkg != new_pkg
        plan = self.plan

        def spec_for(target: str, relative: bool) -> str:
            if relative and new_pkg is not None:
                spec = relative_spec(target, new_pkg)
                if spec is not None:
                    return spec
            return target

        def from_stmt(m: re.Match) -> str:
            spec, names = m.group("spec"), m.group("names")
            relative = spec.startswith(".")
            if relative and old_pkg is None:
                return m.group(0)
            target = resolve_spec(spec, old_pkg) if relative else resolve_spec(spec, "")
            if target is None:
                return m.group(0)
            items, comment = split_names(names)
            module_items = [(n, a) for n, a in items if f"{target}.{n}" in plan.entries
                            and plan.entries[f"{target}.{n}"] != target]
            new_target = plan.new_module(target)
            if not module_items:
                if new_target == target and not (relative and moved):
                    return prot.put(m.group(0))
                a, b = m.start("spec") - m.start(), m.end("spec") - m.start()
                new_spec = spec_for(new_target, relative)
                stmt = m.group(0)[:a] + new_spec + m.group(0)[b:]
                return prot.put(realign(m.group(0), stmt, len(new_spec) - len(spec)))
            # ``from pkg import module``: each moved module from its new package, bound as before (or by its new
            # name where the old one is a distinctive word, rewritten everywhere in the file)
            lines, rest = [], [(n, a) for n, a in items if (n, a) not in module_items]
            indent = m.group("indent")
            if rest:
                listed = ", ".join(n if a is None else f"{n} as {a}" for n, a in rest)
                lines.append(f"{indent}from {spec_for(new_target, relative)} import {listed}{comment}")
                comment = ""
            for n, a in module_items:
                old_full = f"{target}.{n}"
                new_full = plan.entries[old_full]
                parent, _, base = new_full.rpartition(".")
                bound = a or (base if (old_full in plan.words or base == n) else n)
                alias = "" if bound == base else f" as {bound}"
                lines.append(f"{indent}from {spec_for(parent, relative)} import {base}{alias}{comment}")
                comment = ""
            return prot.put("\n".join(lines))

        def plain_stmt(m: re.Match) -> str:
            mod = m.group("mod")
            new = plan.new_module(mod)
            if new == mod:
                return prot.put(m.group(0))
            return prot.put(f"{m.group('indent')}import {new}")

        text = IMPORT_FROM.sub(from_stmt, text)
        return IMPORT_PLAIN.sub(plain_stmt, text)

    # .......................................................................... Sphinx references relative to a file
    def sphinx_relative(self, text: str, old_mod: str | None, new_mod: str | None, old_path: str, new_path: str,
                        prot: Protected) -> str:
        if old_mod is None:
            return text
        old_pkg, new_pkg = package_of(old_mod, old_path), package_of(new_mod, new_path)
        plan = self.plan

        def sub(m: re.Match) -> str:
            ref = m.group("ref")
            dots = len(ref) - len(ref.lstrip("."))
            target = resolve_spec(ref, old_pkg)
            if target is None:
                return m.group(0)
            parts = target.split(".")
            head = None
            for i in range(len(parts), 0, -1):
                cand = ".".join(parts[:i])
                if plan.is_module_before(cand):
                    head = i
                    break
            if head is None or head <= len(old_pkg.split(".")):
                return m.group(0)  # a name in the file's own package's __init__, or not a module: leave it
            new_target = plan.new_module(target)
            if new_target == target and old_pkg == new_pkg:
                return m.group(0)
            new_parent = plan.new_module(".".join(parts[:head])).rpartition(".")[0]
            if new_parent == new_pkg and dots == 1:
                new_ref = "." + new_target[len(new_pkg) + 1:]
            else:
                new_ref = new_target
            return prot.put(f"`{m.group('tilde')}{new_ref}`")

        return re.sub(r"`(?P<tilde>~?)(?P<ref>\.+[A-Za-z_][\w.]*)`", sub, text)

    # .......................................................................... names and paths in any text
    def _text_rules(self) -> list[tuple[re.Pattern, dict[str, str]]]:
        plan = self.plan
        rules: list[tuple[str, dict[str, str]]] = []
        full_paths, partial_paths, bare, dotted, partial_dotted, words = {}, {}, {}, {}, {}, {}
        for old, new in plan.entries.items():
            old_p, new_p = rel_path(old), rel_path(new)
            full_paths[old_p] = new_p
            top = old.split(".")[0]
            if old.count(".") >= 2:
                partial_paths[old_p.split("/", 1)[1]] = new_p.split("/", 1)[1]
                partial_dotted[old.split(".", 1)[1]] = new.split(".", 1)[1] if new.startswith(top + ".") else new
            dotted[old] = new
            if old in plan.words:
                words[old.rpartition(".")[2]] = new.rpartition(".")[2]
        for old, new in plan.pending_files:
            full_paths[old] = new
        # a bare ``name.py``: only where every module of that name (before the moves) goes to one place
        by_base: dict[str, set[str]] = {}
        for top in TOPS:
            for p in (ROOT / top).rglob("*.py"):
                mod = module_of(p.relative_to(ROOT).as_posix())
                if mod:
                    by_base.setdefault(p.stem, set()).add(plan.new_module(mod))
        for old, new in plan.entries.items():
            base = old.rpartition(".")[2]
            if old not in plan.pending or by_base.get(base, {new}) | {new} != {new} or old == new:
                continue  # another module of that name goes elsewhere: a bare ``name.py`` is ambiguous
            old_dir, new_dir = old.rpartition(".")[0], new.rpartition(".")[0]
            if old_dir == new_dir:
                bare[base + ".py"] = new.rpartition(".")[2] + ".py"
            else:
                bare[base + ".py"] = rel_path(new).split("/", 1)[1]
        for table, fmt in ((full_paths, r"(?<![\w.-]){}(?![\w])"), (partial_paths, r"(?<![\w/.-]){}(?![\w])"),
                           (bare, r"(?<![\w/.-]){}(?![\w])"), (dotted, r"(?<![\w.]){}(?!\w)"),
                           (partial_dotted, r"(?<![\w./]){}(?!\w)"), (words, r"(?<![\w./-]){}(?![\w-])(?!\.py\b)")):
            if table:
                alternatives = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
                rules.append((fmt.format(f"(?:{alternatives})"), table))
        return [(re.compile(p), t) for p, t in rules]

    def names(self, text: str, prot: Protected, keep_paths: bool) -> str:
        for i, (pattern, table) in enumerate(self.text_rules):
            is_path = any(k.endswith(".py") for k in table)
            if keep_paths and is_path:
                continue
            text = pattern.sub(lambda m: prot.put(table[m.group(0)]), text)
        return text

    def rewrite(self, text: str, old_path: str, new_path: str) -> str:
        prot = Protected()
        old_mod = module_of(old_path)
        new_mod = self.plan.file_module_after(old_path)[0]
        if old_path.endswith(".py"):
            text = self.imports(text, old_mod, new_mod, old_path, new_path, prot)
            text = self.sphinx_relative(text, old_mod, new_mod, old_path, new_path, prot)
        text = self.names(text, prot, keep_paths=old_path in KEEP_PATHS)
        for path, old, new in LITERALS:
            if path == old_path:
                text = text.replace(old, new)
        return prot.restore(text)


# --------------------------------------------------------------------------------------------------- moving
def merged_body(source: Path) -> str:
    """The merged module's definitions: everything after its imports, under a comment naming what it holds."""
    text = source.read_text(encoding="utf-8")
    doc = re.match(r'\s*"""(.*?)(?:\n|""")', text, re.S)
    first = doc.group(1).strip() if doc else ""
    lines = text.splitlines()
    last_import = max((i for i, line in enumerate(lines) if re.match(r"(from \S+ import|import )", line)), default=-1)
    body = "\n".join(lines[last_import + 1:]).strip("\n")
    return f"\n\n# {'-' * 100}\n# {first}\n\n{body}\n"


def move(old: str, new: str, dry: bool) -> None:
    src, dst = ROOT / old, ROOT / new
    print(f"move   {old} -> {new}")
    if dry:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if tracked(old):
        git("mv", old, new)
    else:
        os.rename(src, dst)


def remove(path: str, dry: bool) -> None:
    print(f"remove {path}")
    if dry:
        return
    if tracked(path):
        git("rm", "-q", "-f", path)
    else:
        (ROOT / path).unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="list the moves and the files that would change")
    args = parser.parse_args(argv)
    plan = Plan()
    rewriter = Rewriter(plan)
    files = scope_files()
    contents = {f: (ROOT / f).read_text(encoding="utf-8") for f in files}
    merged = {old: new for old, new in plan.pending_merges}
    for old, new in plan.pending_merges:  # the merged module's body joins its new home before the rewrite
        target = rel_path(new)
        contents[target] = contents[target].rstrip("\n") + "\n" + merged_body(ROOT / rel_path(old))
    outputs: dict[str, str] = {}
    for f, text in contents.items():
        mod = module_of(f)
        if mod in merged or mod in plan.pending_shims:
            continue
        new_path = plan.file_module_after(f)[1]
        outputs[new_path] = rewriter.rewrite(text, f, new_path)
    # the moves themselves
    for package, doc in PACKAGES.items():
        init = ROOT / rel_path(package).replace(".py", "/__init__.py")
        if not init.exists():
            print(f"create {init.relative_to(ROOT)}")
            if not args.dry_run:
                init.parent.mkdir(parents=True, exist_ok=True)
                init.write_text(doc, encoding="utf-8")
                git("add", str(init.relative_to(ROOT)))
    for old, new in plan.pending_moves:
        move(rel_path(old), rel_path(new), args.dry_run)
    for old, new in plan.pending_files:
        move(old, new, args.dry_run)
    for old, _ in plan.pending_merges:
        remove(rel_path(old), args.dry_run)
    for old in plan.pending_shims:
        remove(rel_path(old), args.dry_run)
    changed = 0
    for path, text in sorted(outputs.items()):
        source = next(f for f in contents if plan.file_module_after(f)[1] == path)
        if text != contents[source] or source != path:
            changed += 1
            if args.dry_run:
                print(f"edit   {path}")
            elif text != (ROOT / path).read_text(encoding="utf-8"):
                (ROOT / path).write_text(text, encoding="utf-8")
    print(f"{len(plan.pending_moves) + len(plan.pending_files)} moved, {len(plan.pending_merges)} merged, "
          f"{len(plan.pending_shims)} shims removed, {changed} files rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
