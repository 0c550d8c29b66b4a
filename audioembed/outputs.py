"""Where `audioembed embed` writes: a mirrored tree of .npy files, written atomically, never outside OUT."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import printable
from .files import atomic_save, atomic_write_bytes, find_audio, move_into_place, temp_path

PARTS = ".audioembed-parts"  # --stack: one .npy per finished file, until the stack is assembled from them
RECORD = "audioembed.json"  # in OUT: the model that wrote it (tree and --stack), and --stack's manifest
LOCK = ".audioembed-lock"  # in OUT: one job at a time assembles a stack (fcntl.flock)


class OutputError(ValueError):
    """OUT cannot take this run's outputs as it is (another model's vectors, a damaged record)."""


@dataclasses.dataclass
class Job:
    source: Path
    clip: Path  # OUT/<relative stem>.npy
    frames: bool
    durable: bool = True  # fsync each file; --stack's parts skip it (~6 ms a file), the assembled stack does not
    key: str = ""  # --stack: the input's identity (absolute path, size, mtime), which names its part and row

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
            jobs.append(Job(source, out / PARTS / f"{key}.npy", frames, durable=False, key=key))
        return jobs, failures
    if len(roots) == 1 and len(unique) == 1 and roots[0].is_file() and out.suffix.lower() == ".npy" and not out.is_dir():
        return [Job(unique[0][0], out, frames)], failures  # -o bell.npy for one file: that file, not a folder
    planned = []
    for source, rel in unique:
        clip = out / rel.with_suffix(".npy")
        if out_resolved not in clip.resolve().parents:
            failures.append(f"{printable(str(source))}: output {printable(str(clip))} would be outside {out}; skipped")
            continue
        planned.append(Job(source, clip, frames))
    # x.wav and x.ogg (shipped side by side) keep their extension: x.wav.npy, x.ogg.npy, and a note says so.
    renamed = _clashes(planned)
    for group in renamed:
        for job in group:
            rel = job.clip.relative_to(out).with_name(job.source.name)
            job.clip = out / rel.with_name(rel.name + ".npy")
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


def read_model_record(out: Path) -> dict | None:
    """The model that wrote OUT, as `Embedder.model_record()` gave it (model, revision, weights_sha256, dim),
    from OUT/audioembed.json; None when OUT has none (written before records were kept, or not a folder).
    Readers (resume, `search`) compare it with theirs through `same_model`. Raises OutputError when damaged."""
    meta = _read_meta(Path(out))
    return None if meta is None else meta.get("model")


def same_model(a: dict, b: dict) -> bool:
    """Whether two model records name the same vectors: their weight files' sha256 where both recorded them (a
    model folder may be moved or renamed), else the model id and revision; the dimension always."""
    if a.get("dim") != b.get("dim"):
        return False
    ha, hb = a.get("weights_sha256") or {}, b.get("weights_sha256") or {}
    common = set(ha) & set(hb)
    if common:
        return all(ha[f] == hb[f] for f in common)
    return (a.get("model"), a.get("revision")) == (b.get("model"), b.get("revision"))


def record_sources(out: Path, jobs: list) -> None:
    """Tree mode: which audio file each .npy comes from (its path below OUT -> the input's absolute path), kept in
    OUT/audioembed.json beside the model, so `search` names the audio rather than the vector file."""
    sources = {j.clip.relative_to(out).as_posix(): os.path.abspath(j.source) for j in jobs}
    meta = _read_meta(out) or {}
    old = meta.get("sources", {})
    merged = {**old, **sources}
    if merged != old:  # a rerun over the same inputs writes nothing
        meta["sources"] = merged
        _write_meta(out, meta)


def read_sources(out: Path) -> dict[str, str]:
    """The tree's .npy -> audio paths that `record_sources` kept; {} for OUT written before they were."""
    meta = _read_meta(Path(out))
    sources = (meta or {}).get("sources", {})
    return {k: v for k, v in sources.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(sources, dict) else {}


def describe_model(record: dict) -> str:
    """A model record in a few words: `name@revision (weights 1a2b3c4d5e6f, 512-d)`."""
    name = printable(str(record.get("model"))) + (f"@{printable(str(record['revision']))}" if record.get("revision") else "")
    digests = sorted((record.get("weights_sha256") or {}).values())
    return f"{name} ({'weights ' + str(digests[0])[:12] + ', ' if digests else ''}{record.get('dim')}-d)"


def claim(out: Path, record: dict, overwrite: bool) -> None:
    """Record this run's model in OUT before anything is written there. OUT written by another model is
    refused (its vectors would mix with ours silently), or with overwrite taken over: its stack is stale."""
    meta = _read_meta(out) or {}
    old = meta.get("model")
    if old is not None and not same_model(old, record):
        if not overwrite:
            raise OutputError(
                f"{out}: written by the model {describe_model(old)}, but this run uses {describe_model(record)}; "
                "choose another output folder, or add --overwrite to recompute its outputs with this model"
            )
        meta.pop("stack", None)  # the old model's embeddings.npy no longer belongs to OUT's record
    if old is None and (out / "embeddings.npy").exists():
        meta["stack"] = {"state": "unrecorded"}  # written before records were kept: read and resumed as then
    if meta.get("model") != record:
        meta["model"] = record
        _write_meta(out, meta)


def _read_meta(out: Path) -> dict | None:
    try:
        data = (out / RECORD).read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise OutputError(f"{out / RECORD}: cannot read it ({exc.strerror or exc})") from exc
    try:
        meta = json.loads(data)
        if not isinstance(meta, dict) or not isinstance(meta.get("model", {}), dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise OutputError(f"{out / RECORD}: damaged ({exc}); delete it and run again with --overwrite") from exc
    return meta


def _write_meta(out: Path, meta: dict) -> None:
    atomic_write_bytes(out / RECORD, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())


class OutLock:
    """One job at a time on OUT: an fcntl.flock on OUT/.audioembed-lock, released when the process ends
    (however it ends). On systems without fcntl it does nothing."""

    def __init__(self, out: Path):
        self.out, self.fd = out, None

    def acquire(self, on_wait: Callable[[], None] | None = None) -> None:
        try:
            import fcntl
        except ImportError:  # Windows
            return
        self.fd = os.open(self.out / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX)  # Ctrl-C stops the wait
            except BaseException:
                self.release()
                raise

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None


def load_stack(out: Path) -> tuple[list[str], np.ndarray]:
    """The --stack files: the input path of each row and the (N, D) matrix, memory-mapped (rows are read
    when used). The one reader of the format (resume and `audioembed search` both use it); raises
    OSError or ValueError when the files are missing, damaged or do not match."""
    paths, matrix, _keys = _load_stack(out)
    return paths, matrix


def _load_stack(out: Path) -> tuple[list[str], np.ndarray, list[str] | None]:
    meta = _read_meta(out)
    manifest = None if meta is None else meta.get("stack")  # no record at all: a stack from before manifests
    if isinstance(manifest, dict) and manifest.get("state") == "unrecorded":
        meta = manifest = None
    if meta is not None and not (isinstance(manifest, dict) and manifest.get("state") == "complete"):
        raise ValueError(f"{out}: embeddings.npy and index.csv were not finished together (a run stopped while "
                         "replacing them, or another model's run began); run the embed command again")
    index_bytes = (out / "index.csv").read_bytes()
    matrix = np.load(out / "embeddings.npy", mmap_mode="r")
    if manifest is not None and (
        hashlib.sha256(index_bytes).hexdigest() != manifest.get("index_sha256")
        or os.path.getsize(out / "embeddings.npy") != manifest.get("embeddings_bytes")
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
    matrix_tmp, index_tmp = temp_path(out / "embeddings.npy"), temp_path(out / "index.csv")
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
        meta = _read_meta(out) or {}
        meta["stack"] = {"state": "replacing"}
        _write_meta(out, meta)
        os.replace(matrix_tmp, out / "embeddings.npy")
        os.replace(index_tmp, out / "index.csv")
        meta["stack"] = {
            "state": "complete", "rows": len(stacked), "dim": dim, "embeddings_bytes": os.path.getsize(out / "embeddings.npy"),
            "index_sha256": hashlib.sha256(index_bytes).hexdigest(), "inputs": [job.key for job, _ in stacked],
        }
        _write_meta(out, meta)
    finally:
        for tmp in (matrix_tmp, index_tmp):
            with contextlib.suppress(OSError):
                tmp.unlink()
    clear_parts(out)
    return len(stacked)


def clear_parts(out: Path) -> None:
    shutil.rmtree(out / PARTS, ignore_errors=True)


def audio_seconds(path: str | os.PathLike) -> float:
    """How much work a file is, for the progress bar's ETA: its duration from the header where libsndfile gives one
    (reading no samples), else its size at 32 kB/s (16 kHz, 16-bit); at least 0.1 s, so every file counts."""
    try:
        import soundfile as sf

        seconds = sf.info(os.fspath(path)).duration
    except Exception:  # not a libsndfile format (m4a, ...), unreadable, or gone: the size says roughly as much
        try:
            seconds = os.path.getsize(path) / 32000
        except OSError:
            seconds = 0.0
    return max(float(seconds), 0.1)


@contextlib.contextmanager
def progress(files: int, disable: bool, completed: int = 0, seconds: float | None = None) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (rich), or nothing. completed: files counted before the bar starts (failed plans).

    seconds: the audio the files hold; then the bar and its ETA advance by audio seconds (`advance(s)` per file),
    which a folder of short clips and a few long recordings needs (counting files, 493 of 502 said 1 s and took 44),
    while the counter still shows files."""
    if disable:
        yield lambda weight=1.0: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    columns = [TextColumn("embedding"), BarColumn(), TextColumn("{task.fields[done]}/{task.fields[files]} files"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    total = seconds if seconds is not None else float(files)
    done = [completed]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        start = 0.0 if seconds is not None else float(completed)  # failed plans hold no audio left to embed
        task = bar.add_task("embed", total=total, completed=start, done=completed, files=files)

        def advance(weight: float = 1.0) -> None:
            done[0] += 1
            bar.update(task, advance=weight if seconds is not None else 1.0, done=done[0])

        yield advance
