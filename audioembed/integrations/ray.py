"""Embedding on Ray Data: a model actor for `map_batches`, the pipeline around it, and `audioembed embed-cluster`.

files or a manifest -> blocks of paths -> N actors (one Embedder each, loaded once) -> Parquet shards
written by the workers. Ray does the scheduling, retries and spreading over machines; nothing here
schedules anything.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence

import numpy as np
import typer

from .. import audio
from ..outputs import parquet
from ..console import BackendOpt, BatchSizeOpt, ModelOpt, PrecisionOpt, RevisionOpt, err, exit_on_failures, load_embedder
from ..files import find_audio

MAX_ROWS_PER_SHARD = 256  # files per input block = per Parquet shard: what a killed run can lose
BLOCKS_PER_WORKER = 4  # a small job still gives every actor work


class EmbedBatch:
    """Ray Data runs one of these per actor: the Embedder is loaded once per worker, not per batch.

    A batch holds `path` (files every worker can read) or decoded audio as `ray.data.read_audio`
    gives it (`amplitude` (channels, samples) and `sample_rate`, with `path` when include_paths=True).
    A bad input becomes a row with `error` set; the batch itself never fails.
    """

    def __init__(self, model: str | None = None, *, frames: bool = False, record: dict | None = None, **embedder_kwargs: Any):
        """record: the driver's `Embedder.model_record()`; a worker that resolves another model refuses to start."""
        from ..embedder import Embedder
        from ..errors import ModelError

        self.embedder = Embedder(model, **embedder_kwargs)
        self.frames = frames
        self.record = self.embedder.model_record()
        if record is not None and record != self.record:
            raise ModelError(f"{model}: this worker loaded {parquet.describe(self.record)}, the driver "
                             f"{parquet.describe(record)}; give every worker the same model (a pinned --revision, "
                             "or a folder they all read)")

    def __call__(self, batch: dict[str, Any]):
        """batch -> a pyarrow Table in `parquet.schema`."""
        if "amplitude" in batch:
            items = list(batch["amplitude"])
            rates = [int(r) for r in batch["sample_rate"]]
            names = list(batch["path"]) if "path" in batch else [None] * len(items)
        else:  # bytes: a name as on disk, whatever its encoding (run() sends them so)
            items = names = [os.fsdecode(p) if isinstance(p, bytes) else str(p) for p in batch["path"]]
            rates = [None] * len(items)
        rows = [{"path": None if n is None else str(n), **_shape(x, r)} for x, r, n in zip(items, rates, names)]
        try:
            for result in self.embedder.iter_results(items, rates, frames=self.frames):
                row = rows[result.index]
                if result.error is not None:
                    row["error"] = str(result.error)
                    continue
                row["embedding"] = result.embedding
                if self.frames:
                    row["frames"], row["timestamps"] = result.frames.embeddings, result.frames.timestamps
        except Exception as exc:  # the backend itself failed: every unfinished row says so, the job goes on
            for row, item in zip(rows, items):
                if row.get("embedding") is None and row.get("error") is None:
                    row["error"] = f"{audio.describe(item)}: {type(exc).__name__}: {exc}"
        return parquet.table(self.embedder.dim, rows, self.frames, self.record)


def _shape(item: Any, rate: int | None) -> dict:
    """The input's own sample rate and length: from the file header, or from the array."""
    if rate is not None:
        return {"sr": rate, "seconds": np.shape(item)[-1] / rate}
    import soundfile as sf

    try:
        info = sf.info(os.fsencode(item))  # soundfile encodes a str strictly: a name that is not UTF-8 would fail
    except Exception:  # the embedder reports why this file is unreadable
        return {"sr": None, "seconds": None}
    return {"sr": int(info.samplerate), "seconds": info.frames / info.samplerate}


def list_inputs(sources: Sequence[os.PathLike], failures: list[str]) -> list[str]:
    """Absolute paths (workers do not share the driver's cwd) from folders, audio files and manifests.

    A manifest is a text file with one audio path per line; relative lines are relative to its folder.
    """
    found: list[str] = []
    for source in map(Path, sources):
        if source.is_dir():
            found += [os.path.abspath(p) for p in find_audio(source, failures)]
        elif source.suffix.lower() in audio.AUDIO_EXTENSIONS:
            found.append(os.path.abspath(source))
        elif source.is_file():
            try:
                lines = source.read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError) as exc:
                failures.append(f"{source}: cannot read this manifest ({exc})")
                continue
            found += [os.path.abspath(source.parent / line.strip()) for line in lines if line.strip()]
        else:
            failures.append(f"{source}: no such file or folder")
    return list(dict.fromkeys(found))  # a file listed twice is embedded once


def _shard_sink(out: os.PathLike, record: dict):
    """A Ray Datasink: each write task writes its blocks as one shard, atomically, with the model record."""
    import uuid

    import pyarrow as pa
    import ray.data

    run_id = uuid.uuid4().hex[:12]  # a rerun never reuses a killed run's names

    class ShardSink(ray.data.Datasink):
        def write(self, blocks, ctx):
            tables = [ray.data.block.BlockAccessor.for_block(b).to_arrow() for b in blocks]
            tables = [t for t in tables if t.num_rows]
            if tables:
                t = pa.concat_tables(tables, promote_options="permissive")
                parquet.write_shard(t, out, parquet.shard_name(run_id, ctx.task_idx), record)

    return ShardSink()


