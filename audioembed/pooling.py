"""Clip pooling, defined once: a clip's embedding is the max of its frame embeddings plus their mean (BYOL-A's).

Frames arrive a window at a time (embedder.py), so the pool grows as they come: a float64 sum, the running max
and the count. nn/encoder.py's `AudioEncoder.pool` mirrors it in torch for training (tests/test_embedder.py
holds the two equal), as nn/frontend.py mirrors mel.py.
"""

from __future__ import annotations

import numpy as np


class Pool:
    """Max + mean over (T, D) frames added in any number of parts, in any order."""

    def __init__(self) -> None:
        self.sum: np.ndarray | None = None  # float64: an hour of frames is averaged without float32 rounding
        self.max: np.ndarray | None = None
        self.count = 0

    def add(self, frames: np.ndarray) -> None:
        s, m = frames.sum(axis=0, dtype=np.float64), frames.max(axis=0)
        self.sum = s if self.sum is None else self.sum + s
        self.max = m if self.max is None else np.maximum(self.max, m)
        self.count += len(frames)

    def embedding(self) -> np.ndarray:
        """(D,) float32: max + mean of every frame added."""
        return (self.max + self.sum / self.count).astype(np.float32)
