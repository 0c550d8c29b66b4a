"""The Parquet output of `audioembed embed-cluster`: its schema, shard writes, the resume scan, and its readers.

OUT is a folder of shards `audioembed-<run>-<n>.parquet`, one row per input file:
path (string), embedding (fixed_size_list<float32>[D], null on error), sr (int64, the input's rate),
seconds (float64, the input's length), error (string, null on success); with --frames also
frames (list<fixed_size_list<float32>[D]>) and timestamps (list<float64>, ms).
Each shard's schema metadata holds, under the key `audioembed`, the JSON record of the model that wrote
it (`Embedder.model_record()`: model id, revision, weights sha256, dim); that key is the shard's marker.
A name that is not UTF-8 is stored with each undecodable byte as `\\xNN` (Python's backslashreplace).
Only pyarrow is needed here: search and other readers do not need Ray.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import AudioEmbedError, IndexFormatError, install_hint
from .record import checked
from .searchable import Index


METADATA_KEY = b"audioembed"  # schema key-value metadata: {"model": Embedder.model_record()}
SHARD_NAME = re.compile(r"audioembed-[0-9a-f]+-\d+\.parquet")  # what this tool names its shards
PARTIAL_NAME = re.compile(r"\.audioembed-[0-9a-f]+-\d+\.parquet\.partial")  # a shard while it is written
MAGIC = b"PAR1"  # the first bytes pyarrow writes to a Parquet file: the marker of a half-written shard


class OutputError(AudioEmbedError):
    """OUT cannot be resumed as it is: another model's shards, or a shard that cannot be read right now."""


