"""Kept for imports of `audioembed.hf` (and map functions pickled under that name): it lives in
integrations/datasets.py."""

from .integrations.datasets import EmbedColumn, _audio_input  # noqa: F401
