"""``archscale``: entry point, shared argument types, and the one-line error contract.

Errors the user can fix (:class:`~nni_archscale.errors.ArchScaleError`, bad arguments) print one line to
stderr and exit with status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from typing import Callable, Sequence

from .. import __version__
from ..errors import ArchScaleError, shorten
from ..core.graph import MAX_KERNEL_SIZE
from ..rules.paper import MAX_LEARNING_RATE

#: (name, module path) of every subcommand; a module defines ``add_parser(subparsers)`` and ``run(args)``.
SUBCOMMANDS: tuple[tuple[str, str], ...] = (
    ("inspect", "nni_archscale.cli.inspect_cmd"),
    ("search", "nni_archscale.cli.search_cmd"),
    ("calibrate", "nni_archscale.cli.calibrate_cmd"),
    ("fairness", "nni_archscale.cli.fairness_cmd"),
    ("experiment", "nni_archscale.experiments.experiment_cmd"),  # the research package: its one reference here
    ("verify", "nni_archscale.cli.verify_cmd"),
)


class UsageError(ArchScaleError):
    """Bad command-line arguments."""


#: Arguments that read as (negative or non-finite) numbers, not as options: ``--base-lr -inf`` gives the option
#: the value '-inf', so that its range check names the problem instead of "expected one argument".
NUMBER_LIKE = re.compile(r"^-(\d|\.\d|inf(inity)?$|nan$)", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        for text in ("description", "epilog"):  # "%%" means "%" in every text of this CLI, as in help strings
            if kwargs.get(text) and "%(prog)" not in kwargs[text]:  # (argparse formats only those with %(prog))
                kwargs[text] = kwargs[text].replace("%%", "%")
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NUMBER_LIKE  # argparse's own hook (default: only -1 and -.5)

    def error(self, message: str):  # one line, exit 2, like every other error
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _number_type(convert, accepts, not_a_number: str, out_of_range: str):
    """An argparse type: ``convert`` the text, then require ``accepts(value)``; each failure names what was
    expected and what was given."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {not_a_number}, got {shorten(text)}") from None
        if not accepts(value):
            raise argparse.ArgumentTypeError(f"expected {out_of_range}, got {shorten(text)}")
        return value

    return parse


positive_float = _number_type(float, lambda v: 0 < v < float("inf"), "a positive number", "a positive finite number")
non_negative_float = _number_type(float, lambda v: 0 <= v < float("inf"), "a number >= 0", "a finite number >= 0")
positive_int = _number_type(int, lambda v: v >= 1, "a positive integer", "a positive integer")
non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0", "an integer >= 0")
#: Seeds go to numpy's RandomState (NNI's strategies and samplers), which takes 0..2**32 - 1.
MAX_SEED = 2**32 - 1


def _at_most(parse, limit: float, expected: str):
    """An argparse type: ``parse``, then refuse a value above ``limit`` saying ``expected``."""

    def bounded(text: str):
        value = parse(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {shorten(text)}")
        return value

    return bounded


positive_rate = _at_most(positive_float, MAX_LEARNING_RATE,
                         f"a learning rate of at most {MAX_LEARNING_RATE:,.0f} (nni_archscale.rules.paper.MAX_LEARNING_RATE:"
                         f" a larger rate only diverges, and overflows float32 in the optimizer)")
seed_number = _at_most(non_negative_int, MAX_SEED, f"a seed of at most 2**32 - 1 = {MAX_SEED:,} (numpy's seed range)")
kernel_size_number = _at_most(positive_int, MAX_KERNEL_SIZE,
                              f"a kernel size of at most {MAX_KERNEL_SIZE:,} (nni_archscale.core.graph.MAX_KERNEL_SIZE): "
                              f"the side q of a square kernel, e.g. 3 for 3x3")


class _Renamed(argparse.Action):
    """An option an earlier version had: refused, in one line, naming what replaced it (hidden from --help)."""

    def __init__(self, option_strings, dest, replacement: str = "", **kwargs):
        kwargs.update(nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser, namespace, values, option_string=None):
        raise UsageError(f"{option_string} is gone: {self.replacement}")


def add_renamed(parser: argparse.ArgumentParser, flag: str, replacement: str) -> None:
    """Refuse ``flag`` with a one-line message naming ``replacement``."""
    parser.add_argument(flag, action=_Renamed, replacement=replacement, dest=f"renamed_{flag.strip('-')}")


#: what ``--preset`` became (the init and the rate rule are two choices; see nni_archscale/rules/presets.py)
PRESET_RENAMED = ("give the init as --init (paper, exact, release, standard) and the rate as --rate-rule; --preset X "
                  "is --init X, and --preset standard (He's init at one rate) is --init standard --rate-rule shared")


def add_init_argument(parser: argparse.ArgumentParser, what: str = "") -> None:
    """``--init`` (the choice of :class:`nni_archscale.rules.presets.Init`, default paper) and the refused
    ``--preset``."""
    from ..rules.presets import INITS

    parser.add_argument("--init", choices=INITS, default="paper",
                        help="the init (default paper, eq. 2/4); exact: the paper's plus fixed node-sum scalars that "
                             "keep every cell node at its input's scale; release: the authors' code (its rate rule "
                             "graph then counts paths as that code does); standard: He/Kaiming" + what)
    add_renamed(parser, "--preset", PRESET_RENAMED)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(
        prog="archscale",
        description="Architecture-aware initialisation and learning rates (Chen et al., ICLR 2024) for NAS.",
    )
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    parser.add_argument("--version", action="version", version=f"archscale {__version__}",
                        help="print the installed version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module in SUBCOMMANDS:
        importlib.import_module(module).add_parser(sub)
    _add_debug(parser)
    return parser


DEBUG_HELP = "show tracebacks instead of one-line errors"


def _add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug`` is accepted after any (sub)command too, as well as before it (``main`` reads it from argv)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in set(action.choices.values()):
                if "--debug" not in child._option_string_actions:
                    child.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
                _add_debug(child)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = build_parser().parse_args(argv)
        runner: Callable[[argparse.Namespace], int] = args.run
        return int(runner(args) or 0)
    except ArchScaleError as exc:
        if debug:
            traceback.print_exc()
        else:
            print(f"archscale: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # once, with what to do next when the command said so (search)
        print(f"archscale: interrupted{'; ' + str(exc) if str(exc) else ''}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
