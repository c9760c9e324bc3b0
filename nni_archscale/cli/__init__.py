"""The ``archscale`` command line, the top layer (docs/design.md, "Layers"). Each subcommand lives in its own
module (``*_cmd.py``) and registers itself in :data:`.main.SUBCOMMANDS`; the research's ``experiment`` subcommand
is named there once, as a string."""

from .main import main

__all__ = ["main"]
