"""The tree `audioembed embed` writes: one .npy per input (with --frames, NAME.frames.npy and NAME.timestamps.npy)
mirroring the inputs under OUT, each written atomically and never outside OUT; and its reader, for `search`."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import unicodedata
from pathlib import Path

import numpy as np

from ..errors import IndexFormatError, printable
from ..files import atomic_save, find_audio, move_into_place, temp_path
from .names import FRAME_SUFFIXES, NPY, PARTS, frame_files
from .npy import read_npy
from .record import index_record, read_meta, write_meta
from .searchable import Index


@dataclasses.dataclass
class Job:
    """One input's outputs: its .npy (and frame files) in the tree, or with --stack its part; written atomically."""
    source: Path
    clip: Path  # OUT/<relative stem>.npy
    frames: bool
    durable: bool = True  # fsync each file; --stack's parts skip it (~6 ms a file), the assembled stack does not
    key: str = ""  # --stack: the input's identity (absolute path, size, mtime), which names its part and row

    @property
    def frame_files(self) -> tuple[Path, Path]:
        return frame_files(self.clip)

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
    paths: list[Path], out: Path, frames: bool, stack: bool = False, ignored: list[Path] | None = None,
    notes: list[str] | None = None,
) -> tuple[list[Job], list[str]]:
    """One Job per input file; inputs that are missing or would collide on an output become failures.

    Several inputs each keep their own name under OUT, as `cp -r` does (a/sfx b/music -> OUT/sfx, OUT/music);
    one folder is mirrored into OUT itself; one file with `-o NAME.npy` writes NAME.npy.
    stack: each job writes OUT/.audioembed-parts/<input identity>.npy, assembled into embeddings.npy at the end.
    ignored: gets the files of scanned folders that are not audio by extension (OUT's own files excepted).
    notes: gets a line per group of inputs whose outputs keep their extension to stay apart (x.wav, x.ogg).
    """
    out_resolved = out.resolve()
    failures: list[str] = []
    roots: list[Path] = []
    seen: set[tuple] = set()
    for path in paths:
        if not (path.is_dir() or path.is_file()):
            failures.append(f"{printable(str(path))}: no such file or folder")
        elif _identity(path) not in seen:  # in/ and ./in/ are one input
            seen.add(_identity(path))
            roots.append(path)
    nest = len(roots) > 1
    candidates: list[tuple[Path, Path]] = []  # (source, path relative to OUT)
    others: list[Path] = []
    for path in roots:
        if path.is_dir():
            prefix = Path(os.path.basename(os.path.abspath(path)) or "root") if nest else Path()
            candidates += [(f, prefix / f.relative_to(path)) for f in find_audio(path, failures, others)]
        else:
            candidates.append((path, Path(path.name)))
    if ignored is not None:
        ignored += [f for f in others if out_resolved not in f.resolve().parents]
    unique, seen = [], set()
    for source, rel in candidates:  # one file named twice (x.wav and its folder) is one job: the first name wins
        if _identity(source) not in seen:
            seen.add(_identity(source))
            unique.append((source, rel))
    if stack:  # parts are named by the input's identity: no two inputs share one, whatever their names
        jobs = []
        for source, _ in unique:
            try:
                key = input_key(source)
            except OSError as exc:  # gone since the folder was read
                failures.append(f"{printable(str(source))}: cannot read it ({exc.strerror or exc})")
                continue
            jobs.append(Job(source, out / PARTS / f"{key}{NPY}", frames, durable=False, key=key))
        return jobs, failures
    if len(roots) == 1 and len(unique) == 1 and roots[0].is_file() and out.suffix.lower() == NPY and not out.is_dir():
        return [Job(unique[0][0], out, frames)], failures  # -o bell.npy for one file: that file, not a folder
    planned = []
    for source, rel in unique:
        clip = out / rel.with_suffix(NPY)
        if out_resolved not in clip.resolve().parents:
            failures.append(f"{printable(str(source))}: output {printable(str(clip))} would be outside {out}; skipped")
            continue
        planned.append(Job(source, clip, frames))
    # x.wav and x.ogg (shipped side by side) keep their extension: x.wav.npy, x.ogg.npy, and a note says so.
    renamed = _clashes(planned)
    for group in renamed:
        for job in group:
            rel = job.clip.relative_to(out).with_name(job.source.name)
            job.clip = out / rel.with_name(rel.name + NPY)
    # What still clashes fails, over every file of the job: sub/X.wav and sub/x.wav (one file on a
    # case-insensitive disk), NFC and NFD spellings of a name, or x.frames.wav against x.wav --frames.
    failed = {id(j): group for group in _clashes(planned) for j in group}
    jobs = []
    for job in planned:
        group = failed.get(id(job))
        if group:
            sources = sorted({printable(str(j.source)) for j in group})
            failures.append(
                f"{printable(str(job.source))}: {len(sources)} inputs map to {printable(str(job.clip))} or its frame "
                f"files ({', '.join(sources)}); rename them or embed them separately"
            )
        else:
            jobs.append(job)
    for group in renamed:
        if notes is not None and not any(id(j) in failed for j in group):
            names = ", ".join(printable(str(j.source)) for j in group)
            kept = ", ".join(printable(j.clip.name) for j in group)
            notes.append(f"note: {names} share an output name; their outputs keep the extension ({kept})")
    return jobs, failures


