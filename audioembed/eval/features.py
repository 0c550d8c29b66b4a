"""One vector per clip for every row of the table, cached on disk so a rerun only computes what changed.

A cache entry is one .npy named by the clip's absolute path, size and mtime, inside a folder named
by the extractor's key (for a model: the sha256 of its config and weight file), so new weights or
an edited clip never reuse a stale vector.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from .. import audio
from ..errors import AudioEmbedError
from .. import files
from ..files import atomic_save


def default_cache() -> Path:
    return files.cache_folder("eval")


class Extractor(Protocol):
    """Something that turns clips into vectors: a model, a baseline or a peer."""

    name: str  # the table row
    key: str  # changes whenever the vectors would change

    def vectors(self, paths: list[Path]) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
        """Yield (index, vector, None) or (index, None, error message) per path, in any order."""
        ...


class ModelExtractor:
    """A model through the public Embedder: decoding, windowing and batching exactly as users get them."""

    def __init__(self, name: str, embedder) -> None:
        from ..model_folder import BACKEND_FILES, CONFIG, sha256

        self.name, self.embedder = name, embedder
        folder = embedder.resolved.folder
        weights = sha256(folder / BACKEND_FILES[embedder.backend_name])
        # what computed the STFT (onnx: scipy's FFT, or the graph's own convolution) moves the last bits too
        stft = getattr(embedder.backend, "stft", "graph")
        self.key = digest("model", embedder.backend_name, *(() if embedder.precision == "f32" else (embedder.precision,)),
                          *(() if stft == "graph" else (f"stft={stft}",)), sha256(folder / CONFIG), weights)

    def vectors(self, paths: list[Path]) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
        for result in self.embedder.iter_results(paths):
            if result.error is not None:
                yield result.index, None, str(result.error)
            else:
                yield result.index, result.embedding, None


class ClipFunctionExtractor:
    """A function of one decoded mono clip (baselines and peers), run clip by clip.

    threads: BLAS/OpenMP threads while it runs (None: the libraries' default). Numpy's small matmuls are
    several times faster on one thread than on threads that wait for busy cores (benchmarks/probe_threads.py).
    """

    def __init__(
        self, name: str, key: str, sample_rate: int, fn: Callable[[np.ndarray], np.ndarray], threads: int | None = None
    ) -> None:
        self.name, self.key, self.sample_rate, self.fn, self.threads = name, key, sample_rate, fn, threads

    def vectors(self, paths: list[Path]) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads):
            yield from self._vectors(paths)

    def _vectors(self, paths: list[Path]) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
        for index, path in enumerate(paths):
            try:
                vector = np.asarray(self.fn(audio.load(path, target_sr=self.sample_rate)), np.float32).ravel()
            except AudioEmbedError as exc:
                yield index, None, str(exc)
            except Exception as exc:  # a peer library failing on one clip names the clip, not the run
                yield index, None, f"{path}: {self.name} failed ({type(exc).__name__}: {exc})"
            else:
                yield index, vector, None


@dataclasses.dataclass
class Features:
    """Vectors (N_ok, D) for the clips that worked (their indices in `ok`) and the failures by name."""

    matrix: np.ndarray
    ok: np.ndarray
    failures: list[str]
    computed: int
    reused: int


def digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()


def cache_folder(cache: Path, extractor: Extractor) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", extractor.name).strip("_")[:40] or "model"
    return cache / f"{safe}-{extractor.key[:16]}"


def clip_entry(folder: Path, path: Path) -> Path | None:
    """The cache file for a clip: path + size + mtime, so an edited or replaced file is recomputed."""
    resolved = path.resolve()
    try:
        stat = resolved.stat()
    except OSError:  # gone since the dataset was read: the extractor reports it
        return None
    return folder / f"{digest(resolved, stat.st_size, stat.st_mtime_ns)[:40]}.npy"


def compute(extractor: Extractor, paths: list[Path], cache: Path) -> Features:
    """Cached vectors where present, the extractor for the rest (written to the cache as they come)."""
    folder = cache_folder(cache, extractor)
    entries = [clip_entry(folder, p) for p in paths]
    found: dict[int, np.ndarray] = {}
    for index, entry in enumerate(entries):
        if entry is not None and entry.is_file():
            try:
                found[index] = np.load(entry)
            except (OSError, ValueError):  # a damaged entry is recomputed
                pass
    reused = len(found)
    todo = [i for i in range(len(paths)) if i not in found]
    failures: list[str] = []
    if todo:
        for j, vector, error in extractor.vectors([paths[i] for i in todo]):
            if error is not None:
                failures.append(error)
                continue
            found[todo[j]] = vector
            if entries[todo[j]] is not None:
                atomic_save(entries[todo[j]], vector)
    ok = np.array(sorted(found), dtype=np.int64)
    dim = len(found[ok[0]]) if len(ok) else 0
    matrix = np.stack([found[i] for i in ok]) if len(ok) else np.zeros((0, dim), np.float32)
    return Features(matrix, ok, sorted(failures), len(found) - reused, reused)
