"""The names of what `audioembed embed` writes in OUT, defined once (writers and readers both use these)."""

from __future__ import annotations

from pathlib import Path

NPY = ".npy"  # tree: OUT/<relative stem>.npy, one clip embedding (D,) per input
FRAMES = ".frames.npy"  # tree --frames: OUT/<stem>.frames.npy (T, D)
TIMESTAMPS = ".timestamps.npy"  # tree --frames: OUT/<stem>.timestamps.npy (T,), ms
FRAME_SUFFIXES = (FRAMES, TIMESTAMPS)
EMBEDDINGS = "embeddings.npy"  # --stack: the (N, D) matrix
INDEX_CSV = "index.csv"  # --stack: row -> input path
RECORD = "audioembed.json"  # the model that wrote OUT (tree and --stack), the tree's sources, --stack's manifest
PARTS = ".audioembed-parts"  # --stack: one .npy per finished file, until the stack is assembled from them


def frame_files(clip: Path) -> tuple[Path, Path]:
    """x.npy -> (x.frames.npy, x.timestamps.npy), beside it."""
    stem = clip.with_suffix("")
    return stem.with_name(stem.name + FRAMES), stem.with_name(stem.name + TIMESTAMPS)
