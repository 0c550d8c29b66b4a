"""Read what `audioembed embed` wrote as a searchable index: names plus an (N, D) matrix.

One reader per output format, tried in order: --stack files, embed-cluster's Parquet shards, a tree of .npy.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import outputs
from .errors import AudioEmbedError, IndexFormatError, install_hint
from .outputs import same_model  # noqa: F401  (search compares records with it)

FRAME_SUFFIXES = (".frames.npy", ".timestamps.npy")
MODEL_FILE = "audioembed.json"  # OUT/audioembed.json: Embedder.model_record() of the model that wrote a tree or stack


def read_npy(path: Path, ndim: tuple[int, ...] = (1, 2), mmap: bool = False) -> np.ndarray:
    """A .npy of real numbers, checked before anything is allocated: a regular file (a FIFO would hang), a plain
    int or float dtype (no strings, records, dates or pickles), and a header no larger than the file."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO opens without waiting for a writer
    except OSError as exc:
        raise IndexFormatError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IndexFormatError(f"{path}: not a regular file (a pipe, device or socket); remove it or move it away")
        try:
            version = np.lib.format.read_magic(f)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f".npy format version {version} is not supported")
            shape, fortran, dtype = read_header[version](f)
        except (ValueError, EOFError, SyntaxError) as exc:
            hint = "; a .npz archive saved as .npy? save one array with np.save" if f.seek(0) == 0 and f.read(2) == b"PK" else ""
            raise IndexFormatError(f"{path}: not a .npy array ({exc}){hint}") from None
        if dtype.kind not in "fiu" or dtype.fields is not None or dtype.subdtype is not None:
            raise IndexFormatError(f"{path}: holds {dtype} values, not numbers; embeddings are float32 vectors")
        if len(shape) not in ndim:
            raise IndexFormatError(f"{path}: an array of shape {shape}; expected {' or '.join(f'{n}-d' for n in ndim)}")
        offset, count = f.tell(), math.prod(shape)
        size = os.fstat(fd).st_size
        if count * dtype.itemsize > size - offset:
            raise IndexFormatError(f"{path}: its header claims shape {shape} ({count * dtype.itemsize} bytes), "
                                   f"but the file holds {size - offset}: damaged or cut short; write it again")
        order = "F" if fortran else "C"
        if mmap and count:
            return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        return np.fromfile(f, dtype=dtype, count=count).reshape(shape, order=order)


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


def _stack(path: Path) -> Optional[Index]:
    if not (path / "index.csv").is_file() or not (path / "embeddings.npy").is_file():
        return None
    read_npy(path / "embeddings.npy", ndim=(2,), mmap=True)  # checked here; load_stack maps it
    names, vectors = outputs.load_stack(path)
    return Index(names, vectors, path, _model_file(path))


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
        v = read_npy(f, ndim=(1, 2))
        if v.ndim != 1:
            raise IndexFormatError(f"{f}: expected one clip embedding (D,), found shape {v.shape}")
        vectors.append(v)
    if len({v.shape for v in vectors}) > 1:
        raise IndexFormatError(f"{path}: its .npy files have different dimensions {sorted({len(v) for v in vectors})}; "
                               "were they written by different models?")
    model = _model_file(path)  # first: a damaged record is an IndexFormatError
    return Index([f.relative_to(path).as_posix() for f in files], np.stack(vectors), path, model, outputs.read_sources(path))


def _parquet(path: Path) -> Optional[Index]:
    """What `audioembed embed-cluster` wrote: Parquet shards; rows with an error are left out."""
    if not path.is_dir() or not any(path.glob("*.parquet")):
        return None
    try:
        import pyarrow as pa

        from .parquet import read_embeddings
    except ImportError:
        raise IndexFormatError(f"{path}: reading Parquet shards needs pyarrow: {install_hint('ray')}") from None
    try:
        names, vectors = read_embeddings(path)
    except (AttributeError, TypeError, pa.ArrowException) as exc:  # e.g. embeddings of different lengths
        raise IndexFormatError(f"{path}: its shards' embedding column is not one fixed-size list of floats "
                               f"({type(exc).__name__}: {exc}); write the shards again with embed-cluster") from None
    return Index(names, vectors, path, _parquet_model(path))


def _record(data: Any, where: Path) -> dict:
    if not isinstance(data, dict) or not isinstance(data.get("weights_sha256", {}), dict):
        raise IndexFormatError(f"{where}: not a model record (expected a JSON object with model, revision, "
                               "weights_sha256 and dim)")
    return data


def _model_file(path: Path) -> Optional[dict]:
    """The record `audioembed embed` keeps in OUT/audioembed.json (outputs.py reads it), or None when an older
    audioembed wrote OUT without it."""
    try:
        record = outputs.read_model_record(path)
    except (AudioEmbedError, ValueError) as exc:  # outputs.OutputError: a damaged record
        raise IndexFormatError(f"{path / MODEL_FILE}: unreadable model record ({exc}); write the index again") from None
    return None if record is None else _record(record, path / MODEL_FILE)


def _parquet_model(path: Path) -> Optional[dict]:
    """The record in the shards' metadata (parquet.py reads it): None when they have none, an error when two differ."""
    from .parquet import read_record

    record = read_record(path)
    return None if record is None else _record(record, path)


READERS: list[Callable[[Path], Optional[Index]]] = [_stack, _parquet, _tree]


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
