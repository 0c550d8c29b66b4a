"""Audio in: decode (libsndfile; PyAV for what it cannot read), mix to mono, scale integers, resample (soxr), validate.

Everything streams in blocks, so memory does not grow with the length of a file.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Union

import numpy as np

from .errors import AudioDecodeError, AudioError, install_hint, printable

SNDFILE_EXTENSIONS = frozenset(".wav .wave .flac .ogg .oga .opus .mp3 .aif .aiff .aifc .au .snd .w64 .rf64 .caf".split())
AV_EXTENSIONS = frozenset(".m4a .aac .wma .mp4 .webm".split())  # phones, messaging apps, video: PyAV (the [av] extra)
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | AV_EXTENSIONS
MIN_RATE, MAX_RATE = 1_000, 768_000
MAX_CHANNELS = 64  # beyond this a 2-D array is more likely a batch than a multichannel clip
BLOCK_SECONDS = 10.0
MAX_BLOCK_BYTES = 8 << 20  # a decode block is at most this many bytes, however many channels and samples per second
MAX_FILE_CHANNELS = 256  # libsndfile allows 1024; beyond 256 a header is more likely broken than ambisonic
MAX_SAMPLE = 1e6  # float samples beyond this are not audio (int16 values stored as float are ~3e4)

AudioInput = Union[str, os.PathLike, np.ndarray, Any]  # Any: a torch tensor


def describe(source: AudioInput) -> str:
    """A short name for an input, used in every error about it."""
    if isinstance(source, (str, os.PathLike)):
        return printable(os.fsdecode(source))
    if is_file_object(source):  # open(path, "rb") has its path as .name; a BytesIO may be given one
        name = getattr(source, "name", None)
        return printable(os.fsdecode(name)) if isinstance(name, (str, bytes)) else f"<{type(source).__name__}>"
    shape = getattr(source, "shape", None)
    return f"<{type(source).__name__} shape={tuple(shape)}>" if shape is not None else f"<{type(source).__name__}>"


def is_file_object(source: Any) -> bool:
    """A readable file-like object (open(path, "rb"), io.BytesIO): decoded as a file is."""
    return callable(getattr(source, "read", None)) and not isinstance(source, (str, os.PathLike, np.ndarray))


def check_rate(sr: Any, name: str) -> int:
    if sr is None:
        raise AudioError(f"{name}: a sample rate is required with array input (embed(x, sr=...)); "
                         "files are read from a path or a binary file object, their rate from the file")
    if isinstance(sr, bool) or not isinstance(sr, (int, float, np.integer, np.floating)):
        raise AudioError(f"{name}: sample rate must be a number, got {type(sr).__name__}")
    if not np.isfinite(sr) or sr != int(sr) or not MIN_RATE <= sr <= MAX_RATE:
        raise AudioError(f"{name}: sample rate {sr!r} Hz is not supported (integer in {MIN_RATE}..{MAX_RATE})")
    return int(sr)


def _to_numpy(x: Any) -> np.ndarray:
    if type(x).__module__.startswith("torch"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def to_mono_float32(x: Any, name: str) -> np.ndarray:
    """Any supported array -> 1-D float32 in [-1, 1] scale. 2-D means (channels, samples) or (samples, channels)."""
    try:
        a = _to_numpy(x)
    except Exception as exc:  # objects numpy cannot read
        raise AudioError(f"{name}: cannot convert {type(x).__name__} to an array ({exc})") from exc
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u":
            half = 2 ** (8 * a.dtype.itemsize - 1)
            a = (a.astype(np.float64) - half) / half
        else:
            a = a.astype(np.float64) / 2 ** (8 * a.dtype.itemsize - 1)
    elif a.dtype.kind != "f":
        raise AudioError(f"{name}: unsupported sample type {a.dtype} (use float or integer PCM)")
    if a.size == 0:  # before mixing: the mean of an empty (2, 0) array is NaN, not an error
        raise AudioError(f"{name}: no audio samples (empty input of shape {a.shape})")
    if a.ndim == 2:
        channel_axis = 0 if a.shape[0] <= a.shape[1] else 1
        if a.shape[channel_axis] > MAX_CHANNELS:
            raise AudioError(
                f"{name}: 2-D array of shape {a.shape} has {a.shape[channel_axis]} 'channels'; "
                "to embed a batch, pass a list of 1-D arrays"
            )
        a = a.mean(axis=channel_axis)
    elif a.ndim != 1:
        raise AudioError(f"{name}: expected a 1-D (samples) or 2-D (channels, samples) array, got shape {a.shape}")
    check_finite(a, name)  # before the cast: float64 beyond float32's range would become inf
    return np.ascontiguousarray(a, dtype=np.float32)


def check_finite(block: np.ndarray, name: str) -> None:
    """NaN, inf and absurd magnitudes would reach the model and come out as a NaN vector."""
    if not np.isfinite(block).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    peak = float(np.abs(block).max(initial=0.0))
    if peak > MAX_SAMPLE:
        raise AudioError(f"{name}: samples reach {peak:.3g}; float audio should lie roughly in [-1, 1]")


class _Resampler:
    """soxr's streaming resampler; chunked output equals one-shot soxr.resample exactly."""

    def __init__(self, in_rate: int, out_rate: int):
        self.stream = None
        if in_rate != out_rate:
            import soxr

            self.stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        if self.stream is None:
            return block
        return self.stream.resample_chunk(block, last=last)