def run(
    paths: Sequence[str],
    out: os.PathLike,
    *,
    workers: int,
    threads: int,
    record: dict | None = None,
    address: str | None = None,
    frames: bool = False,
    progress: bool = True,
    **embedder_kwargs: Any,
) -> None:
    """Embed `paths` into Parquet shards under OUT with `workers` actors of `threads` cores each.

    record: the model's `Embedder.model_record()` as the driver resolved it (None: resolved here): workers
    check theirs against it, and every shard stores it.
    """
    import pyarrow as pa
    import ray

    if record is None:
        from ..embedder import Embedder

        keys = ("model", "revision", "backend", "device", "precision")
        record = Embedder(**{k: embedder_kwargs[k] for k in keys if k in embedder_kwargs}).model_record()

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a local instance sized to the job; +1 core for the Parquet writes beside the actors
            ray.init(num_cpus=workers * threads + 1, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = progress
    rows = max(1, min(MAX_ROWS_PER_SHARD, math.ceil(len(paths) / (workers * BLOCKS_PER_WORKER))))
    names = [os.fsencode(p) for p in paths]  # bytes: a name that is not UTF-8 travels as it is on disk
    blocks = [pa.table({"path": pa.array(names[i : i + rows], pa.binary())}) for i in range(0, len(names), rows)]
    kwargs = dict(embedder_kwargs, frames=frames, record=record, num_threads=threads, num_workers=threads)
    (
        ray.data.from_arrow(blocks)
        .map_batches(
            EmbedBatch,
            fn_constructor_kwargs=kwargs,
            compute=ray.data.ActorPoolStrategy(size=min(workers, len(blocks))),
            num_cpus=threads,
            batch_size=rows,
            batch_format="numpy",
        )
        .write_datasink(_shard_sink(out, record))
    )


def embed_cluster(
    sources: List[Path] = typer.Argument(..., help="Folders (searched recursively), audio files, or manifests (one path per line)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder of Parquet shards (e.g. vectors.parquet)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Model actors (one Embedder each)."),
    threads: int = typer.Option(os.cpu_count() or 1, "--threads", min=1, help="Cores per actor: model and decode threads."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (default: a local Ray instance)."),
    frames: bool = typer.Option(False, "--frames", help="Also write frames (T, D) and timestamps (ms) columns."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Remove OUT's shards first and recompute every file (e.g. with another model)."),
    model: Optional[str] = ModelOpt,
    revision: Optional[str] = RevisionOpt,
    backend: str = BackendOpt,
    precision: str = PrecisionOpt,
    batch_size: int = BatchSizeOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress output."),
) -> None:
    """Embed on Ray Data (the `ray` extra): Parquet rows path, embedding, sr, seconds, error; resumable."""
    try:
        import pyarrow  # noqa: F401
        import ray  # noqa: F401
    except ImportError:
        from ..errors import install_hint

        err(f"error: embed-cluster needs Ray Data: {install_hint('ray')}")
        raise typer.Exit(2)
    failures: list[str] = []
    paths = list_inputs(sources, failures)
    if not paths:
        err(f"error: no audio files ({', '.join(sorted(audio.AUDIO_EXTENSIONS))}) in {', '.join(map(str, sources))}")
        raise typer.Exit(2)
    if out.exists() and not out.is_dir():
        err(f"error: {out} is a file; OUT is a folder of Parquet shards: choose another name")
        raise typer.Exit(2)
    if model and Path(model).is_dir():  # a local model folder: workers do not share the driver's cwd
        model = os.path.abspath(model)
    # the model the shards will record, resolved here as the workers will (a bad -m fails now, in one line)
    record = load_embedder(model, revision, backend, "cpu", quiet, precision, num_threads=1).model_record()
    try:
        found = parquet.scan(out, record, overwrite=overwrite)
    except parquet.OutputError as exc:
        err(f"error: {exc}")
        raise typer.Exit(2)
    for message in found.notes:
        err(f"warning: {message}")
    todo = [p for p in paths if parquet.text(p) not in found.done]
    if todo:
        run(
            todo, out, workers=workers, threads=threads, record=record, address=address, frames=frames,
            progress=not quiet, model=model, revision=revision, backend=backend, precision=precision,
            batch_size=batch_size,
        )
    wanted = {parquet.text(p) for p in todo}
    table = parquet.read_table(out, ["path", "error"]).to_pydict() if todo else {"path": [], "error": []}
    row_errors = [e for p, e in zip(table["path"], table["error"]) if e is not None and p in wanted]
    failed = failures + row_errors
    err(f"{len(todo) - len(row_errors)} embedded, {len(paths) - len(todo)} skipped (already in {out}), {len(failed)} failed")
    exit_on_failures(failed, f" (bad files are rows with an error in {out})")
