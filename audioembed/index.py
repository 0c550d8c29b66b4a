"""Read what `audioembed embed` wrote as a searchable index: names plus an (N, D) matrix.

One reader per output format, tried in order: --stack files, embed-cluster's Parquet shards, a tree of .npy.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import outputs
from .errors import IndexFormatError, install_hint

FRAME_SUFFIXES = (".frames.npy", ".timestamps.npy")


@dataclasses.dataclass
class Index:
    names: list[str]  # the input file (--stack) or the .npy path relative to the index folder (tree)
    vectors: np.ndarray  # (N, D), possibly memory-mapped
    path: Path

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def _stack(path: Path) -> Optional[Index]:
    if not (path / "index.csv").is_file() or not (path / "embeddings.npy").is_file():
        return None
    names, vectors = outputs.load_stack(path)
    return Index(names, vectors, path)


def _tree(path: Path) -> Optional[Index]:
    if not path.is_dir():
        return None
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # e.g. an unfinished --stack run's parts
        files += [Path(root) / n for n in sorted(names) if n.endswith(".npy") and not n.endswith(FRAME_SUFFIXES)]
    if not files:
        raise IndexFormatError(f"{path}: no embeddings in it; write some with `audioembed embed AUDIO... -o {path}`")
    vectors = []
    for f in files:
        v = np.load(f)
        if v.ndim != 1:
            raise IndexFormatError(f"{f}: expected one clip embedding (D,), found shape {v.shape}")
        vectors.append(v)
    if len({v.shape for v in vectors}) > 1:
        raise IndexFormatError(f"{path}: its .npy files have different dimensions {sorted({len(v) for v in vectors})}; "
                               "were they written by different models?")
    return Index([f.relative_to(path).as_posix() for f in files], np.stack(vectors), path)


def _parquet(path: Path) -> Optional[Index]:
    """What `audioembed embed-cluster` wrote: Parquet shards; rows with an error are left out."""
    if not path.is_dir() or not any(path.glob("*.parquet")):
        return None
    try:
        from .parquet import read_embeddings

        names, vectors = read_embeddings(path)
    except ImportError:
        raise IndexFormatError(f"{path}: reading Parquet shards needs pyarrow: {install_hint('ray')}") from None
    return Index(names, vectors, path)


READERS: list[Callable[[Path], Optional[Index]]] = [_stack, _parquet, _tree]


def load_index(path: str | os.PathLike) -> Index:
    """The first reader that recognises `path` reads it; an error says what was expected there."""
    path = Path(path)
    if not path.exists():
        raise IndexFormatError(f"{path}: no such index; write one with `audioembed embed AUDIO... -o {path}`")
    for reader in READERS:
        try:
            index = reader(path)
        except (OSError, ValueError, KeyError) as exc:
            raise IndexFormatError(f"{path}: cannot read this index ({exc})") from exc
        if index is not None:
            if index.vectors.ndim != 2 or not len(index.vectors):
                raise IndexFormatError(f"{path}: the index holds no (N, D) embeddings (shape {index.vectors.shape})")
            return index
    raise IndexFormatError(
        f"{path}: not an index: expected a folder written by `audioembed embed` (tree or --stack) or `embed-cluster`"
    )