def _array_blocks(x: Any, sr: Any, name: str, block: int) -> Iterator[tuple[np.ndarray, int]]:
    rate = check_rate(sr, name)
    a = to_mono_float32(x, name)
    for start in range(0, len(a), block):
        yield a[start : start + block], rate


_DECODING: dict[int, str] = {}  # thread -> the file it is decoding: names the lines C decoders print themselves
after_native_call: Callable[[], None] | None = None  # set by the CLI: collects what a decoder call printed


def _native_call_done() -> None:
    hook = after_native_call
    if hook is not None:
        hook()


def decoding() -> list[str]:
    """The files being decoded right now, by any thread."""
    return sorted(set(_DECODING.values()))


def _file_blocks(path: Any, name: str, block_seconds: float) -> Iterator[tuple[np.ndarray, int]]:
    """A path or a binary file object, streamed in blocks under the same limits."""
    thread = threading.get_ident()
    _DECODING[thread] = name
    try:
        yield from _decode_file(path, name, block_seconds)
    finally:
        _DECODING.pop(thread, None)


def _check_file(path: Path, name: str) -> None:
    """Errors that say what the path is, before libsndfile (which would call most of them unreadable) sees it."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise AudioError(f"{name}: no such file") from None
    except (OSError, ValueError) as exc:  # a name too long, a file used as a folder, a NUL byte
        raise AudioError(f"{name}: cannot open it ({getattr(exc, 'strerror', None) or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise AudioError(f"{name}: is a directory, not an audio file")
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block forever, /dev/zero would never end
        raise AudioError(f"{name}: not a regular file (a FIFO, device or socket); pass an audio file")
    if info.st_size == 0:
        raise AudioDecodeError(f"{name}: empty file (0 bytes)")


def _decode_file(path: Any, name: str, block_seconds: float) -> Iterator[tuple[np.ndarray, int]]:
    """path: a Path, or a binary file object (read from where it stands)."""
    import soundfile as sf

    if isinstance(path, Path):
        _check_file(path, name)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as exc:
            raise AudioError(f"{name}: cannot open it ({exc.strerror or exc})") from None
        # POSIX: libsndfile reads the file we opened, so a name that is not UTF-8 needs no encoding.
        source = fd if os.name == "posix" else os.fspath(path)
        if os.name != "posix":
            os.close(fd)
    else:
        source, start = path, _file_object_start(path, name)
    try:
        f = sf.SoundFile(source, closefd=True)  # closes the fd on failure too
    except Exception as exc:
        reason = getattr(exc, "error_string", None) or exc  # without "Error opening <fd>: "
        if not isinstance(path, Path):
            path.seek(start)  # PyAV reads it from the start again
        yield from _av_blocks(path, name, block_seconds, reason)  # used only where libsndfile gives up
        return
    finally:
        _native_call_done()
    with f:
        rate = check_rate(f.samplerate, name)
        if not 1 <= f.channels <= MAX_FILE_CHANNELS:
            raise AudioDecodeError(
                f"{name}: the file reports {f.channels} channels; audioembed reads 1 to {MAX_FILE_CHANNELS}"
            )
        # DOUBLE files may hold finite values beyond float32's range: read them as they are, so that the
        # check below calls them too loud rather than infinite.
        dtype = np.float64 if f.subtype == "DOUBLE" else np.float32
        budget = MAX_BLOCK_BYTES // (f.channels * np.dtype(dtype).itemsize)
        frames = max(1, min(int(block_seconds * rate), budget))
        while True:
            try:
                data = f.read(frames, dtype=dtype.__name__, always_2d=True)
            except Exception as exc:
                raise AudioDecodeError(f"{name}: decoding failed ({exc})") from exc
            finally:
                _native_call_done()
            if len(data) == 0:
                break
            mono = data.mean(axis=1, dtype=dtype) if data.shape[1] > 1 else data[:, 0]
            check_finite(mono, name)
            yield np.ascontiguousarray(mono, dtype=np.float32), rate


def _file_object_start(fileobj: Any, name: str) -> int:
    """Where a file object stands; it must be binary and seekable (libsndfile and PyAV seek in it)."""
    import io

    if isinstance(fileobj, io.TextIOBase):
        raise AudioError(f"{name}: a text-mode file object; open the file in binary mode (open(path, 'rb'))")
    try:
        return fileobj.tell()
    except (AttributeError, OSError, ValueError) as exc:
        raise AudioError(f"{name}: a file object that cannot seek ({exc}); read it into io.BytesIO first") from None


def _av_blocks(path: Any, name: str, block_seconds: float, sndfile_error: Any) -> Iterator[tuple[np.ndarray, int]]:
    """m4a, aac, wma, mp4, webm (and whatever else FFmpeg reads) through PyAV, when it is installed.

    path: a Path, or a seekable binary file object."""
    try:
        import av
    except ImportError:
        hint = ""
        if Path(name).suffix.lower() not in SNDFILE_EXTENSIONS:
            hint = f"; {Path(name).suffix or 'this'} files need PyAV: {install_hint('av')}"
        raise AudioDecodeError(f"{name}: not a readable audio file ({sndfile_error}){hint}") from None
    try:
        container = av.open(os.fspath(path) if isinstance(path, Path) else path)
    except Exception as exc:
        raise AudioDecodeError(f"{name}: not a readable audio file (libsndfile: {sndfile_error}; PyAV: {exc})") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioDecodeError(f"{name}: has no audio stream")
        if streams[0].codec_context is None:  # FFmpeg parsed the container but has no decoder for the stream
            raise AudioDecodeError(f"{name}: not a readable audio file (libsndfile: {sndfile_error}; PyAV: no decoder)")
        rate = check_rate(streams[0].codec_context.sample_rate, name)
        to_float = av.AudioResampler(format="fltp")  # planar float32, channels and rate kept: mixed as libsndfile's are
        block = max(1, int(block_seconds * rate))
        pending: list[np.ndarray] = []
        size = 0

        def decoded() -> Iterator[Any]:
            for frame in container.decode(streams[0]):
                yield from to_float.resample(frame)
            yield from to_float.resample(None)  # whatever the converter still holds

        try:
            for out in decoded():
                data = out.to_ndarray()
                mono = data.mean(axis=0, dtype=np.float32) if data.shape[0] > 1 else data[0]
                check_finite(mono, name)
                pending.append(mono)
                size += len(mono)
                if size >= block:
                    yield np.concatenate(pending), rate
                    pending, size = [], 0
        except AudioError:
            raise
        except Exception as exc:
            raise AudioDecodeError(f"{name}: decoding failed (PyAV: {exc})") from exc
        if pending:
            yield np.concatenate(pending), rate


def stream(
    source: AudioInput, sr: Any = None, target_sr: int = 16000, block_seconds: float = BLOCK_SECONDS
) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks at target_sr. Raises AudioError (naming the input) on bad input."""
    name = describe(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        raise AudioError(
            f"{name}: bytes are not accepted as input: pass a file path as str or pathlib.Path "
            "(os.fsdecode turns a bytes name into one), encoded audio as io.BytesIO(data), "
            "or decoded samples as an array with sr="
        )
    if source is None:
        raise AudioError(f"{name}: no audio; pass a file path, a binary file object or an array with sr=")
    if isinstance(source, (str, os.PathLike)) or is_file_object(source):
        if sr is not None:
            raise AudioError(f"{name}: sr= is only for array input; a file's rate is read from the file")
        blocks = _file_blocks(source if is_file_object(source) else Path(source), name, block_seconds)
    else:
        blocks = _array_blocks(source, sr, name, max(1, int(block_seconds * check_rate(sr, name))))
    resample = None
    total = 0
    for block, rate in blocks:
        if resample is None:
            resample = _Resampler(rate, target_sr)
        out = resample(block)
        total += len(block)
        if len(out):
            yield out
    if total == 0:
        raise AudioError(f"{name}: no audio samples (empty input)")
    tail = resample(np.zeros(0, np.float32), last=True)
    if len(tail):
        yield tail


def load(source: AudioInput, sr: Any = None, target_sr: int = 16000) -> np.ndarray:
    """The whole input as one mono float32 array at target_sr (for short clips and tests)."""
    parts = list(stream(source, sr, target_sr))  # a few samples can resample to none at all
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
