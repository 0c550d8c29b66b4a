"""The --stack output: OUT/embeddings.npy (N, D) and OUT/index.csv (row -> input), assembled from one part per
finished file, replaced as one unit under OUT/audioembed.json's manifest; and its reader (resume, `search`)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import shutil
from pathlib import Path

import numpy as np

from ..files import temp_path
from .names import EMBEDDINGS, INDEX_CSV, PARTS, RECORD
from .npy import read_npy
from .record import index_record, read_meta, write_meta
from .searchable import Index
from .tree import Job


def load_stack(out: Path) -> tuple[list[str], np.ndarray]:
    """The --stack files: the input path of each row and the (N, D) matrix, memory-mapped (rows are read
    when used). The one reader of the format (resume and `audioembed search` both use it); raises
    OSError or ValueError when the files are missing, damaged or do not match."""
    paths, matrix, _keys = _load_stack(out)
    return paths, matrix


def _load_stack(out: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    meta = read_meta(out)
    manifest = None if meta is None else meta.get("stack")  # no record at all: a stack from before manifests
    if isinstance(manifest, dict) and manifest.get("state") == "unrecorded":
        meta = manifest = None
    if meta is not None and not (isinstance(manifest, dict) and manifest.get("state") == "complete"):
        raise ValueError(f"{out}: embeddings.npy and index.csv were not finished together (a run stopped while "
                         "replacing them, or another model's run began); run the embed command again")
    index_bytes = (out / INDEX_CSV).read_bytes()
    matrix = np.load(out / EMBEDDINGS, mmap_mode="r")
    if manifest is not None and (
        hashlib.sha256(index_bytes).hexdigest() != manifest.get("index_sha256")
        or os.path.getsize(out / EMBEDDINGS) != manifest.get("embeddings_bytes")
        or matrix.shape != (manifest.get("rows"), manifest.get("dim"))
    ):
        raise ValueError(f"{out}: embeddings.npy and index.csv are not the pair {RECORD} lists (changed or copied "
                         "over separately); run the embed command again with --overwrite")
    text = index_bytes.decode("utf-8", "surrogateescape")  # names as written
    rows = {int(row): path for row, path in list(csv.reader(io.StringIO(text, newline="")))[1:]}
    if matrix.ndim != 2 or sorted(rows) != list(range(len(matrix))):
        raise ValueError(f"{out}: index.csv lists {len(rows)} rows but embeddings.npy holds shape {matrix.shape}")
    keys = manifest.get("inputs") if manifest is not None else None
    if keys is not None and len(keys) != len(matrix):
        raise ValueError(f"{out}: {RECORD} lists {len(keys)} inputs but embeddings.npy holds {len(matrix)} rows")
    return [rows[i] for i in range(len(matrix))], matrix, keys


def read_stack(out: Path, dim: int) -> tuple[np.ndarray | None, dict[str, int]]:
    """An earlier --stack run's matrix and the row of each input (by `row_key`); (None, {}) when there is
    none to reuse."""
    try:
        paths, matrix, keys = _load_stack(out)
    except (OSError, ValueError):  # none yet, or damaged: everything is computed anew
        return None, {}
    if matrix.shape[1] != dim:
        return None, {}  # another model's vectors
    if keys is None:  # written before inputs were recorded by identity: by path, as then
        return matrix, {"path:" + path: row for row, path in enumerate(paths)}
    return matrix, {key: row for row, key in enumerate(keys)}


def row_key(job: Job, rows: dict[str, int]) -> str | None:
    """The key of this job's row in an earlier stack (see read_stack), or None when it has none."""
    for key in (job.key, "path:" + str(job.source)):
        if key in rows:
            return key
    return None


def assemble_stack(out: Path, jobs: list[Job], previous: np.ndarray | None, rows: dict[str, int], dim: int) -> int:
    """embeddings.npy (N, D) from the finished parts and the earlier stack's rows, written row by row so
    memory does not grow with N; index.csv maps each row to its input. Both are written to temp files,
    then replaced as one unit: audioembed.json says "replacing" before the renames and lists the new pair
    (rows, sizes, index.csv's sha256) after them, so a reader never takes half a replacement. Returns N;
    then the parts go. Call it holding OutLock, after claim."""
    stacked = []
    for job in jobs:
        key = row_key(job, rows)
        if job.done() or key is not None:
            stacked.append((job, job.clip if job.done() else rows[key]))
    if not stacked:
        return 0
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": (len(stacked), dim)}
    matrix_tmp, index_tmp = temp_path(out / EMBEDDINGS), temp_path(out / INDEX_CSV)
    try:
        with open(matrix_tmp, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for job, where in stacked:
                try:
                    vector = np.load(where) if isinstance(where, Path) else previous[where]
                except (OSError, ValueError, EOFError) as exc:  # a part cut short by a power loss (parts are not fsynced)
                    raise ValueError(f"{where}: unreadable ({exc}); run again with --overwrite") from exc
                if vector.shape != (dim,):
                    raise ValueError(f"{where}: a vector of shape {vector.shape}, not ({dim},); run again with --overwrite")
                f.write(np.ascontiguousarray(vector, "<f4").tobytes())
            f.flush()
            os.fsync(f.fileno())
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["row", "path"])
        writer.writerows((i, str(job.source)) for i, (job, _) in enumerate(stacked))
        index_bytes = text.getvalue().encode("utf-8", "surrogateescape")  # names as on disk
        with open(index_tmp, "wb") as f:
            f.write(index_bytes)
            f.flush()
            os.fsync(f.fileno())
        meta = read_meta(out) or {}
        meta["stack"] = {"state": "replacing"}
        write_meta(out, meta)
        os.replace(matrix_tmp, out / EMBEDDINGS)
        os.replace(index_tmp, out / INDEX_CSV)
        meta["stack"] = {
            "state": "complete", "rows": len(stacked), "dim": dim, "embeddings_bytes": os.path.getsize(out / EMBEDDINGS),
            "index_sha256": hashlib.sha256(index_bytes).hexdigest(), "inputs": [job.key for job, _ in stacked],
        }
        write_meta(out, meta)
    finally:
        for tmp in (matrix_tmp, index_tmp):
            with contextlib.suppress(OSError):
                tmp.unlink()
    clear_parts(out)
    return len(stacked)


def clear_parts(out: Path) -> None:
    shutil.rmtree(out / PARTS, ignore_errors=True)


def read_index(path: Path) -> Index | None:
    """embeddings.npy and index.csv as an Index, the matrix memory-mapped; None when the pair is not there."""
    if not (path / INDEX_CSV).is_file() or not (path / EMBEDDINGS).is_file():
        return None
    read_npy(path / EMBEDDINGS, ndim=(2,), mmap=True)  # checked here; load_stack maps it
    names, vectors = load_stack(path)
    return Index(names, vectors, path, index_record(path))
