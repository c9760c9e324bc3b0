"""Reading a file the user names without hanging or filling memory.

A path on the command line may be anything: a named pipe (FIFO) blocks a read until some other process writes
to it, which is forever; a terminal waits for typing; a device such as ``/dev/zero`` never ends, and a file
under ``/proc`` reports a size of 0 whatever it holds. :func:`read_regular_file` follows symlinks, refuses
anything but a regular file before reading a byte (it opens without blocking and checks the open file, so a
path swapped for a pipe after a check cannot block either), and reads at most ``limit + 1`` bytes, so a file
larger than the limit is refused, never read whole. Pure Python: this module imports neither torch nor NNI.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import InputFileError, shorten

#: How much of a path messages echo (a path's end names the file).
PATH_ECHO = 200
#: What a path is, by its ``stat`` file type, for messages (a regular file needs no name).
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
_CHUNK = 1 << 20


def kind_of(mode: int) -> str | None:
    """What a file of ``st_mode`` ``mode`` is when it is not a regular file ("a named pipe (FIFO)"...); None
    for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def file_kind(path: str | Path) -> str | None:
    """What ``path`` is (symlinks followed) when it exists and is not a regular file; None for a regular file or
    a path that does not exist (or cannot be examined: reading it then says why)."""
    try:
        return kind_of(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None


def not_regular_message(what: str, path: str | Path, kind: str) -> str:
    """The message for ``what`` at ``path`` that is ``kind``, not a regular file, and what to pass instead."""
    why = "" if kind == "a directory" else " (reading it could block or never end)"
    return f"{what} {shorten(str(path), PATH_ECHO)} is {kind}, not a regular file{why}; pass the path of a regular file"


def read_regular_file(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), if it holds at most ``limit`` bytes.

    Raises :class:`~nni_archscale.errors.InputFileError` for anything but a regular file (``kind`` set), before
    reading, and for a file of more than ``limit`` bytes (``size`` set when known), after reading at most
    ``limit + 1`` bytes; ``OSError`` (``FileNotFoundError``, ``PermissionError``...) as ``open`` raises it.
    ``what`` names the file in messages ("JSON graph file").
    """
    real = os.path.realpath(path)
    kind = file_kind(real)
    if kind is not None:  # a socket cannot even be opened: name it before trying
        raise InputFileError(not_regular_message(what, path, kind), kind=kind)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    fd = os.open(real, flags)  # O_NONBLOCK: opening a pipe returns at once, without a writer
    try:
        info = os.fstat(fd)  # the file opened, not the path: nothing can be swapped in between
        kind = kind_of(info.st_mode)
        if kind is not None:
            raise InputFileError(not_regular_message(what, path, kind), kind=kind)
        if info.st_size > limit:
            raise _too_large(what, path, limit, info.st_size)
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > limit:  # st_size said less (a growing file, /proc): refused without reading on
            raise _too_large(what, path, limit, None)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _too_large(what: str, path: str | Path, limit: int, size: int | None) -> InputFileError:
    held = f"{size:,} bytes, more than the {limit:,}" if size is not None else f"more than the {limit:,} bytes"
    return InputFileError(f"{what} {shorten(str(path), PATH_ECHO)} holds {held} read; is it the right file?",
                          size=size)


def out_dir_problem(path) -> str | None:
    """What is wrong with ``path`` as a search's output folder, or None: it must name a folder of its own, not be
    empty (which means the current directory) nor the current directory itself, where the run's files
    (results.csv, summary.json, trials.jsonl, run.json, nni/) would mix with whatever is there."""
    text = str(path) if path is not None else ""
    if not text.strip():
        return "got an empty path, which means the current directory"
    try:
        here = Path.cwd().resolve()
        if Path(text).expanduser().resolve() == here:
            return f"got {text!r}, the current directory itself ({here})"
    except OSError:  # the current directory was removed: any other folder is fine
        pass
    return None


#: what a search writes into its ``--out`` (the refusal names it)
SEARCH_FILES = "the search's files (results.csv, summary.json, trials.jsonl, run.json, nni/)"


def out_dir_refusal(path, flag: str = "--out", holds: str = "the results", example: str = "out/run1") -> str | None:
    """:func:`out_dir_problem` as the one sentence every command refuses an output folder with (None: no
    problem): ``{flag} must name a folder of its own for {holds}, {problem}; pass e.g. {flag} {example}``."""
    problem = out_dir_problem(path)
    return None if problem is None else (f"{flag} must name a folder of its own for {holds}, {problem}; pass e.g. "
                                         f"{flag} {example}")


def output_directory(text: str | Path, flag: str = "--out", *, force: bool = False, resume: bool = False) -> Path:
    """The folder a command writes into, checked before anything runs: :func:`out_dir_problem`'s refusals, a path
    that exists and is not a folder, and a folder that already holds files unless ``force`` (the caller overwrites
    them) or ``resume`` (the caller continues the run they hold): a default output never lands on committed
    results or on the files beside the user."""
    refusal = out_dir_refusal(text, flag)
    if refusal:
        raise InputFileError(refusal)
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise InputFileError(f"{flag} {shorten(str(text), PATH_ECHO)} exists and is not a folder; name a folder")
    if path.is_dir() and not (force or resume) and any(path.iterdir()):
        held = sorted(p.name for p in path.iterdir())
        shown = ", ".join(held[:4]) + (f" and {len(held) - 4} more" if len(held) > 4 else "")
        raise InputFileError(f"{flag} {shorten(str(text), PATH_ECHO)} already holds results ({shown}); pass "
                             f"--force to overwrite them, --resume where the command can continue them, or "
                             f"another {flag}")
    return path