def _clashes(jobs: list[Job]) -> list[list[Job]]:
    """Groups of jobs that would write one file (a clip or a frame file), on any disk."""
    by_key: dict[str, list[Job]] = {}
    for job in jobs:
        for target in job.targets():
            by_key.setdefault(_collision_key(target), []).append(job)
    groups: dict[int, list[Job]] = {}  # joined when they share any target
    for same in by_key.values():
        distinct = list({id(j): j for j in same}.values())
        if len(distinct) > 1:
            merged = {id(j): j for j in distinct}
            for j in distinct:
                merged.update({id(k): k for k in groups.get(id(j), [])})
            group = list(merged.values())
            for j in group:
                groups[id(j)] = group
    unique = {id(g): g for g in groups.values()}
    return [sorted(g, key=lambda j: str(j.source)) for g in unique.values()]


def input_key(source: Path) -> str:
    """An input's identity: its absolute path, size and modification time; a changed or other file differs."""
    info = os.stat(source)
    text = f"{os.path.abspath(source)}\0{info.st_size}\0{info.st_mtime_ns}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def _identity(path: Path) -> tuple:
    try:
        info = os.stat(path)
        return info.st_dev, info.st_ino
    except OSError:
        return (os.path.realpath(path),)


def _collision_key(path: Path) -> str:
    return unicodedata.normalize("NFC", os.fspath(path)).casefold()


def record_sources(out: Path, jobs: list) -> None:
    """Tree mode: which audio file each .npy comes from (its path below OUT -> the input's absolute path), kept in
    OUT/audioembed.json beside the model, so `search` names the audio rather than the vector file."""
    sources = {j.clip.relative_to(out).as_posix(): os.path.abspath(j.source) for j in jobs}
    meta = read_meta(out) or {}
    old = meta.get("sources", {})
    merged = {**old, **sources}
    if merged != old:  # a rerun over the same inputs writes nothing
        meta["sources"] = merged
        write_meta(out, meta)


def read_sources(out: Path) -> dict[str, str]:
    """The tree's .npy -> audio paths that `record_sources` kept; {} for OUT written before they were."""
    meta = read_meta(Path(out))
    sources = (meta or {}).get("sources", {})
    return {k: v for k, v in sources.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(sources, dict) else {}


def read_index(path: Path) -> Index | None:
    """A folder of .npy clip embeddings as an Index (frame files and hidden folders left out); None for a file."""
    if not path.is_dir():
        return None
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # e.g. an unfinished --stack run's parts
        files += [Path(root) / n for n in sorted(names) if n.endswith(NPY) and not n.endswith(FRAME_SUFFIXES)]
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
    model = index_record(path)  # first: a damaged record is an IndexFormatError
    return Index([f.relative_to(path).as_posix() for f in files], np.stack(vectors), path, model, read_sources(path))
