"""The datasets adapter (hf_map_fn) on values, called as datasets.map calls it (no datasets install needed):
bytes stream through the file decoder and its limits, channels are mixed down, rows are named."""

import io
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from audioembed import AudioDecodeError, AudioError, Embedder, audio

from conftest import noisy, tone


@pytest.fixture(scope="module")
def embedder(tiny_model_dir):
    return Embedder(tiny_model_dir, backend="onnx", num_threads=1)


def encoded(samples: np.ndarray, sr: int, format: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=format, subtype=subtype)
    return buf.getvalue()


def test_bytes_are_mixed_down_to_the_mean_of_the_channels(embedder):
    left, right = tone(440, 44100, 1.0), noisy(44100, 1.0)
    data = encoded(np.stack([left, right], axis=1), 44100, "FLAC")
    decoded, _ = sf.read(io.BytesIO(data), dtype="float32")  # what FLAC kept of each channel
    mixed = decoded.mean(axis=1, dtype=np.float32)
    column = embedder.hf_map_fn()({"audio": [{"bytes": data, "path": "s.flac"}, {"array": mixed, "sampling_rate": 44100}]})
    vectors = column["embedding"]
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)  # bytes row == the mean of its channels, as an array
    np.testing.assert_allclose(vectors[1], embedder.embed(mixed, sr=44100), atol=1e-6)
    assert not np.allclose(vectors[0], embedder.embed(decoded[:, 0], sr=44100), atol=1e-3)  # not the left channel alone
    np.testing.assert_array_equal(audio.load(io.BytesIO(data), target_sr=44100), mixed)  # the decoder itself


def test_int16_bytes_are_scaled_as_a_file_is(embedder):
    x = noisy(16000, 1.0)
    pcm = np.round(x * 32767).astype(np.int16)
    row = embedder.hf_map_fn()({"audio": [{"bytes": encoded(pcm, 16000, subtype="PCM_16"), "path": None}]})["embedding"][0]
    np.testing.assert_allclose(row, embedder.embed(pcm.astype(np.float32) / 32768, sr=16000), atol=1e-6)


def test_bytes_keep_the_path_channel_limit_and_name_the_row(embedder, tmp_path):
    wide = encoded(np.zeros((100, 300), np.float32), 16000, subtype="FLOAT")
    (tmp_path / "wide.wav").write_bytes(wide)
    with pytest.raises(AudioDecodeError, match="wide.wav: the file reports 300 channels; audioembed reads 1 to 256"):
        embedder.embed(tmp_path / "wide.wav")
    good = {"bytes": encoded(tone(440), 16000), "path": "ok.wav"}
    fn = embedder.hf_map_fn()
    with pytest.raises(AudioDecodeError, match=r"^batch row 1: clips/wide.wav: the file reports 300 channels; audioembed reads 1 to 256$"):
        fn({"audio": [good, {"bytes": wide, "path": "clips/wide.wav"}]})
    with pytest.raises(AudioDecodeError, match=r"^row 41: <audio bytes>: not a readable audio file"):
        fn({"audio": [good, {"bytes": b"RIFF junk", "path": None}]}, indices=[40, 41])
    with pytest.raises(AudioError, match=r"^row 8: no audio in column 'audio' \(None\); drop or fill"):
        fn({"audio": [good, None]}, indices=[7, 8])
    with pytest.raises(AudioError, match=r"^batch row 0: its 'audio' value has neither bytes nor a path"):
        fn({"audio": [{"bytes": None, "path": None}]})
    with pytest.raises(AudioError, match=r"^batch row 1: <ndarray shape=\(3,\)>: contains NaN"):
        fn({"audio": [good, {"array": np.array([0, np.nan, 0], np.float32), "sampling_rate": 16000}]})
    assert fn({"audio": []})["embedding"].shape == (0, embedder.dim)


def test_bytes_are_decoded_in_blocks_not_whole(embedder):
    """8 channels x 40 s: decoded whole as float32 that is 20 MB; streamed, a block is at most 8 MB."""
    x = np.tile(noisy(16000, 40.0)[:, None], (1, 8)) * np.linspace(0.2, 1.0, 8, dtype=np.float32)
    data = encoded(x, 16000, subtype="PCM_16")
    whole = x.shape[0] * 8 * 4
    tracemalloc.start()
    try:
        decoded = audio.load(io.BytesIO(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_allclose(decoded, x.mean(axis=1), atol=2e-4)  # 16-bit quantisation of the mean
    assert peak < whole * 0.75, f"decoding {len(data) >> 20} MB of bytes peaked at {peak >> 20} MB"
