"""The Embedder: resolve a model -> load a backend -> turn audio into vectors.

Inputs are decoded in worker threads and cut into bounded windows; windows from any inputs are
batched together (similar lengths first) and run through the backend while decoding goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import struct
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import audio, backends, hub, model_folder, pooling, windows
from .errors import AudioEmbedError, AudioError


@dataclasses.dataclass
class FrameEmbeddings:
    """Frame-level embeddings (T, D) and each frame's centre time in milliseconds (HEAR convention)."""

    embeddings: np.ndarray
    timestamps: np.ndarray
    file: Path | None = None  # the .npy the frames were streamed to (iter_results' frames_to), memory-mapped


@dataclasses.dataclass
class Result:
    """One input's outcome: its clip embedding and, when asked for, its frames; or the error."""

    index: int
    source: str
    embedding: np.ndarray | None = None
    frames: FrameEmbeddings | None = None
    error: AudioEmbedError | None = None


class _FrameFile:
    """Frames (T, D) float32 written into a .npy as windows finish, each at its rows' offset, so that none is
    held in memory; the header, the only part that depends on T, has a fixed size and is written last."""

    HEADER = 128  # bytes: magic, version, length, the dict padded with spaces (a multiple of 64, as numpy's)

    def __init__(self, path: Path, dim: int):
        self.path, self.dim = Path(path), dim
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)

    def write(self, start: int, frames: np.ndarray) -> None:
        data = np.ascontiguousarray(frames, "<f4").tobytes()
        offset = self.HEADER + start * self.dim * 4
        while data:  # pwrite may write less than asked
            written = os.pwrite(self.fd, data, offset)
            data, offset = data[written:], offset + written

    def finish(self, count: int) -> np.ndarray:
        text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({count}, {self.dim}), }}"
        body = text.ljust(self.HEADER - 11) + "\n"
        os.pwrite(self.fd, b"\x93NUMPY\x01\x00" + struct.pack("<H", len(body)) + body.encode("latin1"), 0)
        os.ftruncate(self.fd, self.HEADER + count * self.dim * 4)
        os.close(self.fd)
        return np.load(self.path, mmap_mode="r")

    def discard(self) -> None:
        with contextlib.suppress(OSError):  # closed already when finish() failed part way
            os.close(self.fd)
        self.path.unlink(missing_ok=True)


class _Accumulator:
    """An input's clip pooling (pooling.Pool) as its windows finish, and its frames if wanted: in memory, or
    streamed to a file when one is given (and can be created: else in memory, and writing it later says why)."""

    def __init__(self, keep_frames: bool, frames_file: Path | None = None, dim: int = 0):
        self.pool = pooling.Pool()
        self.keep_frames = keep_frames
        self.frames: np.ndarray | None = None  # (>= count, D), row i = output frame i
        self.file: _FrameFile | None = None
        if keep_frames and frames_file is not None:
            try:
                self.file = _FrameFile(frames_file, dim)
            except OSError:
                pass
        self.windows_done = 0
        self.windows_total: int | None = None
        self.write_error: OSError | None = None  # the frame file could not be written (a full disk): this input fails

    @property
    def count(self) -> int:
        """Output frames so far."""
        return self.pool.count

    def add(self, start: int, frames: np.ndarray) -> None:
        self.pool.add(frames)
        if self.write_error is not None:
            pass
        elif self.file is not None:
            try:
                self.file.write(start, frames)
            except OSError as exc:
                self.write_error = exc
        elif self.keep_frames:
            stop = start + len(frames)
            if self.frames is None:
                self.frames = np.empty((stop, frames.shape[1]), np.float32)
            elif stop > len(self.frames):
                # In-place realloc (mremap for big buffers), to exactly the rows needed (resize
                # zero-fills new rows, so spare capacity would be resident): an hour of frames is
                # never held twice.
                self.frames.resize((stop, frames.shape[1]), refcheck=False)
            self.frames[start:stop] = frames
        self.windows_done += 1

    @property
    def finished(self) -> bool:
        return self.windows_total is not None and self.windows_done == self.windows_total


def _is_single(x: Any) -> bool:
    return not isinstance(x, (list, tuple))


