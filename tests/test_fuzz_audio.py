"""Hostile audio, property-based: every input ends in a finite embedding or an AudioError naming it.

Never a crash from deep inside numpy, soxr, libsndfile or onnxruntime, never a silent NaN vector.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import event as _event
from hypothesis.control import currently_in_test_context
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audioembed import Embedder, audio
from audioembed.errors import AudioError

from conftest import noisy

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".mp3": ("MP3", "MPEG_LAYER_III")}


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, backend="onnx", num_workers=1, num_threads=1)


def encoded(ext: str, seconds: float = 0.5, sr: int = 22050) -> bytes:
    fmt, subtype = FORMATS[ext]
    buf = io.BytesIO()
    sf.write(buf, np.stack([noisy(sr, seconds)] * 2, axis=1), sr, format=fmt, subtype=subtype)
    return buf.getvalue()


VALID = {ext: encoded(ext) for ext in FORMATS}


def event(label: str) -> None:
    if currently_in_test_context():  # counted in --hypothesis-show-statistics
        _event(label)


def outcome(embedder: Embedder, x, **kw) -> np.ndarray | None:
    """Embed x through both entry points; check the contract; the vector or None for a clean refusal."""
    name = audio.describe(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's "invalid value" warnings mean a missed check
        try:
            samples = audio.load(x, **kw)
        except AudioError as exc:
            assert name in str(exc), f"error does not name the input: {exc}"
            samples = None
        try:
            vector = embedder.embed(x, **kw)
        except AudioError as exc:
            assert name in str(exc), f"error does not name the input: {exc}"
            event("refused with AudioError")
            return None
    event("embedded")
    assert samples is not None, "the loader refused what embed accepted"
    assert samples.dtype == np.float32 and samples.ndim == 1 and np.isfinite(samples).all()
    assert vector.shape == (embedder.dim,) and vector.dtype == np.float32
    assert np.isfinite(vector).all(), "silent NaN/inf vector"
    return vector


# Arrays --------------------------------------------------------------------------------------------

DTYPES = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
     np.bool_, np.complex64, np.dtype("S4"), np.dtype("U2"), np.dtype("M8[s]")]
)
RATES = st.one_of(
    st.sampled_from([16000, 44100, 8000, 1000, 768000, 0, -16000, 1, 999, 10_000_000, 16000.5, float("nan"), float("inf")]),
    st.integers(-10, 2_000_000),
    st.none(),
    st.just("16000"),
    st.just(True),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3000).filter(lambda s: np.prod(s) <= 20000)


@FUZZ
@given(x=hnp.arrays(DTYPES, SHAPES, elements=None), sr=RATES)
@example(x=np.full(4000, np.nan, np.float32), sr=16000)
@example(x=np.full(4000, np.inf, np.float32), sr=16000)
@example(x=np.full(4000, 3e38, np.float32), sr=16000)  # finite, but its power overflows float32
@example(x=np.zeros((2, 0), np.float32), sr=16000)
@example(x=np.zeros((0, 2), np.float32), sr=16000)
@example(x=np.zeros(0, np.float32), sr=16000)
def test_random_arrays(embedder, x, sr):
    outcome(embedder, x, sr=sr)


@FUZZ
@given(
    x=hnp.arrays(
        np.float32,
        st.one_of(st.tuples(st.integers(1, 40000)), st.tuples(st.integers(1, 4), st.integers(1, 8000))),
        elements=st.one_of(st.floats(-1, 1, width=32), st.sampled_from([0.0, 1.0, -1.0])),
    ),
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8]),
    sr=st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000]),
    spoil=st.sampled_from([None, None, None, np.nan, np.inf, -np.inf, 1e30]),
)
def test_plausible_arrays(embedder, x, dtype, sr, spoil):
    """Mostly valid audio of any length, channel count, dtype and rate; now and then one bad sample."""
    if np.dtype(dtype).kind == "f":
        x = x.astype(dtype)
        if spoil is not None:
            x[..., x.shape[-1] // 2] = spoil
    else:
        info = np.iinfo(dtype)
        x = np.round((x + 1) / 2 * (int(info.max) - int(info.min)) + int(info.min)).astype(dtype)
        spoil = None
    vector = outcome(embedder, x, sr=sr)
    assert (vector is None) == (spoil is not None)
    if vector is not None:  # the values, not only the shape: mixdown, integer scale and rate as documented
        expected = reference_samples(x, sr)
        np.testing.assert_allclose(audio.load(x, sr=sr), expected, rtol=0, atol=1e-5)
        if len(expected):  # a sample or two at a high rate resample to nothing: embed pads that, as it pads silence
            np.testing.assert_allclose(vector, embedder.embed(expected, sr=16000), rtol=0, atol=1e-4)


def reference_samples(x: np.ndarray, sr: int) -> np.ndarray:
    """What the docs promise, computed here on its own: integers scaled to [-1, 1) (unsigned centred first), 2-D
    mixed down as the mean over the shorter axis (the channels), then one-shot soxr to 16 kHz."""
    import soxr

    a = np.asarray(x)
    if a.dtype.kind in "iu":
        bits = 8 * a.dtype.itemsize
        a = (a.astype(np.float64) - (2 ** (bits - 1) if a.dtype.kind == "u" else 0)) / 2 ** (bits - 1)
    a = a.astype(np.float64)
    if a.ndim == 2:
        a = a.mean(axis=0 if a.shape[0] <= a.shape[1] else 1)
    a = a.astype(np.float32)
    return a if sr == 16000 else soxr.resample(a, sr, 16000, quality="HQ").astype(np.float32)


@pytest.mark.parametrize(
    "name, x, sr",
    [
        ("silence", np.zeros(16000, np.float32), 16000),
        ("dc", np.full(16000, 0.7, np.float32), 16000),
        ("clipped", np.clip(noisy(16000, 1.0) * 50, -1, 1), 16000),
        ("full-scale int16", np.full(8000, 32767, np.int16), 16000),
        ("min int64", np.full(8000, np.iinfo(np.int64).min), 16000),
        ("one sample", np.ones(1, np.float32), 16000),
        ("shorter than a frame", noisy(16000, 0.01), 16000),
        ("one sample at 1 kHz", np.ones(1, np.float32), 1000),
        ("3 minutes", np.tile(noisy(16000, 1.0), 180), 16000),
        ("8 channels", np.stack([noisy(48000, 0.3)] * 8), 48000),
        ("float64 beyond [-1, 1]", noisy(16000, 1.0).astype(np.float64) * 1000, 16000),
    ],
)
def test_edge_signals_embed_to_finite_vectors(embedder, name, x, sr):
    assert outcome(embedder, x, sr=sr) is not None, name


def test_stereo_is_mixed_down_to_the_mean_of_its_channels(embedder):
    left, right = noisy(16000, 1.0, seed=1), np.roll(noisy(16000, 1.0, seed=2), 3000) * 0.5
    mean = embedder.embed((left + right) / 2, sr=16000)
    for stereo in (np.stack([left, right]), np.stack([left, right], axis=1)):  # (channels, samples) and transposed
        vector = embedder.embed(stereo, sr=16000)
        np.testing.assert_allclose(vector, mean, rtol=0, atol=1e-5)
        for channel in (left, right):  # the check can tell: one channel alone gives another vector
            assert np.abs(embedder.embed(channel, sr=16000) - vector).max() > 100 * 1e-5


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_a_rate_gives_the_vector_of_the_audio_resampled_to_16k(embedder, sr):
    import soxr

    x = noisy(sr, 1.5, seed=3)
    vector = embedder.embed(x, sr=sr)
    np.testing.assert_allclose(vector, embedder.embed(soxr.resample(x, sr, 16000, quality="HQ"), sr=16000),
                               rtol=0, atol=1e-4)
    assert np.abs(embedder.embed(x, sr=16000) - vector).max() > 1e-2  # read at the wrong rate: another vector


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8])
def test_integer_pcm_gives_the_vector_of_the_same_audio_as_float(embedder, dtype):
    x = noisy(16000, 1.0, seed=4)
    info = np.iinfo(dtype)
    scale, offset = 2.0 ** (8 * np.dtype(dtype).itemsize - 1), (info.max + 1) // 2 if info.min == 0 else 0
    pcm = np.clip(np.round(x * scale) + offset, info.min, info.max).astype(dtype)
    as_float = (pcm.astype(np.float64) - offset) / scale
    vector = embedder.embed(pcm, sr=16000)
    np.testing.assert_allclose(vector, embedder.embed(as_float.astype(np.float32), sr=16000), rtol=0, atol=1e-5)
    tolerance = 2e-2 if dtype == np.uint8 else 1e-4  # 8 bits quantise audibly
    np.testing.assert_allclose(vector, embedder.embed(x, sr=16000), rtol=0, atol=tolerance)
    assert np.abs(embedder.embed(as_float.astype(np.float32) / 2, sr=16000) - vector).max() > 1e-3  # a scale off by 2 shows


def test_torch_tensors_of_odd_dtypes(embedder):
    torch = pytest.importorskip("torch")
    assert outcome(embedder, torch.from_numpy(noisy()).to(torch.bfloat16), sr=16000) is not None
    assert outcome(embedder, torch.zeros(3, 3, 3), sr=16000) is None
    assert outcome(embedder, torch.from_numpy(noisy()).requires_grad_(), sr=16000) is not None


@pytest.mark.parametrize("bad", [None, object(), [[1, 2], [3]], "not/a/file.wav", 3.5, b"RIFF"])
def test_non_audio_objects(embedder, bad):
    with pytest.raises(AudioError):
        embedder.embed([bad], sr=16000)


# Files ---------------------------------------------------------------------------------------------


def write(tmp_path_factory, data: bytes, ext: str):
    path = tmp_path_factory.mktemp("fuzz") / f"input{ext}"
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(max_size=4096), ext=st.sampled_from([*FORMATS, ".aiff", ".opus", ".au"]))
@example(data=b"", ext=".wav")
@example(data=b"RIFF\xff\xff\xff\xffWAVEfmt ", ext=".wav")
@example(data=b"fLaC" + bytes(100), ext=".flac")
@example(data=b"OggS" + bytes(100), ext=".ogg")
@example(data=b"ID3" + bytes(100), ext=".mp3")
def test_random_bytes_as_files(embedder, tmp_path_factory, data, ext):
    outcome(embedder, write(tmp_path_factory, data, ext))


@FUZZ
@given(ext=st.sampled_from(sorted(FORMATS)), cut=st.floats(0, 1))
def test_truncated_files(embedder, tmp_path_factory, ext, cut):
    data = VALID[ext][: int(len(VALID[ext]) * cut)]
    outcome(embedder, write(tmp_path_factory, data, ext))


@FUZZ
@given(
    ext=st.sampled_from(sorted(FORMATS)),
    edits=st.lists(st.tuples(st.integers(0, 127), st.integers(0, 255)), min_size=1, max_size=6),
    anywhere=st.booleans(),
)
def test_header_corrupted_files(embedder, tmp_path_factory, ext, edits, anywhere):
    data = bytearray(VALID[ext])
    for offset, value in edits:  # mostly the header; sometimes anywhere in the stream
        position = offset * (len(data) // 128) if anywhere else offset
        data[position] = value
    outcome(embedder, write(tmp_path_factory, bytes(data), ext))


def test_wav_header_with_absurd_rates_and_channels(embedder, tmp_path):
    for rate in (0, 1, 999, 10_000_000, 2**32 - 1):  # all outside 1 kHz..768 kHz: refused, by libsndfile or by us
        data = bytearray(VALID[".wav"])
        data[24:28] = rate.to_bytes(4, "little")
        path = tmp_path / f"rate{rate}.wav"
        path.write_bytes(bytes(data))
        assert outcome(embedder, path) is None, rate
    for channels in (0, 65535):
        data = bytearray(VALID[".wav"])
        data[22:24] = channels.to_bytes(2, "little")
        path = tmp_path / f"ch{channels}.wav"
        path.write_bytes(bytes(data))
        assert outcome(embedder, path) is None


def test_valid_files_of_every_format_embed(embedder, tmp_path):
    for ext, data in VALID.items():
        path = tmp_path / f"ok{ext}"
        path.write_bytes(data)
        assert outcome(embedder, path) is not None, ext


def test_directories_and_missing_paths_are_named(embedder, tmp_path):
    (tmp_path / "folder.wav").mkdir()
    (tmp_path / "file").write_bytes(VALID[".wav"])
    odd = [tmp_path / ("x" * 300 + ".wav"), tmp_path / "file" / "below-a-file.wav", tmp_path / "nul\0byte.wav"]
    for path in (tmp_path / "folder.wav", tmp_path / "missing.wav", tmp_path, *odd):
        assert outcome(embedder, path) is None
        assert outcome(embedder, os.fspath(path)) is None


def _without_root_file_access(fn):
    """Run fn in a thread without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so that file modes bind root too
    (CI runs as root). Capabilities are per thread on Linux: the rest of the test process keeps its own."""
    import ctypes
    import threading

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    outcome_of: list = []

    def run():
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
            if libc.capget(ctypes.byref(header), data) != 0:
                raise OSError(ctypes.get_errno(), "capget")
            data[0].effective &= ~((1 << 1) | (1 << 2))  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
            if libc.capset(ctypes.byref(header), data) != 0:
                raise OSError(ctypes.get_errno(), "capset")
            outcome_of.append(fn())
        except BaseException as exc:  # re-raised in the test's thread
            outcome_of.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if isinstance(outcome_of[0], BaseException):
        raise outcome_of[0]
    return outcome_of[0]


def test_unreadable_file_is_named(embedder, tmp_path):
    path = tmp_path / "locked.wav"
    path.write_bytes(VALID[".wav"])
    path.chmod(0)

    def check():
        with pytest.raises(PermissionError):
            open(path, "rb").close()  # the premise: this file really cannot be read here
        return outcome(embedder, path)

    assert (_without_root_file_access(check) if os.geteuid() == 0 else check()) is None


@pytest.fixture(scope="module")
def nan_model_dir(tmp_path_factory):
    """Weights with a NaN bias: every output is NaN."""
    import torch

    from audioembed.config import ModelConfig
    from audioembed.nn import AudioEncoder
    from audioembed.nn.export import save_model_folder

    from conftest import TINY

    folder = tmp_path_factory.mktemp("nanmodel") / "m"
    model = AudioEncoder(ModelConfig(**TINY))
    with torch.no_grad():
        next(p for name, p in model.named_parameters() if name.endswith("bias")).fill_(float("nan"))
    save_model_folder(model, folder)
    return folder


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_nan_from_the_model_is_an_error_naming_the_input(nan_model_dir, backend):
    e = Embedder(nan_model_dir, backend=backend)
    x = noisy()
    with pytest.raises(AudioError, match=r"<ndarray shape=\(16000,\)>: the model produced NaN"):
        e.embed(x, sr=16000)
    results = list(e.iter_results([x, x], sr=16000, frames=True))
    assert len(results) == 2 and all(r.error is not None and r.embedding is None for r in results)


@pytest.fixture(scope="module")
def batched(tiny_model_dir):
    made: dict[int, Embedder] = {}

    def get(batch_size: int) -> Embedder:
        if batch_size not in made:
            made[batch_size] = Embedder(tiny_model_dir, backend="onnx", batch_size=batch_size, num_workers=2, num_threads=1)
        return made[batch_size]

    return get


BAD_ITEMS = [np.full(3000, np.nan, np.float32), np.zeros((2, 0), np.float32), np.zeros(0, np.int16),
             np.array(["a"]), np.ones((3, 3, 3), np.float32), np.full(3000, 1e30)]


@FUZZ
@given(
    picks=st.lists(st.one_of(st.integers(0, len(BAD_ITEMS) - 1).map(lambda i: ("bad", i)),
                             st.tuples(st.just("good"), st.integers(1, 40000))), min_size=1, max_size=8),
    batch_size=st.integers(1, 5),
)
def test_bad_inputs_do_not_disturb_their_batch(batched, embedder, picks, batch_size):
    """A list mixing good and hostile inputs: each bad one fails alone, each good one gets its own vector."""
    e = batched(batch_size)
    items = [BAD_ITEMS[v] if kind == "bad" else noisy(16000, v / 16000, seed=v) for kind, v in picks]
    results = {r.index: r for r in e.iter_results(items, sr=16000)}
    assert sorted(results) == list(range(len(items)))
    for i, (kind, _) in enumerate(picks):
        r = results[i]
        if kind == "bad":
            assert r.embedding is None and isinstance(r.error, AudioError) and audio.describe(items[i]) in str(r.error)
        else:
            assert r.error is None
            np.testing.assert_allclose(r.embedding, embedder.embed(items[i], sr=16000), rtol=0, atol=1e-5)


def test_cli_job_over_hostile_files_keeps_going(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from audioembed.cli import app

    root, out = tmp_path / "in", tmp_path / "out"
    root.mkdir()
    rng = np.random.default_rng(0)
    bad = {"empty.wav": b"", "noise.mp3": rng.bytes(3000), "half.flac": VALID[".flac"][:200],
           "header.ogg": b"OggS" + bytes(300), "rate0.wav": VALID[".wav"][:24] + bytes(4) + VALID[".wav"][28:]}
    for name, data in bad.items():
        (root / name).write_bytes(data)
    for ext, data in VALID.items():
        (root / f"good{ext.replace('.', '_')}{ext}").write_bytes(data)
    result = CliRunner().invoke(app, ["embed", str(root), "-o", str(out), "-m", str(tiny_model_dir), "-q", "--backend", "onnx"])
    assert result.exit_code == 1 and f"{len(bad)} failed" in result.output
    for name in bad:
        assert str(root / name) in result.output
    written = sorted(p.name for p in out.glob("*.npy"))
    assert len(written) == len(VALID) and all(np.isfinite(np.load(out / n)).all() for n in written)
