"""Where `audioembed embed` writes: a mirrored tree of .npy files, written atomically, never outside OUT."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import printable
from .files import atomic_file, atomic_save, atomic_write_bytes, find_audio, move_into_place, temp_path

PARTS = ".audioembed-parts"  # --stack: one .npy per finished file, until the stack is assembled from them


@dataclasses.dataclass
class Job:
    source: Path
    clip: Path  # OUT/<relative stem>.npy
    frames: bool
    durable: bool = True  # fsync each file; --stack's parts skip it (~6 ms a file), the assembled stack does not

    @property
    def frame_files(self) -> tuple[Path, Path]:
        stem = self.clip.with_suffix("")
        return stem.with_name(stem.name + ".frames.npy"), stem.with_name(stem.name + ".timestamps.npy")

    def targets(self) -> list[Path]:
        return [*self.frame_files, self.clip] if self.frames else [self.clip]

    def done(self) -> bool:
        return all(os.path.isfile(p) for p in self.targets())  # False, not OSError, for a name too long

    def frames_temp(self) -> Path:
        """Where the Embedder streams this job's frames (iter_results' frames_to); write() renames it into place."""
        path = self.frame_files[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        return temp_path(path)

    def write(self, result) -> None:
        """Write every output to a temp file first, then rename: a crash never leaves half a file."""
        arrays = [result.frames.embeddings, result.frames.timestamps, result.embedding] if self.frames else [result.embedding]
        for path, array in zip(self.targets(), arrays):
            if self.frames and array is result.frames.embeddings and result.frames.file is not None:
                move_into_place(result.frames.file, path, self.durable)  # streamed there while embedding
            else:
                atomic_save(path, array, self.durable)


def plan(
    paths: list[Path], out: Path, frames: bool, stack: bool = False, ignored: list[Path] | None = None
) -> tuple[list[Job], list[str]]:
    """One Job per input file; inputs that are missing or would collide on an output become failures.

    stack: each job writes OUT/.audioembed-parts/<relative stem>.npy, assembled into embeddings.npy at the end.
    ignored: gets the files of scanned folders that are not audio by extension (OUT's own files excepted).
    """
    out_resolved = out.resolve()
    failures: list[str] = []
    candidates: list[tuple[Path, Path]] = []  # (source, path relative to OUT)
    others: list[Path] = []
    for path in paths:
        if path.is_dir():
            candidates += [(f, f.relative_to(path)) for f in find_audio(path, failures, others)]
        elif path.is_file():
            candidates.append((path, Path(path.name)))
        else:
            failures.append(f"{printable(str(path))}: no such file or folder")
    if ignored is not None:
        ignored += [f for f in others if out_resolved not in f.resolve().parents]
    planned = []
    seen: set[tuple] = set()
    for source, rel in candidates:
        clip = (out / PARTS if stack else out) / rel.with_suffix(".npy")
        if out_resolved not in clip.resolve().parents:
            failures.append(f"{printable(str(source))}: output {printable(str(clip))} would be outside {out}; skipped")
            continue
        # One file given twice (x.wav x.wav, or in/ and ./in/) is one job, not a collision with itself.
        key = (_identity(source), _collision_key(clip))
        if key not in seen:
            seen.add(key)
            planned.append(Job(source, clip, frames, durable=not stack))
    # Over every file of the job, not just neighbours: x.wav and x.flac, sub/X.wav and sub/x.wav (one file
    # on a case-insensitive disk), NFC and NFD spellings of a name, or x.frames.wav against x.wav --frames.
    by_key: dict[str, list[Job]] = {}
    for job in planned:
        for target in job.targets():
            by_key.setdefault(_collision_key(target), []).append(job)
    clashes: dict[int, list[Job]] = {}
    for same in by_key.values():
        if len({id(j) for j in same}) > 1:
            for job in same:
                clashes.setdefault(id(job), []).extend(j for j in same if j is not job)
    jobs = []
    for job in planned:
        others = clashes.get(id(job))
        if others:
            sources = sorted({printable(str(j.source)) for j in [job, *others]})
            failures.append(
                f"{printable(str(job.source))}: {len(sources)} inputs map to {printable(str(job.clip))} or its frame "
                f"files ({', '.join(sources)}); rename them or embed them separately"
            )
        else:
            jobs.append(job)
    return jobs, failures


def _identity(path: Path) -> tuple:
    try:
        info = os.stat(path)
        return info.st_dev, info.st_ino
    except OSError:
        return (os.path.realpath(path),)


def _collision_key(path: Path) -> str:
    return unicodedata.normalize("NFC", os.fspath(path)).casefold()


def load_stack(out: Path) -> tuple[list[str], np.ndarray]:
    """The --stack files: the input path of each row and the (N, D) matrix, memory-mapped (rows are read
    when used). The one reader of the format (resume and `audioembed search` both use it); raises
    OSError or ValueError when the files are missing, damaged or do not match."""
    matrix = np.load(out / "embeddings.npy", mmap_mode="r")
    with open(out / "index.csv", newline="", encoding="utf-8", errors="surrogateescape") as f:  # as written
        rows = {int(row): path for row, path in list(csv.reader(f))[1:]}
    if matrix.ndim != 2 or sorted(rows) != list(range(len(matrix))):
        raise ValueError(f"{out}: index.csv lists {len(rows)} rows but embeddings.npy holds shape {matrix.shape}")
    return [rows[i] for i in range(len(matrix))], matrix


def read_stack(out: Path, dim: int) -> tuple[np.ndarray | None, dict[str, int]]:
    """An earlier --stack run's matrix and its row of each input path; (None, {}) when there is none to reuse."""
    try:
        paths, matrix = load_stack(out)
    except (OSError, ValueError):  # none yet, or damaged: everything is computed anew
        return None, {}
    if matrix.shape[1] != dim:
        return None, {}  # another model's vectors
    return matrix, {path: row for row, path in enumerate(paths)}


def assemble_stack(out: Path, jobs: list[Job], previous: np.ndarray | None, rows: dict[str, int], dim: int) -> int:
    """embeddings.npy (N, D) from the finished parts and the earlier stack's rows, written row by row so
    memory does not grow with N; index.csv maps each row to its input. Returns N; then the parts go."""
    stacked = [(job, job.clip if job.done() else rows[str(job.source)]) for job in jobs if job.done() or str(job.source) in rows]
    if not stacked:
        return 0
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": (len(stacked), dim)}
    with atomic_file(out / "embeddings.npy") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for job, where in stacked:
            try:
                vector = np.load(where) if isinstance(where, Path) else previous[where]
            except (OSError, ValueError, EOFError) as exc:  # a part cut short by a power loss (parts are not fsynced)
                raise ValueError(f"{where}: unreadable ({exc}); run again with --overwrite") from exc
            if vector.shape != (dim,):
                raise ValueError(f"{where}: a vector of shape {vector.shape}, not ({dim},); run again with --overwrite")
            f.write(np.ascontiguousarray(vector, "<f4").tobytes())
    write_index(out, [job.source for job, _ in stacked])
    clear_parts(out)
    return len(stacked)


def clear_parts(out: Path) -> None:
    shutil.rmtree(out / PARTS, ignore_errors=True)


def write_index(out: Path, sources: list[Path]) -> None:
    """index.csv: the input file of each row of embeddings.npy."""
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["row", "path"])
    writer.writerows((i, str(s)) for i, s in enumerate(sources))
    atomic_write_bytes(out / "index.csv", text.getvalue().encode("utf-8", "surrogateescape"))  # names as on disk


@contextlib.contextmanager
def progress(total: int, disable: bool, completed: int = 0) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (rich), or nothing. completed: counted before the bar starts (failed plans)."""
    if disable:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    columns = [TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("embed", total=total, completed=completed)
        yield lambda: bar.advance(task)
