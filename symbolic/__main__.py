"""``python -m symbolic ARGS``: the symbolic verifier, the same command as ``archscale verify ARGS``; with no
arguments, its help (what it checks and how to call it)."""

import sys

from nni_archscale.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["verify", *(sys.argv[1:] or ["--help"])]))
