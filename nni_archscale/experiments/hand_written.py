"""Reports with a part written by hand after the run (a "Reading"): rewriting the generated part keeps it."""

from __future__ import annotations

from pathlib import Path

from ..results import atomic_write_text


def write_keeping_reading(path: Path, text: str, marker: str) -> None:
    """Write the generated report ``text`` to ``path``; when the file there holds ``marker`` (the heading of the
    part written by hand), that part, from the marker to the end, follows the new text after a blank line, as it
    did when it was written."""
    old = path.read_text() if path.exists() else ""
    kept = old[old.index(marker):] if marker in old else ""
    atomic_write_text(path, text + ("\n" + kept if kept else ""))
