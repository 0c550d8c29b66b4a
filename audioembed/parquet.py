"""The Parquet output of `audioembed embed-cluster`: its schema, the resume scan, and a reader.

OUT is a folder of shards (`*.parquet`), one row per input file:
path (string), embedding (fixed_size_list<float32>[D], null on error), sr (int64, the input's rate),
seconds (float64, the input's length), error (string, null on success); with --frames also
frames (list<fixed_size_list<float32>[D]>) and timestamps (list<float64>, ms).
Only pyarrow is needed here: search and other readers do not need Ray.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


def schema(dim: int, frames: bool = False):
    import pyarrow as pa

    fields = [
        ("path", pa.string()),
        ("embedding", pa.list_(pa.float32(), dim)),
        ("sr", pa.int64()),
        ("seconds", pa.float64()),
        ("error", pa.string()),
    ]
    if frames:
        fields += [("frames", pa.list_(pa.list_(pa.float32(), dim))), ("timestamps", pa.list_(pa.float64()))]
    return pa.schema(fields)


def table(dim: int, rows: Sequence[dict], frames: bool = False):
    """Rows (dicts with the schema's keys; embedding None for an error row) -> a pyarrow Table."""
    import pyarrow as pa

    s = schema(dim, frames)
    columns = {}
    for field in s:
        values = [r.get(field.name) for r in rows]
        if field.name == "embedding":
            columns["embedding"] = _vectors(values, dim)
        elif field.name == "frames":
            columns["frames"] = pa.array([None if f is None else list(np.asarray(f, np.float32)) for f in values], field.type)
        else:
            columns[field.name] = pa.array(values, field.type)
    return pa.table(columns, schema=s)


def _vectors(values: list, dim: int):
    """A fixed-size list column straight from one (N, D) float32 buffer, null where a row has none."""
    import pyarrow as pa

    flat = np.zeros((len(values), dim), np.float32)
    missing = np.array([v is None for v in values], bool)
    for i, v in enumerate(values):
        if v is not None:
            flat[i] = v
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.ravel()), dim, mask=pa.array(missing))


def shards(out: os.PathLike) -> list[Path]:
    """The shard files of an output folder, sorted (an absent folder has none)."""
    out = Path(out)
    return sorted(p for p in out.glob("*.parquet") if p.is_file()) if out.is_dir() else []


def finished_paths(out: os.PathLike, removed: list[str] | None = None) -> set[str]:
    """Paths already in OUT. A shard a killed run left half-written (no footer) is deleted: its rows are redone.

    Only safe while no other run writes into OUT: one run per output folder at a time.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    done: set[str] = set()
    for shard in shards(out):
        try:
            paths = pq.read_table(shard, columns=["path"]).column("path").to_pylist()
        except (pa.ArrowInvalid, OSError) as exc:
            shard.unlink()
            if removed is not None:
                removed.append(f"{shard}: unreadable ({exc}), left by a killed run; removed, its files are redone")
            continue
        done.update(paths)
    return done


def read_table(out: os.PathLike, columns: list[str] | None = None):
    """Every shard of OUT as one pyarrow Table; a damaged shard is an error that says how to repair it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = shards(out)
    if not files:
        raise FileNotFoundError(f"{out}: no Parquet shards (*.parquet) here; write them with `audioembed embed-cluster`")
    tables = []
    for shard in files:
        try:
            tables.append(pq.read_table(shard, columns=columns))
        except (pa.ArrowInvalid, OSError) as exc:
            raise OSError(
                f"{shard}: unreadable Parquet shard ({exc}); a killed run leaves one: rerun embed-cluster with the "
                "same OUT to redo its files"
            ) from exc
    return pa.concat_tables(tables, promote_options="permissive")


def read_embeddings(out: os.PathLike) -> tuple[list[str], np.ndarray]:
    """(paths, (N, D) float32 embeddings) of every file embedded without error, sorted by path: a search index."""
    t = read_table(out, ["path", "embedding", "error"])
    t = t.filter(t.column("error").is_null()).sort_by("path")
    column = t.column("embedding").combine_chunks()
    dim = column.type.list_size
    vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(len(t), dim)
    return t.column("path").to_pylist(), np.ascontiguousarray(vectors, dtype=np.float32)
