"""Kept for imports of `audioembed.distributed`: the Ray Data code lives in integrations/ray.py."""

from .integrations.ray import (  # noqa: F401
    BLOCKS_PER_WORKER,
    MAX_ROWS_PER_SHARD,
    EmbedBatch,
    list_inputs,
    run,
)
