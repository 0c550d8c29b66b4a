"""Where `audioembed embed` writes: a mirrored tree of .npy files, written atomically, never outside OUT."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .audio import AUDIO_EXTENSIONS

TEMP_SUFFIX = ".audioembed-tmp"


@dataclasses.dataclass
class Job:
    source: Path
    clip: Path  # OUT/<relative stem>.npy
    frames: bool

    @property
    def frame_files(self) -> tuple[Path, Path]:
        stem = self.clip.with_suffix("")
        return stem.with_name(stem.name + ".frames.npy"), stem.with_name(stem.name + ".timestamps.npy")

    def targets(self) -> list[Path]:
        return [*self.frame_files, self.clip] if self.frames else [self.clip]

    def done(self) -> bool:
        return all(p.is_file() for p in self.targets())

    def write(self, result) -> None:
        """Write every output to a temp file first, then rename: a crash never leaves half a file."""
        arrays = [result.frames.embeddings, result.frames.timestamps, result.embedding] if self.frames else [result.embedding]
        for path, array in zip(self.targets(), arrays):
            atomic_save(path, array)


def atomic_save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array))
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def remove_stale_temp_files(out: Path) -> int:
    """Temp files left by a killed run (SIGKILL leaves no chance to clean up)."""
    removed = 0
    for root, _dirs, files in os.walk(out):
        for name in files:
            if name.endswith(TEMP_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(root, name))
                    removed += 1
    return removed


def find_audio(root: Path) -> list[Path]:
    """Audio files under root, sorted; symlinked folders are not followed (no loops, no escapes)."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() in AUDIO_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found


def plan(paths: list[Path], out: Path, frames: bool) -> tuple[list[Job], list[str]]:
    """One Job per input file; inputs that are missing or would collide on an output become failures."""
    out_resolved = out.resolve()
    failures: list[str] = []
    candidates: list[tuple[Path, Path]] = []  # (source, path relative to OUT)
    for path in paths:
        if path.is_dir():
            candidates += [(f, f.relative_to(path)) for f in find_audio(path)]
        elif path.is_file():
            candidates.append((path, Path(path.name)))
        else:
            failures.append(f"{path}: no such file or folder")
    by_target: dict[Path, list[Path]] = {}
    for source, rel in candidates:
        clip = out / rel.with_suffix(".npy")
        if out_resolved not in clip.resolve().parents:
            failures.append(f"{source}: output {clip} would be outside {out}; skipped")
            continue
        by_target.setdefault(clip, []).append(source)
    jobs = []
    for clip, sources in by_target.items():
        if len(sources) > 1:
            names = ", ".join(map(str, sources))
            failures += [f"{s}: {len(sources)} inputs map to {clip} ({names}); rename or embed them separately" for s in sources]
            continue
        jobs.append(Job(sources[0], clip, frames))
    return jobs, failures


def write_stack(out: Path, sources: list[Path], vectors: list[np.ndarray]) -> None:
    """One (N, D) matrix plus index.csv mapping each row to its input file."""
    atomic_save(out / "embeddings.npy", np.stack(vectors))
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(["row", "path"])
    writer.writerows((i, str(s)) for i, s in enumerate(sources))
    atomic_write_bytes(out / "index.csv", text.getvalue().encode())


@contextlib.contextmanager
def progress(total: int, disable: bool) -> Iterator[Callable[[], None]]:
    """A progress bar on stderr (rich), or nothing."""
    if disable:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    columns = [TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("embed", total=total)
        yield lambda: bar.advance(task)