def text(value: str | None) -> str | None:
    """A str Arrow can store: a file name's bytes that are not UTF-8 (surrogates in Python) become `\\xNN`."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # a lone surrogate that no file name produced
            return value.encode("utf-8", "backslashreplace").decode("utf-8")


def schema(dim: int, frames: bool = False, record: dict | None = None):
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
    metadata = None if record is None else {METADATA_KEY: json.dumps({"model": record}, sort_keys=True)}
    return pa.schema(fields, metadata=metadata)


def table(dim: int, rows: Sequence[dict], frames: bool = False, record: dict | None = None):
    """Rows (dicts with the schema's keys; embedding None for an error row) -> a pyarrow Table.

    record: the writing model's `Embedder.model_record()`, kept in the schema metadata.
    """
    import pyarrow as pa

    s = schema(dim, frames, record)
    columns = {}
    for field_ in s:
        values = [r.get(field_.name) for r in rows]
        if field_.name == "embedding":
            columns["embedding"] = _vectors(values, dim)
        elif field_.name == "frames":
            columns["frames"] = pa.array([None if f is None else list(np.asarray(f, np.float32)) for f in values], field_.type)
        elif field_.type == pa.string():
            columns[field_.name] = pa.array([text(v) for v in values], field_.type)
        else:
            columns[field_.name] = pa.array(values, field_.type)
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


def shard_name(run: str, n: int) -> str:
    """The name of shard n of run `run` (hex): `audioembed-<run>-<n>.parquet`."""
    return f"audioembed-{run}-{n:06d}.parquet"


def write_shard(t, out: os.PathLike, name: str, record: dict) -> Path:
    """Write a shard atomically: to `.NAME.partial` beside it, then renamed, so OUT never holds half a shard."""
    import pyarrow.parquet as pq

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target, partial = out / name, out / f".{name}.partial"
    t = t.replace_schema_metadata({METADATA_KEY: json.dumps({"model": record}, sort_keys=True)})
    try:
        pq.write_table(t, partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target


def shards(out: os.PathLike) -> list[Path]:
    """The files of an output folder named as this tool names its shards, sorted (an absent folder has none)."""
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if SHARD_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def describe(record: dict | None) -> str:
    """A model record in one line: `id@revision (512-d, weights model.onnx sha256 1234abcd…)`."""
    if not record:
        return "an unknown model"
    digests = ", ".join(f"{k} {v[:12]}" for k, v in sorted((record.get("weights_sha256") or {}).items()))
    revision = f"@{record['revision']}" if record.get("revision") else ""
    precision = f", {record['precision']}" if record.get("precision", "f32") != "f32" else ""
    return f"{record.get('model')}{revision} ({record.get('dim')}-d{precision}, sha256 {digests or 'none'})"


def _why(exc: BaseException) -> str:
    """An exception in one line (pyarrow's messages span several)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _is_io_error(exc: BaseException) -> bool:
    """An error of the disk or the permissions (errno set: EIO, EACCES...), not of the shard's bytes."""
    return isinstance(exc, OSError) and exc.errno is not None


def _open(path: Path):
    """The shard as a Python file: a failing read keeps its errno (EIO, EACCES) through pyarrow."""
    return open(path, "rb")


def _record_of(pf) -> dict | None:
    """The model record in a shard's footer, or None when it has no audioembed marker."""
    metadata = pf.schema_arrow.metadata or {}
    if METADATA_KEY not in metadata:
        return None
    try:
        record = json.loads(metadata[METADATA_KEY])["model"]
    except (ValueError, KeyError, TypeError):
        return None
    return record if isinstance(record, dict) else None


@dataclass
class Scan:
    """What a resume found in OUT."""
    done: set[str] = field(default_factory=set)  # paths (as stored) in OUT's shards of this run's model
    shards: list[Path] = field(default_factory=list)  # readable shards of this tool
    records: dict[Path, dict] = field(default_factory=dict)  # each readable shard's model record
    notes: list[str] = field(default_factory=list)  # one line per file tidied away or left alone


def scan(out: os.PathLike, record: dict | None = None, overwrite: bool = False) -> Scan:
    """Paths OUT already holds, checked so that a rerun can trust them; tidies what a killed run left.

    - `.audioembed-*.parquet.partial` files (name, and the Parquet magic or nothing written yet) are a
      killed run's half-written shards: removed.
    - A shard of ours is read whole (every column): one whose bytes are damaged is renamed `NAME.damaged`,
      never deleted, and its files are redone.
    - A shard that cannot be read because of the disk or its permissions (EIO, EACCES) stops the scan with
      OutputError: nothing is changed.
    - Parquet files that are not ours (another name, or no audioembed marker) are left alone and noted.
    - Shards written by another model than `record` raise OutputError; with `overwrite` they are removed,
      as are this model's shards (their files are recomputed).
    Only safe while no other run writes into OUT: one run per output folder at a time.
    """
    import pyarrow.parquet as pq

    out = Path(out)
    result = Scan()
    if not out.is_dir():
        return result
    names = sorted(out.iterdir())
    for p in names:
        if PARTIAL_NAME.fullmatch(p.name) and p.is_file() and not p.is_symlink():
            try:
                with open(p, "rb") as f:
                    head = f.read(len(MAGIC))
                if head in (b"", MAGIC):
                    p.unlink()
                    result.notes.append(f"{p}: a shard left half-written by a killed run; removed, its files are redone")
            except OSError as exc:  # it is not in the way: its files are redone either way
                result.notes.append(f"{p}: a half-written shard that cannot be removed now ({_why(exc)}); left alone")
    for p in names:
        if p.suffix != ".parquet" or not p.is_file():
            continue
        if not SHARD_NAME.fullmatch(p.name) or p.is_symlink():
            result.notes.append(f"{p}: not a shard of embed-cluster; left alone (not read, not searched)")
            continue
        try:
            with _open(p) as f:
                pf = pq.ParquetFile(f)
                shard_record = _record_of(pf)
                if shard_record is None:
                    result.notes.append(f"{p}: no audioembed model record in it, so not a shard of embed-cluster; "
                                        "left alone (not read, not searched)")
                    continue
                paths: list[str] = []
                for i in range(pf.num_row_groups):  # every column: a damaged page must show now, not in search
                    paths += pf.read_row_group(i).column("path").to_pylist()
        except Exception as exc:
            if _is_io_error(exc):
                raise OutputError(f"{p}: cannot be read now ({_why(exc)}); nothing was changed: fix the disk or the file's "
                                  "permissions, or move it out of OUT, then rerun") from None
            damaged = p.with_name(p.name + ".damaged")
            try:
                os.replace(p, damaged)
            except OSError as move:
                raise OutputError(f"{p}: damaged ({_why(exc)}) and cannot be set aside ({_why(move)}): "
                                  "move it out of OUT, then rerun") from None
            result.notes.append(f"{p}: damaged ({_why(exc)}); renamed {damaged.name}, its files are "
                                "redone (delete it when you no longer need it)")
            continue
        result.shards.append(p)
        result.records[p] = shard_record
        result.done.update(paths)  # another model's shards: refused or removed below, never skipped over
    others = {json.dumps(r, sort_keys=True) for r in result.records.values() if record is not None and r != record}
    if others and not overwrite:
        first = json.loads(sorted(others)[0])
        raise OutputError(f"{out}: its shards were written by {describe(first)}; this run uses {describe(record)}: "
                          "write to another OUT, or add --overwrite to recompute every file with this model")
    if overwrite and result.shards:
        for p in result.shards:
            try:
                p.unlink()
            except OSError as exc:
                raise OutputError(f"{p}: --overwrite cannot remove it ({_why(exc)}); move it out of OUT, then rerun") from None
        result.notes.append(f"{out}: --overwrite: removed its {len(result.shards)} shard(s); every file is recomputed")
        result.done, result.shards, result.records = set(), [], {}
    return result


def _marked(files: Iterable[Path]):
    """(shard, ParquetFile, record) for each shard of ours that carries the marker; damaged ones raise."""
    import pyarrow.parquet as pq

    for shard in files:
        try:
            pf = pq.ParquetFile(shard)
        except Exception as exc:
            raise IndexFormatError(
                f"{shard}: unreadable Parquet shard ({_why(exc)}); rerun embed-cluster with the same OUT: it sets the "
                "shard aside and redoes its files"
            ) from None
        record = _record_of(pf)
        if record is not None:
            yield shard, pf, record


def read_record(out: os.PathLike) -> dict | None:
    """The model record of OUT's shards (`Embedder.model_record()`), None when it has none; two differ: error."""
    records = {json.dumps(r, sort_keys=True) for _, _, r in _marked(shards(out))}
    if len(records) > 1:
        described = "; ".join(describe(json.loads(r)) for r in sorted(records))
        raise IndexFormatError(f"{out}: its shards were written by different models ({described}); "
                               "rerun embed-cluster with --overwrite to recompute them with one model")
    return json.loads(records.pop()) if records else None


def read_table(out: os.PathLike, columns: list[str] | None = None):
    """Every shard of OUT as one pyarrow Table; a damaged shard is an error that says how to repair it.

    Files that are not embed-cluster shards (another name, no audioembed marker) are not read.
    """
    import pyarrow as pa

    read_record(out)  # refuses a folder that mixes two models' vectors
    tables = []
    for shard, pf, _ in _marked(shards(out)):
        try:
            tables.append(pf.read(columns=columns))
        except Exception as exc:
            raise IndexFormatError(
                f"{shard}: unreadable Parquet shard ({_why(exc)}); rerun embed-cluster with the same OUT: it sets the "
                "shard aside and redoes its files"
            ) from None
    if not tables:
        raise IndexFormatError(f"{out}: no embed-cluster shards (audioembed-*.parquet) here; write them with "
                               "`audioembed embed-cluster`")
    return pa.concat_tables(tables, promote_options="permissive")


def read_embeddings(out: os.PathLike) -> tuple[list[str], np.ndarray]:
    """(paths, (N, D) float32 embeddings) of every file embedded without error, sorted by path: a search index."""
    t = read_table(out, ["path", "embedding", "error"])
    t = t.filter(t.column("error").is_null()).sort_by("path")
    column = t.column("embedding").combine_chunks()
    dim = column.type.list_size
    vectors = column.flatten().to_numpy(zero_copy_only=False).reshape(len(t), dim)
    return t.column("path").to_pylist(), np.ascontiguousarray(vectors, dtype=np.float32)


def read_index(path: Path) -> Index | None:
    """What `audioembed embed-cluster` wrote, as an Index: rows with an error are left out; None without shards."""
    if not shards(path):  # a user's own .parquet (or a FIFO so named) in a tree of .npy is not ours to read
        return None
    try:
        import pyarrow as pa
    except ImportError:
        raise IndexFormatError(f"{path}: reading Parquet shards needs pyarrow: {install_hint('ray')}") from None
    try:
        names, vectors = read_embeddings(path)
    except (AttributeError, TypeError, pa.ArrowException) as exc:  # e.g. embeddings of different lengths
        raise IndexFormatError(f"{path}: its shards' embedding column is not one fixed-size list of floats "
                               f"({type(exc).__name__}: {exc}); write the shards again with embed-cluster") from None
    record = read_record(path)  # None when they have none, an error when two differ
    return Index(names, vectors, path, None if record is None else checked(record, path))
