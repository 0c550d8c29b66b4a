"""Decoding, mixing, scaling, resampling and the errors for bad input."""

import os

import numpy as np
import pytest
import soundfile as sf

from audioembed import audio
from audioembed.errors import AudioDecodeError, AudioError

from conftest import noisy, tone
from hostile import sparse_wav


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()]


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resampling_keeps_a_440_hz_tone_at_440_hz(sr):
    out = audio.load(tone(440, sr, 2.0), sr=sr, target_sr=16000)
    assert abs(len(out) - 32000) <= 1
    assert abs(dominant_hz(out, 16000) - 440) < 1.0


@pytest.mark.parametrize("sr,subtype,ext", [(44100, "PCM_16", "wav"), (48000, "PCM_24", "flac"), (8000, "VORBIS", "ogg"), (44100, "MPEG_LAYER_III", "mp3")])
def test_files_of_any_format_and_rate_decode_to_16k_mono(tmp_path, sr, subtype, ext):
    stereo = np.stack([tone(440, sr, 1.5), tone(440, sr, 1.5)], axis=1)
    path = tmp_path / f"clip.{ext}"
    sf.write(path, stereo, sr, subtype=subtype)
    out = audio.load(path, target_sr=16000)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - 24000) < 2000  # MP3 adds encoder delay
    assert abs(dominant_hz(out, 16000) - 440) < 2.0


def test_stereo_is_mixed_to_mono_in_either_layout():
    left, right = tone(440, 16000, 0.5), np.zeros(8000, np.float32)
    for x in (np.stack([left, right]), np.stack([left, right], axis=1)):
        np.testing.assert_allclose(audio.load(x, sr=16000), left / 2, atol=1e-7)


@pytest.mark.parametrize("dtype,scale", [(np.int16, 2**15), (np.int32, 2**31), (np.int8, 2**7)])
def test_integer_pcm_is_scaled(dtype, scale):
    x = (tone(440) * (scale - 1)).astype(dtype)
    np.testing.assert_allclose(audio.load(x, sr=16000), tone(440), atol=2.0 / scale * 2)


def test_uint8_pcm_is_centred():
    x = np.full(1000, 128, np.uint8)
    assert np.all(audio.load(x, sr=16000) == 0)


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    x = tone(440)
    np.testing.assert_array_equal(audio.load(torch.from_numpy(x), sr=16000), x)


def test_streaming_equals_one_shot_resampling():
    x = np.random.default_rng(0).standard_normal(44100 * 25).astype(np.float32)
    import soxr

    blocks = list(audio.stream(x, sr=44100, block_seconds=3.0))
    assert len(blocks) > 5
    np.testing.assert_array_equal(np.concatenate(blocks), soxr.resample(x, 44100, 16000, quality="HQ"))


@pytest.mark.parametrize(
    "x,sr,match",
    [
        (np.zeros(0, np.float32), 16000, "empty"),
        (np.array([0.0, np.nan, 0.0], np.float32), 16000, "NaN or infinite"),
        (np.array([0.0, np.inf], np.float32), 16000, "NaN or infinite"),
        (np.zeros((2, 3, 400), np.float32), 16000, "shape"),
        (np.zeros((100, 400), np.float32), 16000, "list of 1-D arrays"),
        (np.array(["a", "b"]), 16000, "unsupported sample type"),
        (np.zeros(10, np.complex64), 16000, "unsupported sample type"),
        (np.zeros(100, np.float32), None, "sample rate is required"),
        (np.zeros(100, np.float32), 0, "not supported"),
        (np.zeros(100, np.float32), -16000, "not supported"),
        (np.zeros(100, np.float32), 1, "not supported"),
        (np.zeros(100, np.float32), 10_000_000, "not supported"),
        (np.zeros(100, np.float32), 16000.5, "not supported"),
        (np.zeros(100, np.float32), "16000", "must be a number"),
    ],
)
def test_bad_arrays_raise_clear_errors(x, sr, match):
    with pytest.raises(AudioError, match=match):
        audio.load(x, sr=sr)


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk" * 10)
    (tmp_path / "folder.wav").mkdir()
    cases = {
        "empty.wav": (AudioDecodeError, "empty file"),
        "junk.wav": (AudioDecodeError, "not a readable audio file"),
        "folder.wav": (AudioError, "is a directory"),
        "missing.wav": (AudioError, "no such file"),
    }
    for name, (error, message) in cases.items():
        with pytest.raises(error, match=message) as info:
            audio.load(tmp_path / name)
        assert name in str(info.value)


