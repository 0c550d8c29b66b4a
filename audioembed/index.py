"""The old import path: `audioembed.index` is `audioembed.outputs.index` (the module itself, so patches reach it)."""

import sys

from .outputs import index

sys.modules[__name__] = index
