"""The core: architecture graphs and their exact path statistics (see docs/design.md, "Layers").

``graph`` (the ``ArchGraph`` type), ``canonical`` (isomorphism), ``formats`` (every text form in and out),
``paths`` (path moments by dynamic programming), ``networks`` (whole networks as chains of blocks),
``files`` (reading a user's file safely). Pure Python: imports neither torch nor NNI, nor the rules.
"""