def test_header_only_file_has_no_samples(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        audio.load(path)


def test_sr_with_a_path_is_rejected(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, tone(440), 16000)
    with pytest.raises(AudioError, match="only for array input"):
        audio.load(path, sr=16000)


def test_pyav_decodes_what_libsndfile_decodes_to_the_same_samples(tmp_path):
    """The fallback mixes channels and cuts blocks as the libsndfile path does (PCM in, the same floats out)."""
    pytest.importorskip("av")
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone(440, 44100, 3.0), noisy(44100, 3.0)], axis=1), 44100, subtype="FLOAT")
    reference = list(audio._decode_file(path, "stereo.wav", 1.0))
    fallback = list(audio._av_blocks(path, "stereo.wav", 1.0, RuntimeError("not used")))
    assert len(fallback) >= 3 and {rate for _, rate in fallback} == {44100}
    np.testing.assert_array_equal(np.concatenate([b for b, _ in fallback]), np.concatenate([b for b, _ in reference]))


def test_file_names_that_are_not_utf8_decode(tmp_path):
    """A name's raw bytes are whatever the disk holds; Python gives surrogates for the non-UTF-8 ones."""
    path = tmp_path / os.fsdecode(b"caf\xe9 \xff.wav")
    sf.write(tmp_path / "plain.wav", tone(440), 16000, subtype="FLOAT")
    os.rename(tmp_path / "plain.wav", path)
    expected = audio.load(tone(440), sr=16000)
    np.testing.assert_array_equal(audio.load(path), expected)
    np.testing.assert_array_equal(audio.load(os.fspath(path)), expected)


def test_names_in_messages_are_escaped(tmp_path):
    """Control characters and undecodable bytes in a name must not reach the terminal raw."""
    path = tmp_path / os.fsdecode(b"bad\xff\x1b[31mred\r.wav")
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunk" * 10)
    with pytest.raises(AudioDecodeError) as info:
        audio.load(path)
    message = str(info.value)
    assert "bad\\xff\\x1b[31mred\\r.wav: not a readable audio file" in message
    assert message.isprintable() and message.encode("utf-8")


def test_decode_memory_is_bounded_by_bytes_not_seconds(tmp_path):
    """64 channels at 192 kHz: ten seconds of float32 are 491 MB; a decode block must stay small."""
    import tracemalloc

    path = tmp_path / "wide.wav"
    sparse_wav(path, 64, 192_000, 12.0)
    tracemalloc.start()
    try:
        n = sum(len(block) for block in audio.stream(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(n - 12 * 16000) <= 1
    assert peak < 64e6, f"decoding peaked at {peak / 1e6:.0f} MB"


def test_absurd_channel_counts_are_refused_clearly(tmp_path):
    path = tmp_path / "many.wav"
    sparse_wav(path, 512, 8000, 0.5)
    with pytest.raises(AudioDecodeError, match="many.wav: the file reports 512 channels"):
        audio.load(path)


def test_double_samples_beyond_float32_are_called_too_loud_not_infinite(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.full(1600, 1e300), 16000, subtype="DOUBLE")
    with pytest.raises(AudioError, match=r"loud.wav: samples reach 1e\+300"):
        audio.load(path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_files_that_are_not_regular_are_named_so(tmp_path, kind):
    path = tmp_path / "x.wav"
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/zero")
    with pytest.raises(AudioError, match="x.wav: not a regular file"):
        audio.load(path)  # and it returns: a FIFO is never opened


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.wav"
    sf.write(path, tone(440), 16000)
    path.chmod(0)
    if os.geteuid() == 0:  # root reads every file: deny it the way the kernel would
        real_open = os.open

        def denying_open(file, *args, **kwargs):
            if os.fspath(file) == os.fspath(path):
                raise PermissionError(13, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", denying_open)
    with pytest.raises(AudioError, match="locked.wav: cannot open it .Permission denied"):
        audio.load(path)


def test_bytes_input_is_refused_with_advice():
    with pytest.raises(AudioError, match="bytes.*pass a file path as str or pathlib.Path"):
        audio.load(b"x.wav")


def test_a_stream_pyav_opens_but_cannot_decode_is_an_audio_error(tmp_path):
    """16 -> 0 bits per sample: libsndfile refuses the header, FFmpeg opens the file but has no decoder for it."""
    pytest.importorskip("av")
    path = tmp_path / "zero-bits.wav"
    sf.write(path, tone(440), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[34] = 0
    path.write_bytes(bytes(data))
    with pytest.raises(AudioDecodeError, match="zero-bits.wav: not a readable audio file .*no decoder"):
        audio.load(path)
