"""Read what `audioembed embed` wrote as a searchable index: names plus an (N, D) matrix.

One reader per output format, beside its writer, tried in order: --stack files (stack.py), embed-cluster's
Parquet shards (parquet.py), a tree of .npy (tree.py).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Optional

from ..errors import IndexFormatError
from . import parquet, stack, tree  # each format's reader
from .npy import read_npy  # noqa: F401  (audioembed.index.read_npy, as before)
from .record import same_model  # noqa: F401  (search compares records with it)
from .searchable import Index


READERS: list[Callable[[Path], Optional[Index]]] = [stack.read_index, parquet.read_index, tree.read_index]


def load_index(path: str | os.PathLike) -> Index:
    """The first reader that recognises `path` reads it; an error says what was expected there."""
    path = Path(path)
    if not path.exists():
        raise IndexFormatError(f"{path}: no such index; write one with `audioembed embed AUDIO... -o {path}`")
    for reader in READERS:
        try:
            index = reader(path)
        except (OSError, ValueError, KeyError, csv.Error) as exc:  # csv.Error: e.g. a field over csv's size limit
            raise IndexFormatError(f"{path}: cannot read this index ({exc})") from exc
        if index is not None:
            if index.vectors.ndim != 2 or not len(index.vectors):
                raise IndexFormatError(f"{path}: the index holds no (N, D) embeddings (shape {index.vectors.shape})")
            return index
    raise IndexFormatError(
        f"{path}: not an index: expected a folder written by `audioembed embed` (tree or --stack) or `embed-cluster`"
    )
