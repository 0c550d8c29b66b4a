"""The old import path: `audioembed.parquet` is `audioembed.outputs.parquet` (the module itself, so patches reach it)."""

import sys

from .outputs import parquet

sys.modules[__name__] = parquet
