"""What search reads from any output format: names, an (N, D) matrix, and the model that wrote them.

Its own module so that each format's reader (stack.py, parquet.py, tree.py) builds one without importing index.py,
which imports them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import numpy as np


@dataclasses.dataclass
class Index:
    names: list[str]  # the input file (--stack) or the .npy path relative to the index folder (tree)
    vectors: np.ndarray  # (N, D), possibly memory-mapped
    path: Path
    model: Optional[dict] = None  # Embedder.model_record() of the model that wrote it; None for older indexes
    sources: Optional[dict] = None  # tree: .npy name -> the audio file it came from (OUT/audioembed.json)

    def label(self, row: int) -> str:
        """What search prints for a row: the audio file that made it where known, else the row's name."""
        name = self.names[row]
        return (self.sources or {}).get(name, name)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]
