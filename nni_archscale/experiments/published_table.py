"""The published NAS-Bench-201 accuracy table: moved to the product (:mod:`nni_archscale.published_table`, which
``archscale fairness`` reads too); re-exported here for the experiments."""

from ..published_table import (ARCH_COLUMN, ENV_VAR, FILE_NAME, PUBLISHED_COLUMNS, PublishedTable,  # noqa: F401
                               default_table_path, find_published_table, read_published)