class Embedder:
    """Load a model once, then `embed` files, arrays or tensors: one vector per clip, any length.

    model: a hub repo id (with `revision`) or a local model folder; None is the default model.
    backend: "auto", "torch", "onnx" or "openvino"; precision: "auto", "f32" or "bf16" (openvino); device: "auto", "cpu"
        or "cuda" (torch). auto: torch on a CUDA GPU, OpenVINO bf16 on a CPU that has it natively, else ONNX Runtime f32.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        revision: str | None = None,
        backend: str = "auto",
        device: str = "auto",
        batch_size: int = 16,
        num_threads: int | None = None,
        num_workers: int | None = None,
        precision: str = "auto",
    ):
        # What another process needs to load the same model (datasets' num_proc pickles the map function).
        self._args = (model, dict(revision=revision, backend=backend, device=device, batch_size=batch_size,
                                  num_threads=num_threads, num_workers=num_workers, precision=precision))
        self.backend_name = backends.choose(backend, device, precision)
        self.precision = backends.choose_precision(self.backend_name, precision)
        self.resolved, self.config = hub.fetch(model, revision, model_folder.BACKEND_FILES[self.backend_name])
        self.backend = backends.load(self.backend_name, self.resolved.folder, self.config, device, num_threads, self.precision)
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self.batch_size = batch_size
        self.num_workers = num_workers or min(4, os.cpu_count() or 1)

    def __repr__(self) -> str:
        r = self.resolved
        return (f"Embedder(model={r.model_id!r}, source={r.source}, backend={self.backend_name}, "
                f"precision={self.precision}, device={self.backend.device}, dim={self.dim})")

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def model_record(self) -> dict[str, Any]:
        """Which model wrote a vector: outputs store this and refuse to mix vectors whose records differ."""
        r = self.resolved  # bfloat16 vectors differ from float32 ones: bf16 is recorded (f32 records stay as they were)
        return {"model": r.model_id, "revision": r.revision, "weights_sha256": dict(sorted(self.config.sha256.items())),
                "dim": self.dim, **({"precision": self.precision} if self.precision != "f32" else {})}

    # Public API -------------------------------------------------------------------------------

    def embed(self, audio_in: Any, sr: int | Sequence[int] | None = None, normalize: bool = False) -> np.ndarray:
        """Clip embedding(s): (D,) for one input, (N, D) for a list. Raises on the first bad input.

        normalize: scale each vector to unit L2 norm, so that dot products are cosine similarities.
        """
        results = self._collect(audio_in, sr, frames=False)
        vectors = [r.embedding for r in results]
        out = vectors[0] if _is_single(audio_in) else np.stack(vectors) if vectors else np.zeros((0, self.dim), np.float32)
        if normalize:
            from .search import normalize as l2

            out = l2(out)
        return out

    def embed_frames(self, audio_in: Any, sr: int | Sequence[int] | None = None) -> FrameEmbeddings | list[FrameEmbeddings]:
        """Frame embeddings (T, D) with centre timestamps in ms, one per 80 ms by default."""
        results = [r.frames for r in self._collect(audio_in, sr, frames=True)]
        return results[0] if _is_single(audio_in) else results

    def iter_results(
        self, inputs: Sequence[Any], sr: int | Sequence[int] | None = None, frames: bool = False,
        frames_to: Callable[[int], Path] | None = None,
    ) -> Iterator[Result]:
        """Yield a Result per input as each finishes (not in input order); bad inputs give Result.error.

        frames_to: input index -> a .npy path. Frames are written there as windows finish, so memory does not
        grow with a file's length; Result.frames.embeddings is that file, memory-mapped (frames.file). The file
        is removed if the input fails.
        """
        items = list(inputs)
        rates = list(sr) if isinstance(sr, (list, tuple)) else [sr] * len(items)
        if len(rates) != len(items):
            raise ValueError(f"got {len(rates)} sample rates for {len(items)} inputs")
        yield from _Pipeline(self, items, rates, frames, frames_to).run()

    def hf_map_fn(self, audio_column: str = "audio", column: str = "embedding"):
        """For `datasets.Dataset.map(fn, batched=True, num_proc=N)`: adds `column` (D floats per row)."""
        from .integrations.datasets import EmbedColumn

        return EmbedColumn(self, audio_column, column)

    # Internals --------------------------------------------------------------------------------

    def _collect(self, audio_in: Any, sr: Any, frames: bool) -> list[Result]:
        items = [audio_in] if _is_single(audio_in) else list(audio_in)
        results: list[Result | None] = [None] * len(items)
        for result in self.iter_results(items, sr, frames):
            if result.error is not None:
                raise result.error
            results[result.index] = result
        return results  # type: ignore[return-value]

    def timestamps(self, n: int) -> np.ndarray:
        """Centre time (ms) of output frames 0..n-1."""
        cfg = self.config
        r = cfg.time_reduction
        return (np.arange(n) * r + (r - 1) / 2) * cfg.hop_length / cfg.sample_rate * 1000.0


class _Pipeline:
    """Decode workers -> bounded queue of windows -> length-sorted batches -> backend -> accumulators."""

    def __init__(self, embedder: Embedder, items: list[Any], rates: list[Any], frames: bool,
                 frames_to: Callable[[int], Path] | None = None):
        self.e = embedder
        self.items, self.rates, self.frames, self.frames_to = items, rates, frames, frames_to
        self.queue: queue.Queue = queue.Queue(maxsize=embedder.batch_size)
        self.stop = threading.Event()
        self.next_item = 0
        self.lock = threading.Lock()

    def _put(self, msg: tuple) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(msg, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _worker(self) -> None:
        cfg = self.e.config
        try:
            while not self.stop.is_set():
                with self.lock:
                    index = self.next_item
                    self.next_item += 1
                if index >= len(self.items):
                    break
                source = self.items[index]
                count = 0
                try:
                    blocks = audio.stream(source, self.rates[index], cfg.sample_rate)
                    for win in windows.cut(blocks, cfg):
                        if not self._put(("window", index, win)):
                            return
                        count += 1
                except AudioEmbedError as exc:
                    self._put(("error", index, exc))
                    continue
                except Exception as exc:  # anything unexpected still names the input
                    self._put(("error", index, AudioError(f"{audio.describe(source)}: {type(exc).__name__}: {exc}")))
                    continue
                self._put(("done", index, count))
        finally:
            self._put(("exit", -1, None))

    def run(self) -> Iterator[Result]:
        n_workers = max(1, min(self.e.num_workers, len(self.items)))
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(n_workers)]
        for t in threads:
            t.start()
        acc: dict[int, _Accumulator] = {}
        pending: list[tuple[int, windows.Window]] = []
        alive = n_workers
        failed: set[int] = set()
        try:
            while alive or pending:
                if alive and (not pending or len(pending) < self.e.batch_size):
                    block = not pending
                    try:
                        while True:
                            kind, index, payload = self.queue.get(block=block)
                            block = False
                            if kind == "exit":
                                alive -= 1
                            elif kind == "error":
                                failed.add(index)
                                self._discard(acc.pop(index, None))
                                yield Result(index, audio.describe(self.items[index]), error=payload)
                            elif kind == "window":
                                self._accumulator(acc, index)
                                pending.append((index, payload))
                            else:  # done
                                a = self._accumulator(acc, index)
                                a.windows_total = payload
                                if a.finished:
                                    yield self._finish(index, acc.pop(index))
                            if len(pending) >= 2 * self.e.batch_size or not alive:
                                break
                    except queue.Empty:
                        pass
                if not pending:
                    continue
                pending.sort(key=lambda p: len(p[1].wave), reverse=True)
                batch, pending = pending[: self.e.batch_size], pending[self.e.batch_size :]
                for index, frames_out in self._run_batch(batch):
                    if index in failed:
                        continue
                    a = acc[index]
                    a.add(*frames_out)
                    if a.finished:
                        yield self._finish(index, acc.pop(index))
        finally:
            self.stop.set()
            for t in threads:
                t.join(timeout=5)
            for a in acc.values():  # stopped early: no half-written frame files left behind
                self._discard(a)

    def _accumulator(self, acc: dict[int, _Accumulator], index: int) -> _Accumulator:
        if index not in acc:
            path = None
            if self.frames and self.frames_to is not None:
                try:
                    path = self.frames_to(index)
                except OSError:  # held in memory then; writing the outputs will say what is wrong
                    pass
            acc[index] = _Accumulator(self.frames, path, self.e.dim)
        return acc[index]

    @staticmethod
    def _discard(a: _Accumulator | None) -> None:
        if a is not None and a.file is not None:
            a.file.discard()

    def _run_batch(self, batch: list[tuple[int, windows.Window]]) -> list[tuple[int, tuple[int, np.ndarray]]]:
        step = self.e.backend.rows_per_run or len(batch)  # the ONNX backend runs small slices
        results = []
        for first in range(0, len(batch), step):
            part = batch[first : first + step]
            longest = max(len(w.wave) for _, w in part)
            wave = np.zeros((len(part), longest), np.float32)
            for row, (_, w) in enumerate(part):
                wave[row, : len(w.wave)] = w.wave
            n_frames = np.array([w.n_frames for _, w in part], np.int64)
            out = self.e.backend.run(wave, n_frames)
            for row, (index, w) in enumerate(part):
                start, stop = w.keep
                results.append((index, (start, out[row, start - w.first_out : stop - w.first_out])))
        return results

    def _finish(self, index: int, a: _Accumulator) -> Result:
        name = audio.describe(self.items[index])
        embedding = a.pool.embedding()
        if not np.isfinite(embedding).all():  # a NaN vector would poison every search it joins, silently
            self._discard(a)
            return Result(index, name, error=AudioError(
                f"{name}: the model produced NaN or infinite values for this input; check that its samples "
                "are in [-1, 1] and that the model's weights are sound"
            ))
        frames = None
        if a.file is not None and a.write_error is None:
            try:
                emb = a.file.finish(a.count)
            except OSError as exc:
                a.write_error = exc
        if a.write_error is not None:  # one failed input, as a failed write of the clip embedding is
            self._discard(a)
            exc = a.write_error
            return Result(index, name, error=AudioEmbedError(
                f"{name}: cannot write its frames in {a.file.path.parent} ({exc.strerror or exc})"
            ))
        if a.file is not None:
            frames = FrameEmbeddings(emb, self.e.timestamps(len(emb)), a.file.path)
        elif a.keep_frames:
            emb = a.frames
            emb.resize((a.count, emb.shape[1]), refcheck=False)  # windows cover frames 0..count-1 once each
            frames = FrameEmbeddings(emb, self.e.timestamps(len(emb)))
        return Result(index, name, embedding, frames)
